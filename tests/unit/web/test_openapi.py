"""The OpenAPI document FastAPI generates from the typed routes, validated by openapi-spec-validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from services.web.app import create_app
from services.web.auth import Verifier
from tests.unit.web.fakes import AUDIENCE, ISSUER, KEY, FakeBackend, settings


def document(tmp: Path) -> dict[str, Any]:
    async def factory() -> FakeBackend:
        return FakeBackend()

    app = create_app(settings(tmp), factory,
                     verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
    return app.openapi()


def test_the_openapi_document_is_valid_and_typed(tmp_path: Path) -> None:
    spec = document(tmp_path)
    validate(spec)  # raises on an invalid document
    paths = spec["paths"]
    for path, method in [("/api/v1/catalog", "get"), ("/api/v1/accounts", "post"),
                         ("/api/v1/accounts/{account_id}/credentials", "put"),
                         ("/api/v1/invoices/{invoice_id}/pdf", "get"),
                         ("/api/v1/events", "get"), ("/api/v1/operator/requests/{request_id}/status", "post"),
                         ("/api/v1/notifications/preferences", "put"), ("/health", "get"), ("/signin", "get")]:
        assert method in paths[path], (path, method)
    created = paths["/api/v1/accounts"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/AccountView"}
    assert "application/pdf" in paths["/api/v1/invoices/{invoice_id}/pdf"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in paths["/api/v1/events"]["get"]["responses"]["200"]["content"]


def test_no_request_body_names_a_tenant(tmp_path: Path) -> None:
    schemas = document(tmp_path)["components"]["schemas"]
    bodies = ["NewAccount", "NewCredentials", "NewRequest", "NewPrefs", "NewStatus"]
    for name in bodies:
        assert "tenant_id" not in schemas[name]["properties"], name
        assert schemas[name]["additionalProperties"] is False, name
    assert "password" not in schemas["AccountView"]["properties"]
