"""``collectors dev``: write and fix a collector on this machine, without the platform.

``try`` runs one collection (Chromium, the worker's own ``run_collection`` and its failure
classification) and shows what was found, the verdict and every request; ``record`` does the same
into a scrubbed HAR file that ``try --har-replay`` then replays offline; ``new`` writes a
collector's skeleton with its tests.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from services.scraper.kit import (
    CollectContext,
    CollectedDocument,
    Collector,
    HttpReply,
    PortalHttp,
    document_limit,
    har_session,
    portal_url_for,
    scrub_recording,
)
from services.scraper.kit.har import META, PASSWORD_PLACEHOLDER
from shared.settings import MAX_DOCUMENT_BYTES

app = typer.Typer(help="Write and fix a collector: run it here, record a session, start a new one.",
                  no_args_is_help=True)

PAGE_TIMEOUT_S = 15.0
COLLECTORS_DIR = Path(__file__).resolve().parents[1] / "services" / "scraper" / "collectors"
_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_REDACTED = "***"


# --- one collection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    status: int  # 0: no answer
    ms: int

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "status": self.status, "ms": self.ms}


@dataclass
class Trail:
    """Every request of the run: the page-less client's (redirect hops included) and the pages'."""

    requests: list[Request] = field(default_factory=list)
    secrets: tuple[str, ...] = ()

    def add(self, method: str, url: str, status: int, started: float) -> None:
        for secret in self.secrets:
            url = url.replace(secret, _REDACTED)
        self.requests.append(Request(method, url, status, round((time.monotonic() - started) * 1000)))


class TracedHttp(PortalHttp):
    """``PortalHttp`` that notes each exchange (method, URL, status, time) in a ``Trail``."""

    def __init__(self, *args: Any, trail: Trail, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trail = trail

    async def _follow(self, method: str, url: str, headers: dict[str, str], body: str | None, *,
                      referrer: str | None = None, exchange: Any = None) -> HttpReply:
        inner = exchange or self._exchange

        async def traced(hop_method: str, hop: str, sent: dict[str, str], hop_body: str | None) -> HttpReply:
            started = time.monotonic()
            reply: HttpReply = await inner(hop_method, hop, sent, hop_body)
            self.trail.add(hop_method, hop, reply.status, started)
            return reply

        return await super()._follow(method, url, headers, body, referrer=referrer, exchange=traced)


@dataclass(frozen=True)
class Document:
    number: str
    issue_date: str
    amount: str
    kind: str
    site: str | None

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "issue_date": self.issue_date, "amount": self.amount, "kind": self.kind,
                "site": self.site}


@dataclass
class Result:
    outcome: str  # "ok" or the error code
    detail: str = ""
    documents: list[Document] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    trail: list[Request] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "documents": [d.as_json() for d in self.documents],
                "trail": [r.as_json() for r in self.trail]}


def _label(key: object) -> str:
    """A missing document's key as shown: its number, or its site and number."""
    if isinstance(key, tuple):
        return " ".join(str(part) for part in key if part)
    return str(key)


def _file_name(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") or "document"


def _watch_pages(context: Any, trail: Trail) -> None:
    started: dict[Any, float] = {}
    statuses: dict[Any, int] = {}

    def on_request(request: Any) -> None:
        started[request] = time.monotonic()

    # The status is kept from the "response" event rather than awaited with request.response() when
    # the request finishes: a request finishing as the run closes its context would raise
    # TargetClosedError from the listener (CI saw it fail `collectors dev try --har-replay`).
    def on_response(response: Any) -> None:
        statuses[response.request] = response.status

    def on_finished(request: Any) -> None:
        trail.add(request.method, request.url, statuses.pop(request, 0), started.pop(request, time.monotonic()))

    def on_failed(request: Any) -> None:
        statuses.pop(request, None)
        trail.add(request.method, request.url, 0, started.pop(request, time.monotonic()))

    context.on("request", on_request)
    context.on("response", on_response)
    context.on("requestfinished", on_finished)
    context.on("requestfailed", on_failed)


async def collect(collector: Collector, *, login: str, password: str, portal_url: str | None = None,
                  record: Path | None = None, replay: Path | None = None, out: Path | None = None,
                  timeout_s: float = 120.0) -> Result:
    """One collection of ``collector`` as a worker runs it, with what it found and every request.

    ``portal_url`` replaces the manifest's (see ``kit.portal_url_for``); ``record``: a HAR file to
    write (not scrubbed: ``record_session`` does that); ``replay``: a HAR file that is the portal.
    """
    from playwright.async_api import async_playwright

    from services.scraper.browser import launch_browser
    from services.scraper.runner import run_collection

    url = portal_url_for(str(collector.manifest.portal_url), portal_url)
    trail = Trail(secrets=tuple(s for s in {password} if len(password) >= 3))
    documents: list[Document] = []

    async def store(document: CollectedDocument) -> bool:
        ref = document.ref
        documents.append(Document(ref.number, ref.issue_date.isoformat(), str(ref.amount), ref.kind,
                                  getattr(ref, "site", None)))
        if out is not None:
            site = getattr(ref, "site", None)
            name = _file_name(f"{site}-{ref.number}" if site else ref.number) + ".pdf"
            with document.open() as source, (out / name).open("wb") as target:
                shutil.copyfileobj(source, target)
        return True

    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        try:
            async with har_session(browser, record=record, replay=replay, portal_url=url,
                                   http_factory=partial(TracedHttp, trail=trail, timeout_ms=PAGE_TIMEOUT_S * 1000),
                                   accept_downloads=True, locale="fr-FR", timezone_id="Europe/Paris",
                                   ) as (context, http):
                context.set_default_timeout(PAGE_TIMEOUT_S * 1000)
                _watch_pages(context, trail)
                ctx = CollectContext(browser_context=context, http=http, portal_url=url, login=login,
                                     password=password)
                limit = collector.manifest.max_document_bytes or MAX_DOCUMENT_BYTES
                with document_limit(limit):
                    report = await run_collection(collector, ctx, store, timeout_s=timeout_s)
        finally:
            await browser.close()
    outcome = report.outcome
    detail = outcome.detail if outcome is not None else ""
    for secret in trail.secrets:
        detail = detail.replace(secret, _REDACTED)
    return Result(outcome="ok" if outcome is None else str(outcome.code.value), detail=detail,
                  documents=documents, missing={_label(key): why for key, why in report.missing.items()},
                  trail=trail.requests)


async def record_session(collector: Collector, har: Path, *, login: str, password: str,
                         portal_url: str | None = None, timeout_s: float = 120.0) -> tuple[Result, int]:
    """``collect`` recorded into ``har``, scrubbed before it is written there (the password, cookie
    values, credentials and tokens: ``kit.har.scrub_recording``). Returns the result and how many
    secrets were scrubbed."""
    url = portal_url_for(str(collector.manifest.portal_url), portal_url)
    with tempfile.TemporaryDirectory(prefix="collectors-record-") as scratch:
        raw = Path(scratch) / "session.har"
        result = await collect(collector, login=login, password=password, portal_url=url, record=raw,
                               timeout_s=timeout_s)
        if not raw.exists():
            raise RuntimeError("the browser wrote no recording")
        document = json.loads(raw.read_text(encoding="utf-8"))
        document["log"][META] = {"collector": collector.manifest.id, "portal_url": url, "login": login}
        raw.write_text(json.dumps(document), encoding="utf-8")
        scrubbed = scrub_recording(raw, password, placeholder=PASSWORD_PLACEHOLDER)
        har.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw, har)
    return result, scrubbed


# --- the commands --------------------------------------------------------------------------------


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(2)


def load_collector(collector_id: str) -> Collector:
    """A built-in collector, or a package of ``services/scraper/collectors`` not registered yet."""
    from services.scraper.collectors import builtin_collectors

    known = builtin_collectors()
    if collector_id in known:
        return known[collector_id]
    if _ID.fullmatch(collector_id):
        try:
            module = importlib.import_module(f"services.scraper.collectors.{collector_id.replace('-', '_')}")
        except ModuleNotFoundError:
            module = None
        found = getattr(module, "COLLECTOR", None)
        if found is not None and getattr(getattr(found, "manifest", None), "id", None) == collector_id:
            return found  # type: ignore[no-any-return]
    raise _usage_error(f"unknown collector {collector_id!r}; known: {', '.join(sorted(known))}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise _usage_error("no terminal to prompt on: pass --password-stdin")
    return str(typer.prompt("Password", hide_input=True))


def _replay_password(har: Path, from_stdin: bool) -> str:
    """What the replay types: the placeholder the scrubbed recording holds (a password given on
    stdin is read and ignored), or for a recording not made by ``dev record`` the one given."""
    try:
        document = json.loads(har.read_text(encoding="utf-8"))
        placeholder = document["log"].get(META, {}).get("password")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _usage_error(f"{har}: not a HAR file ({exc})") from None
    if placeholder:
        if from_stdin:
            sys.stdin.readline()
        return str(placeholder)
    return _password(from_stdin)


def _configure_logging() -> None:
    from shared.logging import configure_logging

    configure_logging("WARNING", json=False, stream=sys.stderr)


def _show(result: Result, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(f"documents: {len(result.documents)}")
    for d in result.documents:
        site = f"  site {d.site}" if d.site else ""
        typer.echo(f"  {d.number:<20} {d.issue_date}  {d.amount:>12}  {d.kind:<11}{site}")
    for number, why in sorted(result.missing.items()):
        typer.echo(f"  {number:<20} not downloaded: {why}")
    typer.echo(f"requests: {len(result.trail)}")
    for r in result.trail:
        typer.echo(f"  {r.method:<6} {r.status:>3} {r.ms:>6} ms  {r.url}")
    verdict = result.outcome if result.outcome == "ok" else f"{result.outcome}: {result.detail}"
    typer.echo(f"verdict: {verdict}")


def _run(work: Any) -> Any:
    _configure_logging()
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # no Chromium, an unwritable file: said in one line, not a traceback
        typer.echo(f"Error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                   err=True)
        raise typer.Exit(1) from None


CollectorArg = Annotated[str, typer.Argument(help="Collector id (e.g. sandbox-classic).", show_default=False)]
LoginOpt = Annotated[str, typer.Option("--login", help="Login on the portal.")]
PasswordStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")]
PortalUrlOpt = Annotated[str | None, typer.Option(
    "--portal-url", help="Portal to use instead of the manifest's (its path is kept if this has none).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds before the collection is stopped.")]


@app.command("try")
def try_collector(
    collector_id: CollectorArg,
    login: LoginOpt,
    password_stdin: PasswordStdinOpt = False,
    portal_url: PortalUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    har_replay: Annotated[Path | None, typer.Option(
        "--har-replay", help="Answer from this recording (offline) instead of the portal.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the PDFs found in this directory.")] = None,
    timeout_s: TimeoutOpt = 120.0,
) -> None:
    """Run one collection here (no platform) and show the documents, the verdict and the requests.
    Exits 0 only when the verdict is ok."""
    collector = load_collector(collector_id)
    if har_replay is not None and not har_replay.is_file():
        raise _usage_error(f"{har_replay}: no such file")
    password = _replay_password(har_replay, password_stdin) if har_replay is not None else _password(password_stdin)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    result: Result = _run(collect(collector, login=login, password=password, portal_url=portal_url,
                                  replay=har_replay, out=out, timeout_s=timeout_s))
    _show(result, as_json)
    raise typer.Exit(0 if result.outcome == "ok" else 1)


@app.command("record")
def record(
    collector_id: CollectorArg,
    login: LoginOpt,
    har: Annotated[Path, typer.Option("--har", help="HAR file to write (scrubbed).")],
    password_stdin: PasswordStdinOpt = False,
    portal_url: PortalUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    timeout_s: TimeoutOpt = 120.0,
) -> None:
    """Run one collection and record it as a HAR for offline tests, scrubbed of the password,
    cookie values, credentials and tokens. Replay it with `collectors dev try ... --har-replay`."""
    collector = load_collector(collector_id)
    password = _password(password_stdin)
    result, scrubbed = _run(record_session(collector, har, login=login, password=password, portal_url=portal_url,
                                           timeout_s=timeout_s))
    _show(result, as_json)
    typer.echo(f"recorded {len(result.trail)} requests into {har} ({scrubbed} secrets scrubbed; the replay "
               f"logs in with the password {PASSWORD_PLACEHOLDER!r})", err=True)
    raise typer.Exit(0 if result.outcome == "ok" else 1)


# --- a new collector -----------------------------------------------------------------------------


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Collector id: lowercase letters, digits and dashes.",
                                        show_default=False)],
    recipe: Annotated[bool, typer.Option("--recipe", help="A recipe (data only) instead of code.")] = False,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the package goes (default: services/scraper/collectors).")] = None,
) -> None:
    """Write a new collector's skeleton, with a unit test of its page parsing and an offline test."""
    from collectors.dev_templates import skeleton

    if not _ID.fullmatch(name):
        raise _usage_error(f"invalid collector id {name!r}: 2 to 63 of a-z, 0-9 and '-', starting with a letter")
    package = name.replace("-", "_")
    parent = directory if directory is not None else COLLECTORS_DIR
    target = parent / package
    from services.scraper.collectors import builtin_collectors

    if name in builtin_collectors() or target.exists():
        raise _usage_error(f"collector {name!r} already exists ({target})")
    module = _module_of(parent, package)
    files = skeleton(name, module, recipe=recipe)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    typer.echo(f"created {target}/ ({'recipe' if recipe else 'navigation + pages'}):")
    for relative in sorted(files):
        typer.echo(f"  {relative}")
    typer.echo(_next_steps(name, module, target, recipe))


def _module_of(parent: Path, package: str) -> str:
    """The dotted name the package is imported as: under the repository's ``services/scraper/collectors``
    as usual, else by its own name (a directory on the import path)."""
    try:
        relative = parent.resolve().relative_to(COLLECTORS_DIR.parents[2])
    except ValueError:
        return package
    return ".".join((*relative.parts, package))


def _next_steps(name: str, module: str, target: Path, recipe: bool) -> str:
    what = "recipe.py (the login steps and the list's selectors)" if recipe else \
        "pages.py (parsing, on a saved page) then navigation.py (the requests)"
    return f"""
next steps:
  1. set the portal's URL in the manifest ({target}/__init__.py{'' if not recipe else ' via recipe.py'})
  2. save a real list page as tests/saved/list_page.html and write {what}
  3. run the unit test:   pytest {target}/tests/test_pages.py
  4. try it:              collectors dev try {name} --login LOGIN   (--portal-url URL for a local copy)
  5. record a session:    collectors dev record {name} --login LOGIN --har {target}/tests/saved/session.har
     then the offline test replays it: pytest {target}/tests/test_offline.py
  6. register it in services/scraper/collectors/__init__.py (builtin_collectors) as {module}"""



# --- a development token for the web API ---------------------------------------------------------


@app.command("token")
def token(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Pharmacy (tenant) id.")] = None,
    role: Annotated[str, typer.Option("--role", help="pharmacy or operator.")] = "pharmacy",
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", envvar="COLLECTORS_DATA_DIR",
        help="Where the local signing key lives (created if missing).")] = Path("data"),
    minutes: Annotated[float, typer.Option("--minutes", min=1, help="Lifetime of the token.")] = 60.0,
) -> None:
    """Print a web API token signed with the local development key (what `collectors up` trusts)."""
    from services.web.auth import SIGNING_KEY_FILE, ensure_signing_key, mint_token
    from shared.settings import WebSettings

    if role not in ("pharmacy", "operator"):
        raise _usage_error("--role: pharmacy or operator")
    if role == "pharmacy" and not tenant:
        raise _usage_error("a pharmacy's token needs --tenant")
    settings = WebSettings(data_dir=data_dir)
    key, created = ensure_signing_key(data_dir / SIGNING_KEY_FILE)
    if created:
        typer.echo(f"created the development signing key {data_dir / SIGNING_KEY_FILE}", err=True)
    operator = role == "operator"
    typer.echo(mint_token(key, tenant=None if operator else tenant, role="operator" if operator else "pharmacy",
                          minutes=minutes, issuer=settings.web_jwt_issuer, audience=settings.web_jwt_audience))
