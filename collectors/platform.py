"""``collectors up``: an embedded nats-server (unless NATS_URL is set), MongoDB or its in-memory
stand-in, the six services in one process, the web service (HTTP API and page, services/web) and,
with ``--demo``, the sandbox portals and a demo pharmacy (§9)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.portal import SandboxPortal, start_portal
from services.accounts.crypto import Keyring, ensure_key_file
from shared import telemetry
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.journal import StoreLocked
from shared.mongo import (
    EMBEDDED_SUBDIR,
    MEMORY_URL,
    is_memory_url,
    release_embedded_store,
    use_embedded_store,
    use_in_memory,
)
from shared.natsserver import NatsServer, port_open, wait_jetstream_ready
from shared.runtime import ServiceRuntime
from shared.settings import (
    AccountsSettings,
    SchedulerSettings,
    ScraperSettings,
    Settings,
)
from shared.subjects import SERVICES, Api, health

DEMO_TENANT = "demo"
# (collector, login, password): the sandbox accepts any login with the password "demo".
DEMO_ACCOUNTS = [
    ("sandbox-classic", "pharmacie-centrale", "demo"),
    ("sandbox-classic", "pharmacie-du-marche", "demo"),
    ("sandbox-twostep", "pharmacie-centrale@demo.test", "demo"),
    ("sandbox-spa", "pharmacie-centrale", "demo"),
    # Two pharmacies under one customer login: each invoice shows its site.
    ("sandbox-legacy", "groupement-multi", "demo"),
]
DEFAULT_SANDBOX_PORT = 8765
# `collectors up --metrics-port` (0: no /metrics): every service's series, on 127.0.0.1 only.
METRICS_PORT_ENV = "COLLECTORS_METRICS_PORT"
# `collectors up --web-port` (0: no web service): the HTTP API and the page, on 127.0.0.1 only.
WEB_PORT_ENV = "COLLECTORS_WEB_PORT"
DEFAULT_WEB_PORT = 8080
# How long the demo sign-in link printed by `collectors up --demo` stays valid.
DEMO_TOKEN_MINUTES = 12 * 60
DEMO_LINK_FILE = "demo-signin-link.txt"

Say = Callable[[str], None]


class PlatformError(RuntimeError):
    pass


@dataclass
class PlatformOptions:
    data_dir: Path
    demo: bool = False
    nats_port: int = 4222
    sandbox_port: int = DEFAULT_SANDBOX_PORT
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass
class Platform:
    options: PlatformOptions
    say: Say
    nats: NatsServer | None = None
    nats_url: str = ""
    portal: SandboxPortal | None = None
    runtimes: list[ServiceRuntime] = field(default_factory=list)
    in_memory_db: bool = False
    embedded_store: bool = False
    metrics: Any = None  # the /metrics server's aiohttp runner
    web: Any = None  # services.web.app.WebServer
    web_url: str = ""

    async def start(self) -> None:
        opts = self.options
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        mongodb_url = opts.env.get("MONGODB_URL") or opts.env.get("COLLECTORS_MONGODB_URL")
        self.in_memory_db = is_memory_url(mongodb_url) or _truthy(opts.env.get("COLLECTORS_IN_MEMORY"))
        if self.in_memory_db:
            mongodb_url = MEMORY_URL
            use_in_memory()
            self.say("[bold yellow]MongoDB: the IN-MEMORY stand-in, as asked (COLLECTORS_IN_MEMORY or "
                     "MONGODB_URL=memory://). Accounts and invoices are lost when this process stops.[/]")
        elif mongodb_url:
            self.say(f"MongoDB: {_redact_url(mongodb_url)}")
        else:
            self._open_embedded_store()
        self.nats_url = opts.env.get("NATS_URL") or opts.env.get("COLLECTORS_NATS_URL") or ""
        if self.nats_url:
            self.say(f"NATS: {_redact_url(self.nats_url)} (external)")
        else:
            await self._start_embedded_nats()
        await wait_jetstream_ready(self.nats_url)

        key_settings = self._key_settings()
        if opts.demo:
            port = opts.sandbox_port if not port_open(opts.sandbox_port) else 0
            self.portal = await start_portal(port=port)
            self.say(f"Sandbox portals: {self.portal.url}/ (any login, password [bold]demo[/])")
        self.runtimes = self._build(mongodb_url, key_settings)
        for rt in self.runtimes:
            await rt.start()
        self.say(f"Services up: {', '.join(rt.name for rt in self.runtimes)} — NATS {self.nats_url}")
        await self._start_web()
        metrics_port = int(opts.env.get(METRICS_PORT_ENV) or 0)
        if metrics_port and telemetry.metrics_enabled():
            try:
                self.metrics = await telemetry.serve_metrics("127.0.0.1", metrics_port)
                self.say(f"Metrics: http://127.0.0.1:{metrics_port}/metrics")
            except OSError as exc:  # the port is taken: the platform works without its metrics
                self.say(f"[yellow]Metrics not served: port {metrics_port}: {exc.strerror} "
                         f"(--metrics-port to choose another)[/]")

    async def _start_web(self) -> None:
        """The web service (HTTP API and page) in this process, trusting the development signing key
        of the data dir unless the environment names a JWKS URL or a public key."""
        from services.web.app import WebServer, create_app, nats_backend
        from services.web.auth import SIGNING_KEY_FILE, ensure_signing_key, mint_token
        from shared.settings import WebSettings

        port = int(self.options.env.get(WEB_PORT_ENV) or DEFAULT_WEB_PORT)
        if port == 0:
            return
        settings = WebSettings(nats_url=self.nats_url, data_dir=self.options.data_dir, web_host="127.0.0.1",
                               web_port=port)
        key_path = self.options.data_dir / SIGNING_KEY_FILE
        key, created = ensure_signing_key(key_path)
        if created:
            self.say(f"Web signing key (development tokens): generated {key_path}")
        server = WebServer(create_app(settings, nats_backend(settings)), "127.0.0.1", port)
        try:
            await server.start()
        except OSError as exc:  # the port is taken: the platform works without its page
            await server.stop()
            self.say(f"[yellow]Web API not served: port {port}: {exc} (--web-port to choose another)[/]")
            return
        self.web, self.web_url = server, server.url
        self.say(f"Web API and page: {self.web_url}/  (OpenAPI: {self.web_url}/openapi.json; "
                 f"a token: collectors dev token --tenant T --data-dir {self.options.data_dir})")
        if self.options.demo:
            demo = mint_token(key, tenant=DEMO_TENANT, minutes=DEMO_TOKEN_MINUTES, issuer=settings.web_jwt_issuer,
                              audience=settings.web_jwt_audience)
            link = f"{self.web_url}/signin?token={demo}"
            # Also in a file: a console narrower than the link folds it over lines.
            saved = self.options.data_dir / DEMO_LINK_FILE
            saved.write_text(link + "\n", encoding="utf-8")
            saved.chmod(0o600)
            self.say(f"Demo pharmacy's page (sign-in link, also in {saved}): {link}")

    def _open_embedded_store(self) -> None:
        """The durable embedded store under the data dir, each service's database opened (loaded)
        now, so that a data dir another process holds is refused before anything starts."""
        started = time.perf_counter()
        try:
            client = use_embedded_store(self.options.data_dir)
            names = Settings()  # the services' database names, as their own settings will read them
            for service in SERVICES:
                client.get_database(names.database_name(service))
        except StoreLocked as exc:
            release_embedded_store()
            raise PlatformError(str(exc)) from None
        self.embedded_store = True
        self.say(f"MongoDB: none configured (MONGODB_URL unset): the durable embedded store in "
                 f"{self.options.data_dir / EMBEDDED_SUBDIR} (loaded in {time.perf_counter() - started:.2f} s)")

    async def _start_embedded_nats(self) -> None:
        store = self.options.data_dir / "nats"
        if self.in_memory_db and store.exists():
            # JetStream state (jobs, events, invoice files) must not outlive the database that
            # indexes it: with the in-memory stand-in both start empty, every time. With the
            # durable embedded store or MongoDB, both are kept.
            shutil.rmtree(store)
        if port_open(self.options.nats_port):
            raise PlatformError(
                f"port {self.options.nats_port} is busy: another `collectors up` or nats-server runs "
                "there. Stop it, pass --nats-port, or set NATS_URL to use that server."
            )
        self.nats = NatsServer(store_dir=store, port=self.options.nats_port,
                               log_file=self.options.data_dir / "nats-server.log")
        self.nats.start()
        self.nats_url = self.nats.url
        state = "reset (in-memory database)" if self.in_memory_db else "kept"
        self.say(f"NATS: embedded nats-server with JetStream on {self.nats_url}, store {store} ({state})")

    def _key_settings(self) -> dict[str, object]:
        env = self.options.env
        if env.get("COLLECTORS_CREDENTIAL_KEYS") or env.get("COLLECTORS_CREDENTIAL_KEYS_FILE"):
            return {}
        path = self.options.data_dir / "credential-keys"
        if ensure_key_file(path):
            self.say(f"Credential key: generated {path} (keep it secret; back it up with the database)")
        else:
            self.say(f"Credential key: {path}")
        return {"credential_keys_file": path}

    def _build(self, mongodb_url: str | None, key_settings: dict[str, object]) -> list[ServiceRuntime]:
        # Imported here: building the platform must not import every service's dependencies early.
        from services.accounts.app import build as build_accounts
        from services.documents.app import DocumentsSettings
        from services.documents.app import build as build_documents
        from services.notifier.app import build as build_notifier
        from services.requests.app import build as build_requests
        from services.scheduler.app import build as build_scheduler
        from services.scraper.app import build as build_scraper

        common = {"nats_url": self.nats_url, "mongodb_url": mongodb_url,
                  "data_dir": self.options.data_dir}
        accounts_settings = AccountsSettings(**common, **key_settings)  # type: ignore[arg-type]
        # Fail early and clearly on a bad key configuration (the accounts service re-reads it on rotation).
        Keyring.load(accounts_settings.credential_keys, accounts_settings.credential_keys_file)
        return [
            build_accounts(accounts_settings),
            build_scheduler(SchedulerSettings(**common)),  # type: ignore[arg-type]
            build_scraper(ScraperSettings(**common, sandbox_url=self.portal.url if self.portal else None)),  # type: ignore[arg-type]
            build_notifier(Settings(**common)),  # type: ignore[arg-type]
            build_requests(Settings(**common)),  # type: ignore[arg-type]
            build_documents(DocumentsSettings(**common)),  # type: ignore[arg-type]
        ]

    async def stop(self) -> None:
        if self.web is not None:  # first: its NATS calls need the services
            await self.web.stop()
            self.web = None
        for rt in reversed(self.runtimes):
            try:
                await rt.stop()
            except Exception as exc:  # keep stopping the others
                self.say(f"[red]error while stopping {rt.name}: {exc}[/]")
        self.runtimes.clear()
        if self.metrics:
            await self.metrics.cleanup()
            self.metrics = None
        if self.portal:
            await self.portal.close()
            self.portal = None
        if self.nats:
            self.nats.stop()
            self.nats = None
        if self.embedded_store:  # every acknowledged write is on disk already
            release_embedded_store()
            self.embedded_store = False


def build_runtimes_for_docs() -> list[ServiceRuntime]:
    """The six services, built but never started: enough to describe their contract."""
    from services.accounts.app import build as build_accounts
    from services.accounts.crypto import new_key_entry
    from services.documents.app import DocumentsSettings
    from services.documents.app import build as build_documents
    from services.notifier.app import build as build_notifier
    from services.requests.app import build as build_requests
    from services.scheduler.app import build as build_scheduler
    from services.scraper.app import build as build_scraper

    return [
        build_accounts(AccountsSettings(), keyring=Keyring.parse(new_key_entry("docs"))),
        build_scheduler(SchedulerSettings()),
        build_scraper(ScraperSettings()),
        build_notifier(Settings()),
        build_requests(Settings()),
        build_documents(DocumentsSettings()),
    ]


async def wait_healthy(client: ApiClient, timeout: float) -> list[str]:
    """Wait until every service answers its health subject; return those still silent."""
    deadline = asyncio.get_running_loop().time() + timeout
    missing = list(SERVICES)
    while True:
        still = []
        for name in missing:
            try:
                await client.call(health(name), timeout=1.0)
            except RemoteApiError:
                still.append(name)
        missing = still
        if not missing or asyncio.get_running_loop().time() >= deadline:
            return missing
        await asyncio.sleep(0.2)


async def seed_demo(client: ApiClient, say: Say, timeout: float = 30.0) -> list[str]:
    """Create the demo pharmacy's accounts (once: a persistent database keeps them)."""
    deadline = asyncio.get_running_loop().time() + timeout
    wanted = {cid for cid, _, _ in DEMO_ACCOUNTS}
    while True:  # the catalog is a projection of the scraper's announcements: wait for it
        catalog = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": DEMO_TENANT})
        if wanted <= {c["id"] for c in catalog["collectors"]}:
            break
        if asyncio.get_running_loop().time() >= deadline:
            raise PlatformError("the sandbox collectors never reached the catalog")
        await asyncio.sleep(0.1)
    existing = await client.call(Api.ACCOUNTS_LIST, {"tenant_id": DEMO_TENANT})
    have = {(a["collector_id"], a["login"]) for a in existing["accounts"]}
    ids = [a["id"] for a in existing["accounts"]]
    for collector_id, login, password in DEMO_ACCOUNTS:
        if (collector_id, login) in have:
            continue
        created = await client.call(Api.ACCOUNTS_CREATE, {
            "tenant_id": DEMO_TENANT, "collector_id": collector_id, "login": login, "password": password})
        ids.append(created["id"])
        say(f"Demo account added: {collector_id} / {login}")
    return ids


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _redact_url(url: str) -> str:
    """The URL(s) with any user and password masked, fit to print."""
    return ",".join(re.sub(r"://[^/@]*@", "://***@", part) for part in url.split(","))
