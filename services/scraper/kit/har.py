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
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from services.scraper.kit.reply import HttpReply

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
            API_REQUEST: True, "startedDateTime": "1970-01-01T00:00:00.000Z", "time": 0,
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


class HarReplay:
    """Answers the page-less client from a HAR: same method and URL, and for a POST the same body.

    Entries for one request are served in recorded order (the last one again once they are used
    up), so a session that reads the same page twice replays both answers. A request the recording
    does not hold gets no answer (status 0), as ``route_from_har(not_found="abort")`` does for pages.
    """

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._entries: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
        self._served: dict[tuple[str, str, str | None], int] = {}
        for entry in entries:
            if not entry.get(API_REQUEST):
                continue  # a page's entry: route_from_har serves those
            request = entry["request"]
            post = request.get("postData")
            key = (request["method"].upper(), request["url"], post.get("text") if post else None)
            self._entries.setdefault(key, []).append(entry)

    @classmethod
    def load(cls, path: Path | str) -> HarReplay:
        har: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(har["log"]["entries"])

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
