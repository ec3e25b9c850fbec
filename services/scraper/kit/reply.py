"""What a portal answered to one HTTP request, and how a browser reads it: the body's encoding as
the Encoding Standard determines it, and origins (scheme, host and port)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from services.scraper.kit.errors import CollectorBug, InterfaceChanged

# Labels the Encoding Standard (what browsers follow) reads otherwise than Python's codecs: a page
# declared ISO-8859-1 or ASCII is decoded, and its forms encoded, as windows-1252.
_BROWSER_LABELS = dict.fromkeys(
    ("ascii", "us-ascii", "ansi_x3.4-1968", "iso-8859-1", "iso8859-1", "iso_8859-1", "iso88591", "latin1",
     "l1", "cp819", "ibm819", "iso-ir-100", "csisolatin1", "x-cp1252", "windows-1252"), "cp1252")
_BROWSER_LABELS |= dict.fromkeys(("iso-8859-9", "iso8859-9", "iso_8859-9", "latin5", "l5", "windows-1254"),
                                 "cp1254")
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([-\w.:]+)", re.IGNORECASE)
_PRESCAN_BYTES = 1024


def encoding_name(label: str | None) -> str | None:
    """Python's codec for a charset label, read as browsers read it; None for an unknown label."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    try:
        return codecs.lookup(_BROWSER_LABELS.get(cleaned, cleaned)).name
    except LookupError:
        return None


def _declared_charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return encoding_name(value)
    return None


def body_charset(headers: Mapping[str, str], body: bytes) -> str:
    """The encoding a browser decodes ``body`` with: a byte order mark, the ``Content-Type`` charset,
    then for HTML a ``<meta>`` charset in its first bytes, else UTF-8 if the bytes are UTF-8 and
    windows-1252 if not (the fallback of Western European browsers)."""
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    content_type = headers.get("content-type", "")
    declared = _declared_charset(content_type)
    if declared is not None:
        return declared
    if content_type and "html" not in content_type.lower():
        return "utf-8"  # JSON and other text: UTF-8 unless said otherwise
    meta = _META_CHARSET.search(body[:_PRESCAN_BYTES])
    found = encoding_name(meta.group(1).decode("ascii", errors="replace")) if meta else None
    if found is not None:
        return "utf-8" if found.startswith("utf-16") else found  # a byte-level declaration cannot be UTF-16
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


@dataclass(frozen=True)
class HttpReply:
    status: int  # 0: no HTTP answer at all (connection refused, timed out)
    url: str  # after redirects
    headers: dict[str, str]  # lower-case names
    body: bytes
    error: str = ""

    @cached_property
    def charset(self) -> str:
        """What the body is encoded in, as a browser would tell (and a form on it is sent in)."""
        return body_charset(self.headers, self.body)

    def text(self) -> str:
        """The body decoded as a browser decodes it."""
        charset = self.charset
        return self.body.decode("utf-8-sig" if charset == "utf-8" else charset, errors="replace")

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise InterfaceChanged(f"{what}: HTTP {self.status}, not JSON") from None


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (credentials in it left out), what same-origin rules compare."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def http_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested over HTTP (an unsupported scheme, no host, empty), or None."""
    if not url or not url.strip():
        return "an empty URL"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return f"an invalid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return (f"a {parts.scheme.lower()}: URL, not http(s)" if parts.scheme
                else "a relative URL (nothing to resolve it against)")
    if not host:
        return "a URL without a host"
    return None


def require_http_url(url: str, what: str) -> None:
    """Raise ``CollectorBug`` for a URL no HTTP request can be sent to: ``javascript:__doPostBack``
    taken for a link, ``mailto:``, ``data:``, an unresolved relative URL... is the recipe's or the
    collector's mistake, never something to send to the portal (nor to blame it for)."""
    problem = http_url_problem(url)
    if problem is not None:
        raise CollectorBug(f"{what} {url[:200]!r}: {problem} — a recipe or collector bug")


def host_of(url: str | None) -> str | None:
    try:
        return (urlsplit(url).hostname or None) if url else None
    except ValueError:
        return None


def on_host(url: str | None, portal_url: str | None) -> bool:
    """Whether ``url`` is on the portal's own host; True when either is unknown (nothing to tell)."""
    host, portal = host_of(url), host_of(portal_url)
    return host is None or portal is None or host == portal
