"""Server-side sessions of a sandbox portal style, with the session_expiry and account-side faults."""

from __future__ import annotations

import secrets
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.faults import ACCOUNT_SIDE, SESSION_BUDGET, Fault, fault_of

# Benchmarks open thousands of sessions; the oldest are forgotten (a real portal expires them).
MAX_SESSIONS = 20_000


@dataclass
class Session:
    login: str
    token: str
    # Requests left before the portal logs this session out; None: never.
    budget: int | None = None
    # An account-side fault the pharmacy must clear on the portal before seeing anything else.
    blocker: Fault | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(18))


class Sessions:
    def __init__(self) -> None:
        self._by_token: OrderedDict[str, Session] = OrderedDict()
        self._opened: Counter[str] = Counter()

    def open(self, login: str) -> Session:
        fault = fault_of(login)
        self._opened[login] += 1
        # Every other login of a session_expiry pharmacy is cut short, so each collection run
        # meets exactly one logout and succeeds after logging in again.
        expires = fault is Fault.SESSION_EXPIRY and self._opened[login] % 2 == 1
        session = Session(login=login, token=secrets.token_urlsafe(24),
                          budget=SESSION_BUDGET if expires else None,
                          blocker=fault if fault in ACCOUNT_SIDE else None)
        self._by_token[session.token] = session
        while len(self._by_token) > MAX_SESSIONS:
            self._by_token.popitem(last=False)
        return session

    def peek(self, token: str | None) -> Session | None:
        """The session, without counting a request against it."""
        return self._by_token.get(token or "")

    def use(self, token: str | None) -> Session | None:
        """The session serving one more authenticated request, or None once it is gone."""
        session = self._by_token.get(token or "")
        if session is None:
            return None
        if session.budget is not None:
            if session.budget <= 0:
                del self._by_token[session.token]
                return None
            session.budget -= 1
        return session

    def require(self, token: str | None, login_url: str, step_url: Callable[[Fault], str]) -> Session:
        """The logged-in pharmacy's session for a page of its own, or a redirect: to the login page
        once the session is gone, or to what the account must clear first (``step_url``)."""
        session = self.use(token)
        if session is None:
            raise web.HTTPFound(login_url)
        if session.blocker is not None:
            raise web.HTTPFound(step_url(session.blocker))
        return session

    def close(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)
