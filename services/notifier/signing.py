"""Signature of webhook calls: HMAC-SHA256 over ``"<unix time>.<raw body>"`` with the tenant's secret.

Header: ``X-Collectors-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is signed with the
body, so a receiver that refuses timestamps older than a few minutes cannot be fed a replayed call.
A receiver verifies the raw bytes it received, before parsing the JSON (see :func:`verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Collectors-Signature"
SECRET_PREFIX = "whsec_"
# What receivers are advised to accept; retries are signed afresh, so a late retry is still recent.
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={digest(secret, body, timestamp)}"


def parse_header(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 signatures) of a signature header; None if it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(secret: str, body: bytes, header: str, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: a well-formed header, a recent timestamp, a matching HMAC."""
    parsed = parse_header(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = digest(secret, body, timestamp)
    return any(hmac.compare_digest(expected, s) for s in signatures)
