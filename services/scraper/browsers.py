"""One Chromium per worker process; each job gets a fresh, isolated browser context (§7).

The pool also keeps that browser and the Playwright driver (the node process Playwright runs it
through) alive: when either dies it says so at once (``on_lost``, ``not_ready``), starts both again,
and gives up (``on_give_up``) after too many failures so that the process is restarted instead.
Playwright reports a dead browser (``disconnected``) but not a dead driver: ``is_connected()`` stays
true and only calls fail, so the driver is probed now and then, and whenever a job fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from services.scraper.browser import launch_browser
from services.scraper.jobs import WorkerUnavailable
from services.scraper.kit.stream import browser_user_agent
from shared.logging import get_logger

log = get_logger("collectors.scraper.browser")

# A driver and browser that cannot open and close a CDP session in this long cannot run jobs either.
PROBE_TIMEOUT_S = 10.0
# Stopping what is left of a dead driver or browser must not hold the restart.
SHUTDOWN_TIMEOUT_S = 5.0


class BrowserLost(WorkerUnavailable):
    """The browser or the Playwright driver died under a job: neither the portal's doing nor the
    collector's, and the job itself is fine."""


@dataclass(frozen=True)
class BrowserPolicy:
    # Period of the liveness probe while nothing else shows the driver died (a worker without jobs).
    check_s: float = 5.0
    # This many deaths or failed starts within the window and the pool gives up: a fresh process
    # (maybe on another node) is a better bet than restarting here again.
    max_failures: int = 5
    failure_window_s: float = 600.0


def _ignore(_: str) -> None:
    pass


class BrowserPool:
    def __init__(self, page_timeout_s: float = 15.0, policy: BrowserPolicy | None = None, *,
                 on_lost: Callable[[str], None] = _ignore,
                 on_give_up: Callable[[str], None] = _ignore) -> None:
        self.page_timeout_s = page_timeout_s
        self.policy = policy or BrowserPolicy()
        self._on_lost = on_lost
        self._on_give_up = on_give_up
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        # Set while a browser runs, or once the pool gave up: what jobs wait for.
        self._settled = asyncio.Event()
        self._lost = asyncio.Event()
        self._why_lost = ""
        self._waiting_for = "the browser is starting"
        self._gave_up: str | None = None
        self._failures: deque[float] = deque()
        self._supervisor: asyncio.Task[None] | None = None
        self._user_agent: str | None = None

    def not_ready(self) -> str | None:
        """Why no job can run now, or None."""
        if self._gave_up is not None:
            return self._gave_up
        return None if self._settled.is_set() else self._waiting_for

    async def start(self) -> None:
        """Start the driver and the browser in the background (once); jobs wait for them."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="browser-supervisor")
            self._supervisor.add_done_callback(self._supervisor_ended)

    async def wait_ready(self) -> None:
        """Return once a browser runs (or the pool gave up: then jobs fail with BrowserLost)."""
        await self.start()
        await self._settled.wait()

    @asynccontextmanager
    async def context(self, *, har_path: Path | None = None) -> AsyncIterator[BrowserContext]:
        """A fresh context; with ``har_path``, its pages' traffic is recorded there (Playwright's HAR,
        written when the context closes: a run's evidence, ``services.scraper.evidence``)."""
        await self.wait_ready()
        browser = self._browser
        if self._gave_up is not None or browser is None:
            raise BrowserLost(self._gave_up or "no browser")
        har: dict[str, Any] = ({"record_har_path": str(har_path), "record_har_content": "embed"}
                               if har_path is not None else {})
        try:
            ctx = await browser.new_context(accept_downloads=True, locale="fr-FR", timezone_id="Europe/Paris", **har)
        except PlaywrightError as exc:
            await self._raise_if_lost(browser, exc)
            raise
        ctx.set_default_timeout(self.page_timeout_s * 1000)
        try:
            yield ctx
        except Exception as exc:
            await self._raise_if_lost(browser, exc)
            raise
        finally:
            try:
                await ctx.close()
            except PlaywrightError:
                # A dead browser's contexts are gone with it; closing must not hide how the job ended.
                if await self._check(browser) is None:
                    log.warning("browser_context_not_closed", exc_info=True)

    def job_browser(self, *, har_path: Path | None = None) -> JobBrowser:
        """A job's context, opened only if its collector asks for a page (``JobBrowser.open``)."""
        return JobBrowser(self, har_path)

    async def user_agent(self) -> str:
        """The browser's User-Agent (asked once): what a job's session without a browser sends."""
        if self._user_agent is None:
            await self.wait_ready()
            browser = self._browser
            if self._gave_up is not None or browser is None:
                raise BrowserLost(self._gave_up or "no browser")
            try:
                self._user_agent = await browser_user_agent(browser)
            except PlaywrightError as exc:
                await self._raise_if_lost(browser, exc)
                raise
        return self._user_agent

    async def verify(self, context: BrowserContext) -> None:
        """Raise BrowserLost if the browser of ``context`` or its driver died: a job that failed is
        then handed back instead of blamed on the portal or the collector."""
        await self._raise_if_lost(context.browser, None)

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._shutdown()

    # --- supervision ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while (browser := await self._launch()) is not None:
            why = await self._until_lost(browser)
            self._settled.clear()
            self._waiting_for = f"the browser is restarting: {why}"
            log.error("browser_lost", why=why)
            self._on_lost(why)  # running jobs go back to the queue now, not after the ack wait
            self._failed(why)
            await self._shutdown()

    async def _launch(self) -> Browser | None:
        """Start a driver and its browser, retrying with a growing delay; None once given up."""
        attempt = 0
        while self._gave_up is None:
            try:
                self._playwright = await async_playwright().start()
                browser = await launch_browser(self._playwright)
            except Exception as exc:  # no Chromium, a browser that exits at once, a driver that cannot start
                await self._shutdown()
                log.error("browser_start_failed", error=f"{type(exc).__name__}: {_first_line(exc)}")
                self._failed(f"the browser could not start: {_first_line(exc)}")
                if self._gave_up is not None:
                    break
                attempt += 1
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 10.0))
                continue
            browser.on("disconnected", lambda b: self._mark_lost(b, "the browser exited"))
            self._browser = browser
            self._lost.clear()
            self._settled.set()
            log.info("browser_started", version=browser.version)
            return browser
        return None

    async def _until_lost(self, browser: Browser) -> str:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.check_s):
                    await self._lost.wait()
                return self._why_lost
            if (why := await self._probe(browser)) is not None:
                return why

    def _mark_lost(self, browser: Browser | None, why: str) -> None:
        if browser is not None and browser is self._browser and not self._lost.is_set():
            self._why_lost = why
            self._lost.set()

    def _failed(self, why: str) -> None:
        now = time.monotonic()
        self._failures.append(now)
        while self._failures[0] < now - self.policy.failure_window_s:
            self._failures.popleft()
        if len(self._failures) >= self.policy.max_failures and self._gave_up is None:
            self._give_up(f"the browser failed {len(self._failures)} times within "
                          f"{self.policy.failure_window_s:.0f} s, last: {why}")

    def _give_up(self, why: str) -> None:
        self._gave_up = why
        self._settled.set()  # waiting jobs fail now and go back to the queue
        log.critical("browser_given_up", why=why)
        self._on_give_up(why)

    def _supervisor_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None and self._gave_up is None:
            self._give_up(f"browser supervision crashed: {type(exc).__name__}: {exc}")

    # --- liveness ------------------------------------------------------------------------------

    async def _probe(self, browser: Browser) -> str | None:
        """Why ``browser`` or its driver cannot work (a round trip through both), or None."""
        if not browser.is_connected():
            return "the browser exited"
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                session = await browser.new_browser_cdp_session()
                await session.detach()
        except TimeoutError:
            return f"the browser or its driver did not answer within {PROBE_TIMEOUT_S:.0f} s"
        except PlaywrightError as exc:
            return f"the browser or its driver is gone: {_first_line(exc)}"
        return None

    async def _check(self, browser: Browser | None) -> str | None:
        if browser is None or browser is not self._browser or not self._settled.is_set():
            return "the browser was restarted"
        why = await self._probe(browser)
        if why is not None:
            self._mark_lost(browser, why)  # the supervisor restarts it now, not at its next probe
        return why

    async def _raise_if_lost(self, browser: Browser | None, cause: BaseException | None) -> None:
        if (why := await self._check(browser)) is not None:
            raise BrowserLost(why) from cause

    async def _shutdown(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if browser is not None and browser.is_connected():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await browser.close()
        if playwright is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await playwright.stop()


class JobBrowser:
    """One job's browser context, opened the first time its collector wants a page: most portals
    are read over HTTP (``kit.session``) and never need one. Closed with the job."""

    def __init__(self, pool: BrowserPool, har_path: Path | None) -> None:
        self._pool = pool
        self._har_path = har_path
        self._stack = AsyncExitStack()
        self.context: BrowserContext | None = None

    async def open(self) -> BrowserContext:
        if self.context is None:
            self.context = await self._stack.enter_async_context(self._pool.context(har_path=self._har_path))
        return self.context

    async def __aenter__(self) -> JobBrowser:
        return self

    async def __aexit__(self, *exc_info: Any) -> bool:
        # The context's own exit sees how the job ended (a dead browser turns it into BrowserLost).
        return bool(await self._stack.__aexit__(*exc_info))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
