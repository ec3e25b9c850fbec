"""Each route of /api/v1 calls the right NATS subject for the token's tenant, and answers the NATS
API's errors in their shape with their HTTP status."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from shared.errors import RemoteApiError
from shared.subjects import Api
from tests.unit.web import samples
from tests.unit.web.fakes import FakeBackend, bearer, serve, token

# Made at import, i.e. when pytest collects: valid for a day, as a whole run takes longer than the
# 10 minutes of the default (CI ran these 12 minutes after collecting them: every one expired).
PHARMACY = bearer(token("pharma-1", minutes=24 * 60))


def backend_with_replies() -> FakeBackend:
    b = FakeBackend()
    b.replies.update({
        Api.ACCOUNTS_CATALOG: samples.CATALOG,
        Api.ACCOUNTS_LIST: {"accounts": [samples.account()]},
        Api.ACCOUNTS_CREATE: samples.account(),
        Api.ACCOUNTS_GET: samples.account(),
        Api.ACCOUNTS_UPDATE_CREDENTIALS: samples.account(),
        Api.ACCOUNTS_RETRY: samples.account(),
        Api.ACCOUNTS_DELETE: {"deleted": True},
        Api.SCRAPER_INVOICES_LIST: {"invoices": [samples.invoice()]},
        Api.SCRAPER_INVOICE_GET: samples.invoice(),
        Api.DOCUMENTS_INVOICE_DATA: RemoteApiError("not_found", "pas encore lue"),
        Api.REQUESTS_LIST: {"requests": [samples.REQUEST]},
        Api.REQUESTS_CREATE: samples.REQUEST,
        Api.NOTIFIER_HISTORY: {"notifications": [samples.notification("in_app"), samples.notification("email")]},
        Api.NOTIFIER_PREFS_GET: samples.PREFS,
        Api.NOTIFIER_PREFS_SET: samples.PREFS,
    })
    return b


ROUTES: list[tuple[str, str, dict[str, Any] | None, int, str, dict[str, Any]]] = [
    ("GET", "/api/v1/catalog", None, 200, Api.ACCOUNTS_CATALOG, {}),
    ("GET", "/api/v1/accounts", None, 200, Api.ACCOUNTS_LIST, {}),
    ("POST", "/api/v1/accounts", {"collector_id": "sandbox-classic", "login": "l", "password": "p"}, 201,
     Api.ACCOUNTS_CREATE, {"collector_id": "sandbox-classic", "login": "l", "password": "p"}),
    ("GET", "/api/v1/accounts/acc-1", None, 200, Api.ACCOUNTS_GET, {"account_id": "acc-1"}),
    ("PUT", "/api/v1/accounts/acc-1/credentials", {"password": "new"}, 200, Api.ACCOUNTS_UPDATE_CREDENTIALS,
     {"account_id": "acc-1", "password": "new"}),
    ("POST", "/api/v1/accounts/acc-1/retry", None, 200, Api.ACCOUNTS_RETRY, {"account_id": "acc-1"}),
    ("DELETE", "/api/v1/accounts/acc-1", None, 204, Api.ACCOUNTS_DELETE, {"account_id": "acc-1"}),
    ("GET", "/api/v1/invoices?account_id=acc-1&limit=5", None, 200, Api.SCRAPER_INVOICES_LIST,
     {"account_id": "acc-1", "limit": 5}),
    ("GET", "/api/v1/invoices/inv-1", None, 200, Api.SCRAPER_INVOICE_GET, {"invoice_id": "inv-1"}),
    ("GET", "/api/v1/requests", None, 200, Api.REQUESTS_LIST, {}),
    ("POST", "/api/v1/requests", {"supplier": "Grossiste", "comment": "svp"}, 201, Api.REQUESTS_CREATE,
     {"supplier": "Grossiste", "comment": "svp"}),
    ("GET", "/api/v1/notifications", None, 200, Api.NOTIFIER_HISTORY, {}),
    ("GET", "/api/v1/notifications/preferences", None, 200, Api.NOTIFIER_PREFS_GET, {}),
    ("PUT", "/api/v1/notifications/preferences", {"emails": ["a@b.test"]}, 200, Api.NOTIFIER_PREFS_SET,
     {"emails": ["a@b.test"]}),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "subject", "fields"), ROUTES,
                         ids=[f"{r[0]} {r[1]}" for r in ROUTES])
async def test_route_calls_its_subject_for_the_tokens_tenant(
        tmp_path: Path, method: str, path: str, body: dict[str, Any] | None, status: int, subject: str,
        fields: dict[str, Any]) -> None:
    backend = backend_with_replies()
    async with serve(backend, tmp_path) as http:
        reply = await http.request(method, path, json=body, headers=PHARMACY)
    assert reply.status_code == status, reply.text
    first_subject, payload = backend.calls[0]
    assert first_subject == subject
    assert payload == {"tenant_id": "pharma-1", "lang": "fr", **fields}


async def test_language_from_query_or_accept_language(tmp_path: Path) -> None:
    backend = backend_with_replies()
    async with serve(backend, tmp_path) as http:
        await http.get("/api/v1/accounts?lang=en", headers=PHARMACY)
        await http.get("/api/v1/accounts", headers={**PHARMACY, "Accept-Language": "en-GB,en;q=0.9"})
        await http.get("/api/v1/accounts", headers={**PHARMACY, "Accept-Language": "fr-FR"})
    assert [p["lang"] for _, p in backend.calls] == ["en", "en", "fr"]


async def test_notifications_are_the_in_app_ones(tmp_path: Path) -> None:
    async with serve(backend_with_replies(), tmp_path) as http:
        reply = await http.get("/api/v1/notifications", headers=PHARMACY)
    assert [n["channel"] for n in reply.json()["notifications"]] == ["in_app"]


async def test_a_tenant_in_the_body_is_refused_never_used(tmp_path: Path) -> None:
    backend = backend_with_replies()
    async with serve(backend, tmp_path) as http:
        reply = await http.post("/api/v1/accounts", headers=PHARMACY, json={
            "collector_id": "sandbox-classic", "login": "l", "password": "p", "tenant_id": "pharma-2"})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "validation_error"
    assert backend.calls == []


@pytest.mark.parametrize(("code", "status"), [
    ("validation_error", 400), ("not_found", 404), ("conflict", 409), ("too_many_accounts", 409),
    ("unavailable", 503), ("internal_error", 500)])
async def test_nats_errors_keep_their_shape_and_get_their_status(tmp_path: Path, code: str, status: int) -> None:
    backend = backend_with_replies()
    backend.replies[Api.ACCOUNTS_CREATE] = RemoteApiError(code, "Message du service", field="login")
    async with serve(backend, tmp_path) as http:
        reply = await http.post("/api/v1/accounts", headers=PHARMACY,
                                json={"collector_id": "sandbox-classic", "login": "l", "password": "p"})
    assert reply.status_code == status
    assert reply.json() == {"error": {"code": code, "message": "Message du service", "field": "login"}}


async def test_a_service_not_answering_is_503_in_the_callers_language(tmp_path: Path) -> None:
    from shared.client import ServiceUnavailable

    backend = backend_with_replies()
    backend.replies[Api.ACCOUNTS_LIST] = ServiceUnavailable(Api.ACCOUNTS_LIST, "no service is listening")
    async with serve(backend, tmp_path) as http:
        fr = await http.get("/api/v1/accounts", headers=PHARMACY)
        en = await http.get("/api/v1/accounts?lang=en", headers=PHARMACY)
    assert fr.status_code == en.status_code == 503
    assert fr.json()["error"]["code"] == "unavailable"
    assert fr.json()["error"]["message"].startswith("Service momentanément indisponible")
    assert en.json()["error"]["message"].startswith("Service temporarily unavailable")
    assert "collectors.api" not in fr.text


async def test_invoice_detail_adds_the_documents_data(tmp_path: Path) -> None:
    backend = backend_with_replies()
    backend.replies[Api.DOCUMENTS_INVOICE_DATA] = {"source": "none", "attachment": None, "data": None,
                                                   "warnings": [], "checks": []}
    async with serve(backend, tmp_path) as http:
        reply = await http.get("/api/v1/invoices/inv-1", headers=PHARMACY)
    assert reply.status_code == 200
    assert reply.json()["source"] == "none" and reply.json()["number"] == "F-2026/001"
    assert [s for s, _ in backend.calls] == [Api.SCRAPER_INVOICE_GET, Api.DOCUMENTS_INVOICE_DATA]


def _chunks(content: bytes, size: int, sha: str | None = None) -> Any:
    digest = sha or hashlib.sha256(content).hexdigest()

    def reply(payload: dict[str, Any]) -> dict[str, Any]:
        offset = payload["offset"]
        part = content[offset:offset + size]
        end = offset + len(part)
        return {"invoice_id": payload["invoice_id"], "size": len(content), "sha256": digest, "offset": offset,
                "data": base64.b64encode(part).decode(), "next_offset": end,
                "cursor": None if end >= len(content) else f"c:{end}:0"}

    return reply


async def test_pdf_is_streamed_from_chunks_as_an_attachment(tmp_path: Path) -> None:
    content = b"%PDF-1.7\n" + bytes(range(256)) * 10
    backend = backend_with_replies()
    backend.replies[Api.SCRAPER_INVOICE_DOWNLOAD] = _chunks(content, 1000)
    async with serve(backend, tmp_path) as http:
        reply = await http.get("/api/v1/invoices/inv-1/pdf", headers=PHARMACY)
    assert reply.status_code == 200
    assert reply.content == content
    assert reply.headers["content-type"] == "application/pdf"
    assert reply.headers["content-disposition"] == 'attachment; filename="F-2026_001.pdf"'
    downloads = [p for s, p in backend.calls if s == Api.SCRAPER_INVOICE_DOWNLOAD]
    assert [p["offset"] for p in downloads] == [0, 1000, 2000]
    assert all(p["tenant_id"] == "pharma-1" for p in downloads)


async def test_pdf_whose_sha256_does_not_match_is_not_delivered_whole(tmp_path: Path) -> None:
    content = b"%PDF-1.7 not the file the ledger knows"
    backend = backend_with_replies()
    backend.replies[Api.SCRAPER_INVOICE_DOWNLOAD] = _chunks(content, 1000, sha="1" * 64)
    async with serve(backend, tmp_path) as http:
        with pytest.raises(RuntimeError, match="SHA-256"):
            await http.get("/api/v1/invoices/inv-1/pdf", headers=PHARMACY)


async def test_operator_routes(tmp_path: Path) -> None:
    backend = backend_with_replies()
    backend.replies[Api.REQUESTS_LIST_ALL] = {"requests": [samples.REQUEST]}
    backend.replies[Api.REQUESTS_SET_STATUS] = {**samples.REQUEST, "status": "available",
                                               "collector_id": "sandbox-classic"}
    op = bearer(token(None, role="operator"))
    async with serve(backend, tmp_path) as http:
        listed = await http.get("/api/v1/operator/requests?status=submitted", headers=op)
        changed = await http.post("/api/v1/operator/requests/req-1/status", headers=op,
                                  json={"status": "available", "collector_id": "sandbox-classic"})
    assert listed.status_code == 200 and changed.status_code == 200
    assert backend.calls == [
        (Api.REQUESTS_LIST_ALL, {"status": "submitted"}),
        (Api.REQUESTS_SET_STATUS, {"request_id": "req-1", "status": "available", "collector_id": "sandbox-classic"}),
    ]


async def test_security_headers_on_every_response(tmp_path: Path) -> None:
    async with serve(backend_with_replies(), tmp_path) as http:
        for reply in (await http.get("/health"), await http.get("/api/v1/accounts"),
                      await http.get("/api/v1/accounts", headers=PHARMACY), await http.get("/nowhere")):
            assert reply.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
            assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert reply.headers["referrer-policy"] == "same-origin"


async def test_body_over_64_kib_is_refused_with_413(tmp_path: Path) -> None:
    backend = backend_with_replies()
    big = {"supplier": "x", "comment": "a" * (64 * 1024)}
    async with serve(backend, tmp_path) as http:
        announced = await http.post("/api/v1/requests", headers=PHARMACY, json=big)

        async def streamed() -> Any:  # no Content-Length: counted as it arrives
            yield b'{"supplier": "x", "comment": "'
            for _ in range(70):
                yield b"a" * 1024
            yield b'"}'

        chunked = await http.post("/api/v1/requests", headers={**PHARMACY, "Content-Type": "application/json"},
                                  content=streamed())
        fits = await http.post("/api/v1/requests", headers=PHARMACY, json={"supplier": "x", "comment": "a" * 1000})
    for reply in (announced, chunked):
        assert reply.status_code == 413
        assert reply.json()["error"]["code"] == "payload_too_large"
    assert fits.status_code == 201
    assert [s for s, _ in backend.calls] == [Api.REQUESTS_CREATE]
