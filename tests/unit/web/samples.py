"""Replies of the NATS API as its services send them (written by hand from shared/api.py's fields)."""

from __future__ import annotations

from typing import Any

NOW = "2026-12-01T10:00:00Z"


def account(tenant: str = "pharma-1", account_id: str = "acc-1") -> dict[str, Any]:
    return {"id": account_id, "tenant_id": tenant, "collector_id": "sandbox-classic", "slot": 1,
            "login": "pharmacie", "status": "pending", "message": "En attente", "created_at": NOW}


def invoice(tenant: str = "pharma-1", invoice_id: str = "inv-1") -> dict[str, Any]:
    return {"id": invoice_id, "tenant_id": tenant, "account_id": "acc-1", "collector_id": "sandbox-classic",
            "number": "F-2026/001", "issue_date": "2026-11-30", "amount": "12.50", "currency": "EUR",
            "kind": "invoice", "sha256": "0" * 64, "size": 3, "object_key": "k", "collected_at": NOW}


CATALOG = {"collectors": [{"id": "sandbox-classic", "name": "Classic", "supplier": "Sandbox",
                           "portal_url": "https://portal.test", "login_kind": "identifier",
                           "frequency_hours": 24, "max_sessions": 1, "version": "1"}]}
REQUEST = {"id": "req-1", "supplier": "Grossiste", "status": "submitted", "requesters": ["pharma-1"], "votes": 1,
           "created_at": NOW, "updated_at": NOW}
PREFS = {"tenant_id": "pharma-1", "emails": [], "language": "fr"}


def notification(channel: str) -> dict[str, Any]:
    return {"id": f"n-{channel}", "tenant_id": "pharma-1", "kind": "login_failed", "channel": channel,
            "subject": "s", "body": "b", "created_at": NOW, "delivered": True}
