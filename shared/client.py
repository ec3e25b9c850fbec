"""Client of the request/reply API, used by the CLI and by services calling each other."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from shared.errors import RemoteApiError

# The CLI's NATS user when NATS_URL names none (deploy/nats: the operators' user); a URL that names a
# user (nats://gateway:...@host) gets that user's inbox, the only one it may read.
CLI_USER = "operator"


def servers(url: str) -> list[str]:
    """The servers of ``NATS_URL``, which may name a whole cluster ("nats://a:4222,nats://b:4222");
    nats-py would take such a string for a single server."""
    listed = [part.strip() for part in url.split(",") if part.strip()]
    if not listed:
        raise ValueError("NATS_URL names no server")
    return listed


def url_user(url: str) -> str | None:
    """The NATS user named in ``NATS_URL`` (its first server's), if any."""
    return urlsplit(servers(url)[0]).username or None


def inbox_prefix(name: str) -> str:
    """Where the NATS client of service or user ``name`` receives its replies: request replies,
    JetStream API answers, pulled messages. Every client's own (``_INBOX_<name>``), not nats-py's
    shared ``_INBOX``, so that NATS can grant each user its own inbox only: on a shared one any user
    could read any reply, the password of reveal_credentials included (§6, deploy/nats/permissions.py).
    """
    return f"_INBOX_{name}"


class ServiceUnavailable(RemoteApiError):
    """No instance of the service answered (not running, or too slow)."""

    def __init__(self, subject: str, why: str) -> None:
        super().__init__("unavailable", f"no answer on {subject}: {why}")


class ApiClient:
    def __init__(self, nc: Client, timeout: float = 10.0) -> None:
        self.nc = nc
        self.timeout = timeout

    @classmethod
    async def connect(cls, url: str, timeout: float = 10.0, name: str = "collectors-cli",
                      user: str | None = None) -> ApiClient:
        """``name`` labels the connection; ``user`` is the NATS user, whose inbox it must use (by
        default the one ``url`` names, else CLI_USER)."""
        user = user or url_user(url) or CLI_USER
        nc = await nats.connect(servers(url), name=name, connect_timeout=3, max_reconnect_attempts=2,
                                allow_reconnect=False, inbox_prefix=inbox_prefix(user))
        return cls(nc, timeout)

    async def close(self) -> None:
        await self.nc.drain()

    async def call(self, subject: str, payload: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        """Send a request; return the result or raise :class:`RemoteApiError` with its code."""
        from shared.telemetry import trace_headers  # here: the CLI's client never loads the tracing SDK

        try:
            msg = await self.nc.request(subject, json.dumps(payload or {}).encode(),
                                        timeout=timeout or self.timeout, headers=trace_headers() or None)
        except NoRespondersError as exc:
            raise ServiceUnavailable(subject, "no service is listening") from exc
        except NatsTimeout as exc:
            raise ServiceUnavailable(subject, "timed out") from exc
        reply = json.loads(msg.data)
        if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
            err = reply["error"]
            raise RemoteApiError(str(err.get("code")), str(err.get("message")), field=err.get("field"))
        if not isinstance(reply, dict):
            raise RemoteApiError("internal_error", "unexpected reply shape")
        return reply
