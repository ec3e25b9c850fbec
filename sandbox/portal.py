"""The sandbox web app: one sub-application per portal style, each under its own path prefix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import escape

from aiohttp import web

from sandbox.classic import TITLE as CLASSIC_TITLE
from sandbox.classic import create_classic_app
from sandbox.faults import Fault, FaultOptions
from sandbox.legacy import TITLE as LEGACY_TITLE
from sandbox.legacy import create_legacy_app
from sandbox.spa import TITLE as SPA_TITLE
from sandbox.spa import create_spa_app
from sandbox.twostep import TITLE as TWOSTEP_TITLE
from sandbox.twostep import create_twostep_app

StyleFactory = Callable[[Callable[[], date], FaultOptions], web.Application]

# prefix -> (title, factory); a new style is one more line here.
STYLES: dict[str, tuple[str, StyleFactory]] = {
    "classic": (CLASSIC_TITLE, create_classic_app),
    "twostep": (TWOSTEP_TITLE, create_twostep_app),
    "spa": (SPA_TITLE, create_spa_app),
    "legacy": (LEGACY_TITLE, create_legacy_app),
}


def create_app(today: date | None = None, *, slow_s: float = FaultOptions.slow_s) -> web.Application:
    """``today`` pins the documents' dates (tests); by default they follow the real calendar.
    ``slow_s`` is how long each page of a ``fault-slow-*`` login takes."""
    today_fn: Callable[[], date] = (lambda: today) if today is not None else date.today
    faults = FaultOptions(slow_s=slow_s)
    app = web.Application()
    app.router.add_get("/", _index)
    for prefix, (_, factory) in STYLES.items():
        app.add_subapp(f"/{prefix}/", factory(today_fn, faults))
    return app


async def _index(request: web.Request) -> web.Response:
    items = "\n".join(
        f'<li><a class="style" href="/{prefix}/">{escape(title)}</a> <code>/{prefix}/</code></li>'
        for prefix, (title, _) in STYLES.items()
    )
    modes = ", ".join(f"<code>{fault.value}</code>" for fault in Fault)
    html = f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Sandbox — portails fournisseurs</title></head>
<body><h1>Sandbox — portails fournisseurs</h1>
<p>Mot de passe de tous les comptes : <code>demo</code>.</p>
<ul id="styles">
{items}
</ul>
<p>Un identifiant qui commence par <code>fault-MODE-</code> déclenche une panne : {modes}.</p>
</body></html>
"""
    return web.Response(text=html, content_type="text/html")


@dataclass
class SandboxPortal:
    url: str  # root, no trailing slash
    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_portal(host: str = "127.0.0.1", port: int = 0, *, today: date | None = None,
                       slow_s: float = FaultOptions.slow_s) -> SandboxPortal:
    runner = web.AppRunner(create_app(today, slow_s=slow_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    return SandboxPortal(url=f"http://{bound_host}:{bound_port}", runner=runner)
