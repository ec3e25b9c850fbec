"""Pure rules of the requests service: names and portals that mean the same supplier, the workflow."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.requests.messages import api_message, status_label
from shared.errors import Conflict, ValidationFailed
from shared.events import ID_PATTERN
from shared.urls import valid_host

# submitted → in_progress → available | rejected; a submitted request may also be closed at once.
TRANSITIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"in_progress", "rejected", "available"}),
    "in_progress": frozenset({"available", "rejected"}),
    "available": frozenset(),
    "rejected": frozenset(),
}
OPEN = frozenset({"submitted", "in_progress"})
MAX_URL_LENGTH = 2000
_COLLECTOR_ID = re.compile(ID_PATTERN)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_open(status: str) -> bool:
    return status in OPEN


# --- suppliers and portals -----------------------------------------------------------------------


def clean_supplier(name: str) -> str:
    """The name as shown: NFC, trimmed, inner whitespace collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def supplier_key(name: str) -> str:
    """Two names a pharmacist would mean as one supplier have the same key.

    Case, accents, spaces and punctuation do not count: "C.E.R.P Rouen", "cerp-rouen" and
    "CERP  Rouen" are one supplier. Empty when the name has no letter or digit.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in bare.casefold() if ch.isalnum())


@dataclass(frozen=True)
class PortalCheck:
    """What a portal URL is: its domain (None when the URL is unusable) and whether it holds credentials."""

    domain: str | None
    has_credentials: bool = False


def check_portal(url: str) -> PortalCheck:
    value = url.strip()
    if not value or len(value) > MAX_URL_LENGTH:
        return PortalCheck(None)
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return PortalCheck(None)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return PortalCheck(None)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or not valid_host(host):
        return PortalCheck(None)
    host = host.removeprefix("www.")
    # A non-default port tells portals on one host apart (local sandboxes); real portals have none.
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return PortalCheck(host, parts.username is not None or parts.password is not None)


def portal_domain(url: str | None) -> str | None:
    """The portal's host without ``www.`` (and its port if not the default); None if unusable."""
    return check_portal(url).domain if url else None


def validate_supplier(name: str, lang: str) -> tuple[str, str]:
    """(name as shown, matching key) of a requested supplier."""
    shown = clean_supplier(name)
    key = supplier_key(shown)
    if not key:
        raise ValidationFailed(api_message("supplier_empty", lang), field="supplier")
    return shown, key


def validate_portal_url(url: str | None, lang: str) -> tuple[str | None, str | None]:
    """(URL as stored, portal domain) of an optional portal URL: http(s), a host, no credentials."""
    if url is None or not url.strip():
        return None, None
    check = check_portal(url)
    if check.domain is None:
        raise ValidationFailed(api_message("portal_url_invalid", lang), field="portal_url")
    if check.has_credentials:
        raise ValidationFailed(api_message("portal_url_credentials", lang), field="portal_url")
    return url.strip(), check.domain


def matches(request_key: str, request_domain: str | None, key: str | None, domain: str | None) -> bool:
    """Whether a request and a supplier (requested or announced) are the same one: same supplier key,
    or same portal domain. A missing key or domain matches nothing."""
    return (bool(key) and request_key == key) or (domain is not None and request_domain == domain)


# --- workflow ------------------------------------------------------------------------------------


def check_status_fields(target: str, collector_id: str | None, reason: str | None,
                        lang: str) -> tuple[str | None, str | None]:
    """(collector id, reason) the target status keeps: ``available`` needs a collector, ``rejected``
    a reason; the other one is dropped."""
    if target == "available":
        value = (collector_id or "").strip()
        if not value:
            raise ValidationFailed(api_message("collector_required", lang), field="collector_id")
        if not _COLLECTOR_ID.match(value):
            raise ValidationFailed(api_message("collector_invalid", lang), field="collector_id")
        return value, None
    if target == "rejected":
        text = (reason or "").strip()
        if not text:
            raise ValidationFailed(api_message("reason_required", lang), field="reason")
        return None, text
    return None, None


def check_transition(current: str, target: str, lang: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(api_message("transition", lang, current=status_label(current, lang),
                                   target=status_label(target, lang)), field="status")
