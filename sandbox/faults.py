"""Fault modes: a login that starts with ``fault-<mode>-`` makes every portal style misbehave.

The rules live here so that the three styles fail the same way and tests can compute what a
collection of a faulty login must end with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sandbox.data import SandboxDocument, documents_for

PREFIX = "fault-"


class Fault(StrEnum):
    PASSWORD_EXPIRED = "password_expired"
    TERMS = "terms"
    OTP = "otp"
    MAINTENANCE = "maintenance"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CAPTCHA = "captcha"
    LAYOUT_CHANGED = "layout_changed"
    BROKEN_DOWNLOAD = "broken_download"
    SLOW = "slow"
    SESSION_EXPIRY = "session_expiry"


# The portal is down or pushing back whoever logs in: these fire before credentials are checked.
SUPPLIER_SIDE = frozenset({Fault.MAINTENANCE, Fault.SERVER_ERROR, Fault.RATE_LIMITED, Fault.CAPTCHA})
# The pharmacy must do something on the portal: these fire only after a correct password.
ACCOUNT_SIDE = frozenset({Fault.PASSWORD_EXPIRED, Fault.TERMS, Fault.OTP})

RETRY_AFTER_S = 120
# Authenticated requests a session_expiry login gets before being logged out: enough to see a
# list page and a few downloads, so the logout happens in the middle of the collection.
SESSION_BUDGET = 4


def fault_of(login: str) -> Fault | None:
    """``fault-slow-3`` and ``fault-slow-3@x.fr`` are slow; an unknown mode is no fault at all."""
    if not login.startswith(PREFIX):
        return None
    mode = login[len(PREFIX):].split("-", 1)[0].split("@", 1)[0]
    try:
        return Fault(mode)
    except ValueError:
        return None


def is_broken(index: int) -> bool:
    """Under broken_download, the PDF of every fourth document (by list position) fails."""
    return index % 4 == 1


def broken_numbers(login: str, today: date) -> frozenset[str]:
    """The documents whose PDF a broken_download login cannot download (empty for other logins)."""
    if fault_of(login) is not Fault.BROKEN_DOWNLOAD:
        return frozenset()
    return frozenset(doc.number for i, doc in enumerate(documents_for(login, today)) if is_broken(i))


def download_is_broken(doc: SandboxDocument, today: date) -> bool:
    return doc.number in broken_numbers(doc.login, today)


@dataclass(frozen=True)
class FaultOptions:
    # Delay of each page (and API reply) for a slow login; downloads are not slowed down.
    slow_s: float = 1.5

    async def pace(self, login: str) -> None:
        if fault_of(login) is Fault.SLOW:
            await asyncio.sleep(self.slow_s)
