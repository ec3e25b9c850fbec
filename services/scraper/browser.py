"""Launching Debian's Chromium through Playwright (§7): `playwright install` cannot download here."""

from __future__ import annotations

import os
import shutil

from playwright.async_api import Browser, Playwright

# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which this
# machine's closed network refuses many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]


class ChromiumNotFound(RuntimeError):
    pass


# Debian's headless-only build of the same Chromium (package chromium-headless-shell), the one
# Playwright itself runs headless: a browser context with its page costs about a fifth of the CPU
# the full browser's headless mode does (one renderer process instead of three), which is most of
# a sandbox collection. The full browser remains the fallback.
HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
FULL_BROWSER = "/usr/bin/chromium"


def chromium_path() -> str:
    explicit = os.environ.get("COLLECTORS_CHROMIUM_PATH")
    for candidate in (explicit, HEADLESS_SHELL, FULL_BROWSER, shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise ChromiumNotFound(
        "Chromium not found: install it with `apt-get install -y chromium-headless-shell` (or chromium) "
        "or set COLLECTORS_CHROMIUM_PATH"
    )


async def launch_browser(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
