"""Recorded portal sessions (HAR files) for offline collector tests.

A HAR recorded with a real account holds its password in the login request. ``scrub_har`` replaces
secrets with placeholders everywhere a request carries them; since ``route_from_har`` matches POST
bodies strictly, the offline test then logs in with the placeholder as its password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus


def _variants(secret: str) -> list[str]:
    # As typed, and as a form or a URL encodes it.
    return sorted({secret, quote_plus(secret), quote(secret, safe="")}, key=len, reverse=True)


def _scrub_text(text: str, replacements: Mapping[str, str]) -> str:
    for secret, placeholder in replacements.items():
        for variant in _variants(secret):
            text = text.replace(variant, placeholder)
    return text


def scrub_har(path: Path | str, replacements: Mapping[str, str]) -> int:
    """Replace each secret by its placeholder in the requests of a HAR file; returns the entries changed."""
    har_path = Path(path)
    har: dict[str, Any] = json.loads(har_path.read_text(encoding="utf-8"))
    changed = 0
    for entry in har["log"]["entries"]:
        request = entry["request"]
        before = json.dumps(request, sort_keys=True)
        request["url"] = _scrub_text(request["url"], replacements)
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
