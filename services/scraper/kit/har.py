"""Recorded portal sessions (HAR files) for offline collector tests.

Pages record themselves (Playwright's ``record_har_path``) and replay with ``route_from_har``; the
page-less client (``kit.portal_http``) is invisible to both, so ``HarRecorder`` adds its exchanges
to the same file and ``HarReplay`` answers them from it.

A HAR recorded with a real account holds its password in the login request. ``scrub_har`` replaces
secrets with placeholders everywhere a request carries them; since replays match POST bodies
strictly, the offline test then logs in with the placeholder as its password.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from services.scraper.kit.reply import HttpReply, origin

# Marks the entries of the page-less client, as Playwright marks its own API requests.
API_REQUEST = "_apiRequest"
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded")


# Placeholders every encoding leaves as they are: the replay that types one sends what the
# scrubbed recording holds, whether the secret was in a form, a URL or a JSON body.
_SAFE_PLACEHOLDER = re.compile(r"[A-Za-z0-9._~-]+")


def _variants(secret: str) -> list[str]:
    # As typed, as a URL or a form encodes it (UTF-8, or windows-1252 for older portals' forms), and
    # inside a JSON string (a script's login call: quotes, backslashes, maybe non-ASCII escaped).
    encoded = {quote_plus(secret, encoding=charset, errors="xmlcharrefreplace") for charset in ("utf-8", "cp1252")}
    in_json = {json.dumps(secret, ensure_ascii=ascii_only)[1:-1] for ascii_only in (True, False)}
    return sorted({secret, quote(secret, safe=""), *encoded, *in_json}, key=len, reverse=True)


def _scrub_text(text: str, replacements: Mapping[str, str]) -> str:
    for secret, placeholder in replacements.items():
        for variant in _variants(secret):
            text = text.replace(variant, placeholder)
    return text


def scrub_har(path: Path | str, replacements: Mapping[str, str]) -> int:
    """Replace each secret by its placeholder in the requests of a HAR file; returns the entries changed.

    Placeholders are made of letters, digits and ``-._~``: any other character would be encoded
    differently by the replay than it is written in the recording, which would then never match.
    """
    unsafe = [p for p in replacements.values() if not _SAFE_PLACEHOLDER.fullmatch(p)]
    if unsafe:
        raise ValueError(f"placeholders may only use letters, digits and -._~: {unsafe!r}")
    har_path = Path(path)
    har: dict[str, Any] = json.loads(har_path.read_text(encoding="utf-8"))
    changed = 0
    for entry in har["log"]["entries"]:
        request = entry["request"]
        before = json.dumps(request, sort_keys=True)
        request["url"] = _scrub_text(request["url"], replacements)
        for item in request.get("headers", []):  # a collector's own header may carry a secret
            item["value"] = _scrub_text(item["value"], replacements)
        for item in request.get("queryString", []):
            item["value"] = _scrub_text(item["value"], replacements)
        post = request.get("postData")
        if post is not None:
            if "text" in post:
                post["text"] = _scrub_text(post["text"], replacements)
            for param in post.get("params", []):
                param["value"] = _scrub_text(param.get("value", ""), replacements)
        changed += json.dumps(request, sort_keys=True) != before
    har_path.write_text(json.dumps(har), encoding="utf-8")
    return changed


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _pairs(headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers.items()]


class HarRecorder:
    """Keeps the page-less client's exchanges and writes them into a HAR file."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, method: str, url: str, headers: Mapping[str, str], body: str | None, reply: HttpReply) -> None:
        mime = reply.headers.get("content-type", "")
        content: dict[str, Any] = {"size": len(reply.body), "mimeType": mime}
        text = _utf8(reply.body) if any(t in mime for t in _TEXT_TYPES) else None
        if text is not None:
            content["text"] = text
        else:  # binary, or text in another charset: kept byte for byte
            content |= {"text": base64.b64encode(reply.body).decode("ascii"), "encoding": "base64"}
        request: dict[str, Any] = {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                                   "headers": _pairs(headers), "queryString": [], "cookies": [],
                                   "headersSize": -1, "bodySize": len(body or "")}
        if body is not None:
            request["postData"] = {"mimeType": headers.get("Content-Type", ""), "text": body, "params": []}
        self.entries.append({
            # When, because a recipe's {today} must be typed on replay as it was on that day.
            API_REQUEST: True, "startedDateTime": datetime.now(UTC).isoformat(timespec="milliseconds"), "time": 0,
            "request": request,
            "response": {"status": reply.status, "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": _pairs(reply.headers), "cookies": [], "content": content,
                         "redirectURL": reply.headers.get("location", ""), "headersSize": -1,
                         "bodySize": len(reply.body)},
            "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
        })

    def save(self, path: Path | str) -> None:
        """Add the entries to ``path``: after the browser context closed, so that the pages' own
        recording, written at close, is kept."""
        har_path = Path(path)
        har: dict[str, Any] = (json.loads(har_path.read_text(encoding="utf-8")) if har_path.exists()
                               else {"log": {"version": "1.2", "creator": {"name": "collectors", "version": "1"},
                                             "pages": [], "entries": []}})
        har["log"]["entries"].extend(self.entries)
        har_path.write_text(json.dumps(har), encoding="utf-8")


def _recorded_on(entries: list[dict[str, Any]]) -> date | None:
    """The (local) day the recording started, from its entries' times (older recordings of ours
    wrote 1970 for the page-less client's: not a day)."""
    days = []
    for entry in entries:
        try:
            started = datetime.fromisoformat(str(entry.get("startedDateTime", "")).replace("Z", "+00:00"))
        except ValueError:
            continue
        if started.year > 1970:
            days.append(started.astimezone().date())
    return min(days, default=None)


class HarReplay:
    """Answers the page-less client from a HAR: same method and URL, and for a POST the same body.

    A POST's body often holds a date the collector typed (a search up to today): ``recorded_on`` is
    the day the recording was made, which ``CollectContext.today`` gives a collection replaying it.

    Entries for one request are served in recorded order (the last one again once they are used
    up), so a session that reads the same page twice replays both answers. A request the recording
    does not hold gets no answer (status 0), as ``route_from_har(not_found="abort")`` does for pages.
    """

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._entries: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
        self._served: dict[tuple[str, str, str | None], int] = {}
        self.recorded_on = _recorded_on(entries)
        for entry in entries:
            if not entry.get(API_REQUEST):
                continue  # a page's entry: route_from_har serves those
            request = entry["request"]
            post = request.get("postData")
            key = (request["method"].upper(), request["url"], post.get("text") if post else None)
            self._entries.setdefault(key, []).append(entry)

    @classmethod
    def load(cls, path: Path | str, portal_url: str | None = None) -> HarReplay:
        """The recording at ``path``; given ``portal_url``, answering for that portal whatever
        origin the recording was made on (see ``rebase_har``)."""
        return cls(load_har(path, portal_url)["log"]["entries"])

    def answer(self, method: str, url: str, body: str | None) -> HttpReply:
        key = (method.upper(), url, body if method.upper() != "GET" else None)
        found = self._entries.get(key)
        if not found:
            return HttpReply(status=0, url=url, headers={}, body=b"", error=f"{method} {url}: not in the HAR")
        served = self._served.get(key, 0)
        self._served[key] = served + 1
        response = found[min(served, len(found) - 1)]["response"]
        content = response.get("content", {})
        text = content.get("text", "")
        raw = base64.b64decode(text) if content.get("encoding") == "base64" else text.encode("utf-8")
        return HttpReply(status=int(response["status"]), url=url,
                         headers={h["name"].lower(): h["value"] for h in response.get("headers", [])}, body=raw)


# --- a whole recording made safe to keep: ``scrub_recording`` ---------------------------------

# Where ``collectors dev record`` writes what the replay needs to know about the recording.
META = "_collectors"
SCRUBBED = "scrubbed"
PASSWORD_PLACEHOLDER = "scrubbed-password"
# Headers whose whole value is a credential.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-auth-token",
                                 "x-access-token", "x-session-token"})
# JSON members holding a bearer or session token (a CSRF token is not a secret: it may stay).
_TOKEN_MEMBER = re.compile(
    r'"(?:access_?token|refresh_?token|id_?token|auth_?token|bearer|token|jwt|session_?id|sessionid|session_?token)"'
    r'\s*:\s*"([^"\\]{6,})"', re.IGNORECASE)
# A value replaced wherever it shows (a page echoing it, a URL carrying it) only past this length:
# shorter ones ("1", "fr", "necessary") are replaced where they are cookies, not in every text.
_GLOBAL_MIN_LENGTH = 16


def _secret_variants(secret: str) -> list[str]:
    """Every way a recording may spell ``secret``: ``_variants`` plus other charsets and base64."""
    found = set(_variants(secret))
    for charset in ("latin-1", "iso-8859-15", "cp1252", "utf-8"):
        try:
            raw = secret.encode(charset)
        except UnicodeEncodeError:
            continue
        found |= {quote(raw, safe=""), quote_plus(raw), base64.b64encode(raw).decode("ascii"),
                  base64.urlsafe_b64encode(raw).decode("ascii")}
        found.add(base64.b64encode(raw).decode("ascii").rstrip("="))
    return sorted((v for v in found if v), key=len, reverse=True)


def _cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            pairs.append((name, value))
    return pairs


def _scrub_cookie_header(value: str) -> str:
    return "; ".join(f"{name}={SCRUBBED}" for name, _ in _cookie_pairs(value))


def _scrub_set_cookie(value: str) -> str:
    lines = []
    for line in value.split("\n"):  # Playwright joins several Set-Cookie headers with newlines
        first, sep, attributes = line.partition(";")
        name, eq, _ = first.partition("=")
        lines.append(f"{name}={SCRUBBED}{sep}{attributes}" if eq else line)
    return "\n".join(lines)


def _set_cookie_values(value: str) -> list[str]:
    return [line.partition(";")[0].partition("=")[2].strip() for line in value.split("\n")]


def _credential_of(value: str) -> str:
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() or scheme


def _secrets_of(entries: list[dict[str, Any]]) -> set[str]:
    """Session cookie values, credentials of Authorization-like headers and token members of JSON
    answers: whatever a recording holds that would let someone into the account."""
    found: set[str] = set()
    for entry in entries:
        for part in (entry.get("request", {}), entry.get("response", {})):
            for cookie in part.get("cookies", []):
                found.add(str(cookie.get("value", "")))
            for header in part.get("headers", []):
                name, value = header["name"].lower(), str(header.get("value", ""))
                if name == "cookie":
                    found |= {v for _, v in _cookie_pairs(value)}
                elif name == "set-cookie":
                    found |= set(_set_cookie_values(value))
                elif name in _CREDENTIAL_HEADERS:
                    found |= {value.strip(), _credential_of(value)}
        content = entry.get("response", {}).get("content", {})
        if content.get("encoding") != "base64" and isinstance(content.get("text"), str):
            found |= set(_TOKEN_MEMBER.findall(content["text"]))
        post = entry.get("request", {}).get("postData") or {}
        if isinstance(post.get("text"), str):
            found |= set(_TOKEN_MEMBER.findall(post["text"]))
    return {s for s in found if s and s != SCRUBBED}


def _scrub_headers(headers: list[dict[str, Any]]) -> None:
    for header in headers:
        name = header["name"].lower()
        if name == "cookie":
            header["value"] = _scrub_cookie_header(str(header["value"]))
        elif name == "set-cookie":
            header["value"] = _scrub_set_cookie(str(header["value"]))
        elif name in _CREDENTIAL_HEADERS:
            header["value"] = SCRUBBED


def _replace_strings(node: Any, replace: Any) -> Any:
    """``node`` with ``replace`` applied to each of its strings (base64 bodies left as they are)."""
    if isinstance(node, str):
        return replace(node)
    if isinstance(node, list):
        return [_replace_strings(item, replace) for item in node]
    if isinstance(node, dict):
        if node.get("encoding") == "base64":
            return {k: (v if k == "text" else _replace_strings(v, replace)) for k, v in node.items()}
        return {k: _replace_strings(v, replace) for k, v in node.items()}
    return node


def scrub_recording(path: Path | str, password: str, *, placeholder: str = PASSWORD_PLACEHOLDER) -> int:
    """Make a recorded session safe to keep: the password (as typed, urlencoded in any charset, in
    JSON, in base64) becomes ``placeholder`` everywhere, requests and answers; cookie values, the
    values of ``Authorization`` and similar headers, and bearer or session tokens of JSON answers
    become ``scrubbed``, where they are and anywhere else they show. CSRF tokens and form state
    (``__VIEWSTATE``) stay: they open nothing.

    Replacements are the same everywhere, so the recording still replays: a value an answer gave
    is sent back, scrubbed, as the recording holds it. Returns how many secrets were found.
    """
    har_path = Path(path)
    har: dict[str, Any] = json.loads(har_path.read_text(encoding="utf-8"))
    scrubber = scrub_har_document(har, password, placeholder=placeholder)
    har_path.write_text(json.dumps(har), encoding="utf-8")
    return scrubber.found


class Scrubber:
    """The replacements ``scrub_recording`` applies, for other texts of the same session (a page's
    HTML, the URLs of a trail): the password in every encoding, cookie values and tokens."""

    def __init__(self, replacements: list[tuple[str, str]], found: int) -> None:
        self._replacements = sorted(replacements, key=lambda pair: len(pair[0]), reverse=True)
        self.found = found

    def __call__(self, text: str) -> str:
        for secret, by in self._replacements:
            if secret in text:
                text = text.replace(secret, by)
        return text


def scrub_har_document(har: dict[str, Any], password: str, *,
                       placeholder: str = PASSWORD_PLACEHOLDER) -> Scrubber:
    """``scrub_recording`` on a HAR held in memory (changed in place); returns the scrubber, to
    apply to what else the session showed."""
    if not _SAFE_PLACEHOLDER.fullmatch(placeholder):
        raise ValueError(f"placeholders may only use letters, digits and -._~: {placeholder!r}")
    entries: list[dict[str, Any]] = har["log"]["entries"]
    secrets = _secrets_of(entries)
    for entry in entries:
        for part in (entry.get("request", {}), entry.get("response", {})):
            _scrub_headers(part.get("headers", []))
            for cookie in part.get("cookies", []):
                cookie["value"] = SCRUBBED
    replacements: list[tuple[str, str]] = []
    if password:
        replacements += [(variant, placeholder) for variant in _secret_variants(password)]
    for secret in secrets:
        if len(secret) >= _GLOBAL_MIN_LENGTH:
            replacements += [(variant, SCRUBBED) for variant in _variants(secret)]
    scrubber = Scrubber(replacements, len(secrets) + bool(password))
    har["log"]["entries"] = _replace_strings(entries, scrubber)
    meta = har["log"].setdefault(META, {})
    meta["password"] = placeholder
    return scrubber


# --- replaying a recording under another portal origin -----------------------------------------


def recorded_portal(har: Mapping[str, Any]) -> str | None:
    """The origin of the portal a recording was made on: as ``collectors dev record`` noted it, or
    the first request's (a collection starts on its portal)."""
    log = har.get("log", {})
    noted = log.get(META, {}).get("portal_url")
    if noted:
        return origin(str(noted))
    entries = log.get("entries", [])
    return origin(entries[0]["request"]["url"]) if entries else None


def rebase_har(har: dict[str, Any], portal_url: str) -> dict[str, Any]:
    """``har`` answering for the portal at ``portal_url``: the recorded portal's origin becomes
    that one's in every URL, header and text body (other origins stay as recorded)."""
    recorded, wanted = recorded_portal(har), origin(portal_url)
    if not recorded or recorded == wanted:
        return har
    # Not inside a longer host or port: http://127.0.0.1:80 is no prefix of http://127.0.0.1:8080.
    pattern = re.compile(re.escape(recorded) + r"(?![\w.:-])")
    rebased: dict[str, Any] = _replace_strings(har, lambda text: pattern.sub(wanted, text))
    return rebased


def load_har(path: Path | str, portal_url: str | None = None) -> dict[str, Any]:
    har: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return rebase_har(har, portal_url) if portal_url else har
