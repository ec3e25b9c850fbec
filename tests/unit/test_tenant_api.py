"""Tenant-facing subjects (shared.subjects.TENANT_API, the gateway's) name their pharmacy: every request
model requires a tenant id of a sane shape, so a tenant-less call is a validation error, never every
pharmacy's data (design §5, issue 10: `requests list` without a tenant listed every pharmacy's)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.contract import API
from shared.subjects import OPERATOR_API, TENANT_API


@pytest.mark.parametrize("subject", TENANT_API)
def test_every_tenant_facing_request_requires_a_valid_tenant(subject: str) -> None:
    model, _ = API[subject]
    field = model.model_fields["tenant_id"]
    assert field.is_required() and field.annotation is str, subject
    extra = {"invoice_id": "inv-1", "account_id": "acc-1", "collector_id": "c", "login": "l", "password": "p",
             "supplier": "OCP"}
    assert model.model_validate({"tenant_id": "pharma-1_A", **extra}).tenant_id == "pharma-1_A"  # type: ignore[attr-defined]
    for bad in (None, "", " ", "a b", "../x", "-x", "x" * 65, "pharmacie-é", "t\n", "*", "a.b", 7):
        payload = {**extra} if bad is None else {"tenant_id": bad, **extra}
        with pytest.raises(ValidationError) as exc:
            model.model_validate(payload)
        assert any(e["loc"] == ("tenant_id",) for e in exc.value.errors()), (subject, bad)


def test_tenant_facing_and_operator_subjects_are_apart() -> None:
    assert not set(TENANT_API) & set(OPERATOR_API)
    assert len(set(TENANT_API)) == len(TENANT_API) and len(set(OPERATOR_API)) == len(OPERATOR_API)
