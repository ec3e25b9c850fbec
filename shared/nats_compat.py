"""One gap between nats-py and FastStream, closed where the broker is made (``shared.broker``).

FastStream 0.7's pull subscribers treat ``nats.errors.TimeoutError`` from ``fetch`` as "nothing to
fetch yet". nats-py 2.14 can end a ``fetch`` whose deadline ran out with a bare
``asyncio.TimeoutError`` instead (``_fetch_n``, before its lingering request): FastStream then logs
an error and restarts the consume task, on any idle consumer, now and then. ``fetch`` here says
"timed out" the one way both libraries mean it.
"""

from __future__ import annotations

import functools
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

_PullSubscription = JetStreamContext.PullSubscription


def install() -> None:
    """Idempotent: ``fetch`` raises only nats-py's own ``TimeoutError`` for a fetch that timed out."""
    fetch = _PullSubscription.fetch
    if getattr(fetch, "_times_out_as_nats", False):
        return

    @functools.wraps(fetch)
    async def fetch_timing_out_as_nats(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fetch(self, *args, **kwargs)
        except NatsTimeoutError:
            raise
        except TimeoutError as exc:
            raise NatsTimeoutError from exc

    fetch_timing_out_as_nats._times_out_as_nats = True  # type: ignore[attr-defined]
    _PullSubscription.fetch = fetch_timing_out_as_nats  # type: ignore[method-assign]
