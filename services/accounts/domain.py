"""Pure rules of the accounts service: validation and how collection results move a status."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from services.accounts.messages import api_message
from shared.errors import CollectionErrorCode, ValidationFailed
from shared.events import AccountStatus

MAX_ACCOUNTS_PER_COLLECTOR = 2
MAX_PASSWORD_LENGTH = 256
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")


def normalise_login(login: str) -> str:
    return unicodedata.normalize("NFC", login).strip()


def login_key(login: str) -> str:
    """Two logins that a portal would take as the same account have the same key."""
    return normalise_login(login).casefold()


def validate_login(login: str, login_kind: str, lang: str) -> str:
    value = normalise_login(login)
    if not value:
        raise ValidationFailed(api_message("login_empty", lang), field="login")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValidationFailed(api_message("login_invalid", lang), field="login")
    if login_kind == "email" and not EMAIL.match(value):
        raise ValidationFailed(api_message("login_email", lang), field="login")
    return value


def validate_password(password: str, lang: str) -> None:
    if not password or not password.strip():
        raise ValidationFailed(api_message("password_empty", lang), field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(api_message("password_long", lang), field="password")


def status_after_failure(code: CollectionErrorCode) -> AccountStatus:
    return AccountStatus.ACTION_REQUIRED if code.user_fixable else AccountStatus.RETRYING


@dataclass(frozen=True)
class AttemptStamp:
    """What identifies an attempt's freshness: its credentials and when it started."""

    credential_version: int
    started_at: datetime


def is_stale(current_version: int, last_attempt_at: datetime | None, result: AttemptStamp) -> bool:
    """A result for older credentials, or for an attempt older than the last one, changes nothing."""
    if result.credential_version < current_version:
        return True
    return last_attempt_at is not None and result.started_at < last_attempt_at
