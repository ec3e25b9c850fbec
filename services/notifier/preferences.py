"""How a pharmacy wants to be told: checks on the addresses it gives, and the stored form of its choice."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from services.notifier import messages
from shared import api
from shared.errors import ValidationFailed
from shared.urls import valid_host

MAX_EMAILS = 5
MAX_URL_LENGTH = 2000
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
DEFAULT_PREFS: dict[str, Any] = {"emails": [], "webhook_url": None, "language": "fr", "webhook_secret": None}


def validate_emails(emails: list[str], lang: str) -> list[str]:
    """Plausible addresses, at most :data:`MAX_EMAILS`, duplicates (ignoring case) dropped."""
    cleaned: list[str] = []
    for raw in emails:
        value = raw.strip()
        if not value:
            raise ValidationFailed(messages.api_message("email_empty", lang), field="emails")
        if len(value) > 254 or not EMAIL.match(value):
            raise ValidationFailed(messages.api_message("email_invalid", lang, value=value[:100]),
                                   field="emails")
        if value.casefold() not in {e.casefold() for e in cleaned}:
            cleaned.append(value)
    if len(cleaned) > MAX_EMAILS:
        raise ValidationFailed(messages.api_message("emails_too_many", lang, max=MAX_EMAILS),
                               field="emails")
    return cleaned


def validate_webhook_url(url: str, lang: str) -> str | None:
    """An http(s) URL with a host and no credentials; an empty string removes the webhook."""
    value = url.strip()
    if not value:
        return None
    if len(value) > MAX_URL_LENGTH:
        raise ValidationFailed(messages.api_message("webhook_too_long", lang), field="webhook_url")
    invalid = ValidationFailed(messages.api_message("webhook_invalid", lang), field="webhook_url")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise invalid
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise invalid from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(messages.api_message("webhook_credentials", lang), field="webhook_url")
    if not valid_host(parts.hostname.rstrip(".")):
        raise invalid
    return value


def to_prefs(tenant_id: str, doc: dict[str, Any] | None) -> api.Prefs:
    doc = doc or {}
    return api.Prefs(tenant_id=tenant_id, emails=doc.get("emails") or [],
                     webhook_url=doc.get("webhook_url"), language=doc.get("language") or "fr",
                     webhook_secret=doc.get("webhook_secret"))
