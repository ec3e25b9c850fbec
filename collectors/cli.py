"""The ``collectors`` command: ``up`` / ``demo`` run the platform; the rest is the API's client."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from collectors import output
from collectors.api_call import DEFAULT_NATS, JsonOpt, NatsOpt, T, run_api
from collectors.dev import app as dev_app
from collectors.dlq import app as dlq_app
from collectors.documents import app as documents_app
from collectors.fleet import fleet as fleet_cmd
from collectors.output import console, emit, err_console, fail, record, shown, table
from collectors.runs import app as runs_app
from shared.api import INVOICE_CHUNK_BYTES, ExportRow
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.subjects import SERVICES, Api

app = typer.Typer(help="Supplier invoice collectors for pharmacies.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
accounts_app = typer.Typer(help="Collector accounts of a pharmacy.", no_args_is_help=True)
invoices_app = typer.Typer(help="Collected invoices.", no_args_is_help=True)
requests_app = typer.Typer(help="Requests for new collectors.", no_args_is_help=True)
notifications_app = typer.Typer(help="Notification preferences and history.", no_args_is_help=True)
keys_app = typer.Typer(help="Credential encryption keys.", no_args_is_help=True)
web_app = typer.Typer(help="The web service's HTTP API.", no_args_is_help=True)
app.add_typer(web_app, name="web")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(invoices_app, name="invoices")
app.add_typer(requests_app, name="requests")
app.add_typer(dev_app, name="dev")
app.add_typer(dlq_app, name="dlq")
app.add_typer(runs_app, name="runs")
app.add_typer(notifications_app, name="notifications")
app.add_typer(documents_app, name="documents")
app.command("fleet")(fleet_cmd)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Pharmacy (tenant) id.")]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of messages: fr or en.")]




def _call(subject: str, payload: dict[str, Any], as_json: bool, nats_url: str) -> dict[str, Any]:
    return run_api(as_json, nats_url, lambda c: c.call(subject, payload))


def _read_secret(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise typer.BadParameter("no terminal to prompt on: pass --password-stdin")
    return str(typer.prompt(prompt, hide_input=True))


# --- the platform ----------------------------------------------------------------------------


DataDirOpt = Annotated[Path, typer.Option("--data-dir", envvar="COLLECTORS_DATA_DIR",
                                          help="Where NATS state, keys and logs live.")]


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="Add the sandbox portals and a demo pharmacy.")] = False,
    data_dir: DataDirOpt = Path("data"),
    nats_port: Annotated[int, typer.Option(help="Port of the embedded nats-server.")] = 4222,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Service logs on stderr too.")] = False,
    metrics_port: Annotated[int, typer.Option(
        envvar="COLLECTORS_METRICS_PORT",
        help="Serve every service's Prometheus metrics on http://127.0.0.1:PORT/metrics (0: not at all).")] = 9464,
    web_port: Annotated[int, typer.Option(
        envvar="COLLECTORS_WEB_PORT",
        help="Serve the HTTP API and the page on http://127.0.0.1:PORT/ (0: not at all).")] = 8080,
) -> None:
    """Run the whole platform on this machine until Ctrl-C."""
    from collectors.platform import METRICS_PORT_ENV, WEB_PORT_ENV
    from collectors.runner import run_up

    os.environ[METRICS_PORT_ENV] = str(metrics_port)  # read by the platform (PlatformOptions.env)
    os.environ[WEB_PORT_ENV] = str(web_port)

    raise typer.Exit(asyncio.run(run_up(data_dir, demo=demo, nats_port=nats_port, verbose=verbose)))


@app.command("demo")
def demo_cmd(
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 110.0,
    data_dir: DataDirOpt = Path("data"),
    nats_port: Annotated[int, typer.Option(help="Port of the embedded nats-server.")] = 4222,
) -> None:
    """Run the platform with the demo until its first round of collection ends, then summarise."""
    from collectors.runner import run_demo

    raise typer.Exit(asyncio.run(run_demo(data_dir, as_json=as_json, timeout=timeout, nats_port=nats_port)))


@app.command()
def health(
    wait: Annotated[float, typer.Option(help="Wait up to this many seconds for every service.")] = 0.0,
    as_json: JsonOpt = False,
    nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Exit 0 once all six services answer."""
    from collectors.platform import wait_healthy

    async def work(c: ApiClient) -> list[str]:
        return await wait_healthy(c, wait)

    deadline = time.monotonic() + wait
    while True:
        try:
            missing = asyncio.run(_connect_and(nats_url, work))
            break
        except RemoteApiError as exc:  # NATS itself not up yet
            if time.monotonic() >= deadline:
                fail(exc, as_json)
            time.sleep(0.5)
    data = {"services": {s: ("down" if s in missing else "ok") for s in SERVICES}, "healthy": not missing}
    def human(d: dict[str, Any]) -> None:
        for service, state in d["services"].items():
            console.print(f"{service}: {'[green]ok' if state == 'ok' else '[red]down'}[/]")

    emit(data, as_json, human)
    raise typer.Exit(0 if not missing else 1)


async def _connect_and(nats_url: str, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    try:
        client = await ApiClient.connect(nats_url)
    except Exception as exc:
        raise RemoteApiError("unavailable", f"cannot reach NATS at {nats_url}: {exc}") from exc
    try:
        return await work(client)
    finally:
        await client.close()


@app.command()
def asyncapi(
    out: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")] = None,
) -> None:
    """The platform's NATS contract as an AsyncAPI 3 document, generated from the code."""
    from collectors.platform import build_runtimes_for_docs
    from shared.asyncapi import build_document

    text = json.dumps(build_document(build_runtimes_for_docs()), indent=2, ensure_ascii=False)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"AsyncAPI document written to {shown(out)}")


@app.command()
def catalog(as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """The collectors a pharmacy can activate."""
    data = _call(Api.ACCOUNTS_CATALOG, {"tenant_id": "catalog"}, as_json, nats_url)
    emit(data, as_json, lambda d: table(d["collectors"], [("id", "id"), ("name", "name"),
                                                          ("supplier", "supplier"), ("login_kind", "login")]))


# --- accounts --------------------------------------------------------------------------------

ACCOUNT_KEYS = ["id", "tenant_id", "collector_id", "collector_name", "slot", "login", "status",
                "error_code", "message", "invoice_count", "last_attempt_at", "last_success_at",
                "next_run_at", "pause_reason", "created_at"]


def _show_account(data: dict[str, Any]) -> None:
    record(data, ACCOUNT_KEYS)


@accounts_app.command("add")
def accounts_add(
    tenant: TenantOpt, collector: Annotated[str, typer.Option(help="Collector id (see `catalog`).")],
    login: Annotated[str, typer.Option(help="Email or identifier on the supplier portal.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    lang: LangOpt = "fr", as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Activate a collector with the supplier portal's credentials."""
    password = _read_secret(password_stdin, "Password")
    data = _call(Api.ACCOUNTS_CREATE, {"tenant_id": tenant, "collector_id": collector, "login": login,
                                       "password": password, "lang": lang}, as_json, nats_url)
    emit(data, as_json, _show_account)


@accounts_app.command("list")
def accounts_list(tenant: TenantOpt, lang: LangOpt = "fr", as_json: JsonOpt = False,
                  nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """The pharmacy's accounts with their status."""
    data = _call(Api.ACCOUNTS_LIST, {"tenant_id": tenant, "lang": lang}, as_json, nats_url)
    emit(data, as_json, lambda d: table(d["accounts"], [
        ("id", "id"), ("collector_id", "collector"), ("login", "login"), ("status", "status"),
        ("error_code", "error"), ("invoice_count", "invoices"), ("next_run_at", "next run")]))


@accounts_app.command("show")
def accounts_show(tenant: TenantOpt, account_id: str, lang: LangOpt = "fr", as_json: JsonOpt = False,
                  nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """One account: status, what to do, last attempt and success, next run."""
    data = _call(Api.ACCOUNTS_GET, {"tenant_id": tenant, "account_id": account_id, "lang": lang},
                 as_json, nats_url)
    emit(data, as_json, _show_account)


@accounts_app.command("update")
def accounts_update(
    tenant: TenantOpt, account_id: str,
    login: Annotated[str | None, typer.Option(help="New login (unchanged if omitted).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    lang: LangOpt = "fr", as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """New credentials overwrite the old ones; collection runs at once."""
    password = _read_secret(password_stdin, "New password")
    payload: dict[str, Any] = {"tenant_id": tenant, "account_id": account_id, "password": password,
                               "lang": lang}
    if login is not None:
        payload["login"] = login
    data = _call(Api.ACCOUNTS_UPDATE_CREDENTIALS, payload, as_json, nats_url)
    emit(data, as_json, _show_account)


@accounts_app.command("retry")
def accounts_retry(tenant: TenantOpt, account_id: str, lang: LangOpt = "fr", as_json: JsonOpt = False,
                   nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """Run a collection now (after acting on the supplier portal)."""
    data = _call(Api.ACCOUNTS_RETRY, {"tenant_id": tenant, "account_id": account_id, "lang": lang},
                 as_json, nats_url)
    emit(data, as_json, _show_account)


@accounts_app.command("delete")
def accounts_delete(
    tenant: TenantOpt, account_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: deletion is permanent.")] = False,
    lang: LangOpt = "fr", as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Permanently deactivate a collector account and erase its credentials."""
    if not yes:
        if not sys.stdin.isatty():
            raise typer.BadParameter("deletion is permanent: pass --yes to confirm")
        typer.confirm(f"Permanently delete account {account_id}?", abort=True)
    data = _call(Api.ACCOUNTS_DELETE, {"tenant_id": tenant, "account_id": account_id, "lang": lang},
                 as_json, nats_url)
    emit(data, as_json, lambda d: console.print(f"Account {shown(d['id'])} deleted."))


# --- invoices --------------------------------------------------------------------------------


@invoices_app.command("list")
def invoices_list(
    tenant: TenantOpt, account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Invoices and credit notes collected for the pharmacy, newest first."""
    payload: dict[str, Any] = {"tenant_id": tenant}
    if account:
        payload["account_id"] = account
    data = _call(Api.SCRAPER_INVOICES_LIST, payload, as_json, nats_url)
    emit(data, as_json, lambda d: table(d["invoices"], invoice_columns(d["invoices"]),
                                        title=f"{len(d['invoices'])} documents"))


def invoice_columns(invoices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The invoice table's columns: a site column only when some invoice has one (most accounts see one)."""
    site = [("site", "site")] if any(i.get("site") is not None for i in invoices) else []
    return [("id", "id"), ("number", "number"), *site, ("issue_date", "date"), ("amount", "amount"),
            ("currency", ""), ("kind", "kind"), ("account_id", "account")]


@invoices_app.command("download")
def invoices_download(
    tenant: TenantOpt, invoice_id: str,
    out: Annotated[Path, typer.Option("-o", "--output", help="File to write the PDF to.")],
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Write an invoice's PDF to a file, checked against its SHA-256."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    async def work(c: ApiClient) -> dict[str, Any]:
        # Through the scraper's API, which checks the tenant: no client reads the Object Store.
        meta = await c.call(Api.SCRAPER_INVOICE_GET, {"tenant_id": tenant, "invoice_id": invoice_id})
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        digest, written = hashlib.sha256(), 0
        request: dict[str, Any] = {"tenant_id": tenant, "invoice_id": invoice_id, "offset": 0}
        # A bar on a terminal only, and only once a file needs more than one chunk.
        quiet = as_json or not err_console.is_terminal or meta["size"] <= INVOICE_CHUNK_BYTES
        try:
            with tmp.open("wb") as fh, Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                                console=err_console, transient=True, disable=quiet) as bar:
                task = bar.add_task(shown(meta["number"]), total=meta["size"])
                while True:
                    chunk = await c.call(Api.SCRAPER_INVOICE_DOWNLOAD, request)
                    data = base64.b64decode(chunk["data"], validate=True)
                    if chunk["offset"] != written or chunk["next_offset"] != written + len(data):
                        raise RemoteApiError("integrity_error", "the download went out of order")
                    fh.write(data)
                    digest.update(data)
                    written += len(data)
                    bar.update(task, completed=written)
                    if chunk["cursor"] is None:
                        break
                    if not data:
                        raise RemoteApiError("integrity_error", "the download stopped moving forward")
                    request = {**request, "offset": written, "cursor": chunk["cursor"]}
            if written != chunk["size"] or digest.hexdigest() != chunk["sha256"]:
                raise RemoteApiError("integrity_error", f"the downloaded file ({written} bytes) does not match "
                                     f"its SHA-256 {chunk['sha256']}: not written")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return {"id": meta["id"], "number": meta["number"], "path": str(out), "size": written,
                "sha256": chunk["sha256"]}

    data = run_api(as_json, nats_url, work)
    emit(data, as_json, lambda d: console.print(f"{shown(d['number'])} → {shown(d['path'])} ({d['size']} bytes)"))


INVOICE_KEYS = ["id", "number", "site", "issue_date", "amount", "currency", "kind", "account_id", "collector_id",
                "size", "sha256", "collected_at", "data_source", "attachment"]


@invoices_app.command("show")
def invoices_show(
    invoice_id: str, tenant: TenantOpt, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """One invoice: what the portal listed, and the data read from its e-invoice (source, seller,
    totals, VAT by rate, lines), its checks and warnings."""
    async def work(c: ApiClient) -> dict[str, Any]:
        ref = {"tenant_id": tenant, "invoice_id": invoice_id}
        invoice = await c.call(Api.SCRAPER_INVOICE_GET, ref)
        try:
            data: dict[str, Any] | None = await c.call(Api.DOCUMENTS_INVOICE_DATA, ref)
        except RemoteApiError as exc:
            if exc.remote_code != "not_found":
                raise
            data = None  # collected, not read yet (or collected before the documents service)
        return {**invoice, "data_source": data["source"] if data else None,
                "attachment": data["attachment"] if data else None, "data": data["data"] if data else None,
                "data_warnings": data["warnings"] if data else [], "checks": data["checks"] if data else []}

    emit(run_api(as_json, nats_url, work), as_json, _show_invoice)


def _show_invoice(d: dict[str, Any]) -> None:
    record({**d, "data_source": d["data_source"] or "not read yet"}, INVOICE_KEYS)
    inv = d["data"]
    if inv:
        console.print()
        record({"seller": inv["seller"]["name"], "seller SIREN": inv["seller"]["siren"],
                "seller VAT id": inv["seller"]["vat_id"], "buyer": inv["buyer"]["name"], "profile": inv["profile"],
                "type code": inv["type_code"], "due date": inv["due_date"],
                "preceding invoice": inv["preceding_invoice"],
                **{k.replace("_", " "): v for k, v in inv["totals"].items()}},
               ["seller", "seller SIREN", "seller VAT id", "buyer", "profile", "type code", "due date",
                "preceding invoice", "line total", "tax basis", "tax total", "grand total", "prepaid", "due"])
        if inv["vat_breakdown"]:
            table(inv["vat_breakdown"], [("category", "VAT"), ("rate", "rate %"), ("basis", "basis"),
                                         ("amount", "VAT amount")], title="VAT by rate")
        if inv["lines"]:
            table(inv["lines"], [("id", "line"), ("product_code", "code"), ("name", "product"), ("quantity", "qty"),
                                 ("net_price", "net price"), ("line_total", "total"), ("vat_rate", "VAT %")],
                  title=f"{len(inv['lines'])} lines")
    if d["checks"]:
        table(d["checks"], [("name", "check"), ("ok", "ok"), ("detail", "detail")], title="Checks")
    if d["data_warnings"]:
        table(d["data_warnings"], [("code", "warning"), ("field", "field"), ("message", "message")],
              title="Data warnings")


EXPORT_COLUMNS = list(ExportRow.model_fields)


def _iso_date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter("a date as YYYY-MM-DD", param_hint=option) from None


@invoices_app.command("export")
def invoices_export(
    tenant: TenantOpt,
    date_from: Annotated[str | None, typer.Option("--from", help="First issue date (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last issue date (YYYY-MM-DD), included.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv (a header row) or jsonl (one object a line).")] = "csv",
    out: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")] = None,
    nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """The pharmacy's invoices for its accountant: one row per invoice and VAT rate, amounts as exact
    decimals; an invoice without structured data has one row with the portal's amount (source none)."""
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("csv or jsonl", param_hint="--format")
    request: dict[str, Any] = {"tenant_id": tenant}
    for key, value, option in (("from", date_from, "--from"), ("to", date_to, "--to")):
        if (day := _iso_date(value, option)) is not None:
            request[key] = day

    async def work(c: ApiClient) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = dict(request)
        while True:  # the service answers in pages that fit a NATS message
            reply = await c.call(Api.DOCUMENTS_EXPORT, page)
            rows += reply["rows"]
            if not reply.get("next"):
                return rows
            page = {**request, "after": reply["next"]}

    rows = run_api(False, nats_url, work)
    text = export_text(rows, fmt)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, out)
    invoices = len({r["invoice_id"] for r in rows})
    err_console.print(f"{len(rows)} rows ({invoices} invoices) written to {shown(out)}")


def export_text(rows: list[dict[str, Any]], fmt: str) -> str:
    """CSV (RFC 4180 as the csv module writes it: commas, quoted when needed, a header) or JSON lines;
    amounts stay the service's exact decimal strings, an absent value is an empty cell (or null)."""
    if fmt == "jsonl":
        return "".join(json.dumps({k: r.get(k) for k in EXPORT_COLUMNS}, ensure_ascii=False) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        writer.writerow(["" if r.get(k) is None else r[k] for k in EXPORT_COLUMNS])
    return buffer.getvalue()


# --- requests --------------------------------------------------------------------------------

REQUEST_COLUMNS = [("id", "id"), ("supplier", "supplier"), ("status", "status"), ("votes", "votes"),
                   ("collector_id", "collector"), ("reason", "reason")]


@requests_app.command("add")
def requests_add(
    tenant: TenantOpt, supplier: Annotated[str, typer.Option(help="Supplier name.")],
    url: Annotated[str | None, typer.Option("--url", help="Supplier portal URL.")] = None,
    comment: Annotated[str | None, typer.Option(help="Anything the team should know.")] = None,
    lang: LangOpt = "fr", as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Ask for a collector for a supplier that is not in the catalog."""
    payload = {"tenant_id": tenant, "supplier": supplier, "portal_url": url, "comment": comment, "lang": lang}
    data = _call(Api.REQUESTS_CREATE, payload, as_json, nats_url)
    emit(data, as_json, lambda d: record(d, [k for k, _ in REQUEST_COLUMNS] + ["requesters"]))


@requests_app.command("list")
def requests_list(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="This pharmacy's requests.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every pharmacy's (operators).")] = False,
    status: Annotated[str | None, typer.Option(help="Only requests in this status.")] = None,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """A pharmacy's requests (--tenant) or every pharmacy's (--all), most asked for first."""
    if (tenant is not None) == every:
        raise typer.BadParameter("pass --tenant T for a pharmacy's requests, or --all for every pharmacy's")
    payload = {k: v for k, v in {"tenant_id": tenant, "status": status}.items() if v}
    data = _call(Api.REQUESTS_LIST_ALL if every else Api.REQUESTS_LIST, payload, as_json, nats_url)
    emit(data, as_json, lambda d: table(d["requests"], REQUEST_COLUMNS))


@requests_app.command("set-status")
def requests_set_status(
    request_id: str, status: str,
    collector: Annotated[str | None, typer.Option(help="Collector id (status available).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (status rejected).")] = None,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Move a request to in_progress, rejected or available."""
    payload = {"request_id": request_id, "status": status, "collector_id": collector, "reason": reason}
    data = _call(Api.REQUESTS_SET_STATUS, payload, as_json, nats_url)
    emit(data, as_json, lambda d: record(d, [k for k, _ in REQUEST_COLUMNS] + ["requesters"]))


# --- notifications ---------------------------------------------------------------------------


@notifications_app.command("prefs")
def notifications_prefs(
    tenant: TenantOpt,
    email: Annotated[list[str] | None, typer.Option("--email", help="Address to alert (repeatable).")] = None,
    webhook: Annotated[str | None, typer.Option(help="URL to POST signed alerts to.")] = None,
    language: Annotated[str | None, typer.Option("--lang", help="Language of alerts: fr or en.")] = None,
    rotate_webhook_secret: Annotated[bool, typer.Option(
        "--rotate-webhook-secret", help="Replace the webhook's signing secret now.")] = False,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Show, or change with options, how the pharmacy is alerted."""
    if email is None and webhook is None and language is None and not rotate_webhook_secret:
        data = _call(Api.NOTIFIER_PREFS_GET, {"tenant_id": tenant}, as_json, nats_url)
    else:
        payload: dict[str, Any] = {"tenant_id": tenant, "emails": email, "webhook_url": webhook,
                                   "language": language}
        if language in ("fr", "en"):
            payload["lang"] = language
        if rotate_webhook_secret:
            payload["rotate_webhook_secret"] = True
        data = _call(Api.NOTIFIER_PREFS_SET, payload, as_json, nats_url)
    emit(data, as_json, lambda d: record(d, ["tenant_id", "emails", "webhook_url", "webhook_secret", "language"]))


@notifications_app.command("list")
def notifications_list(tenant: TenantOpt, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """What was sent to the pharmacy, when, on which channel, and whether it was delivered."""
    data = _call(Api.NOTIFIER_HISTORY, {"tenant_id": tenant}, as_json, nats_url)
    emit(data, as_json, lambda d: table(d["notifications"], [
        ("created_at", "when"), ("kind", "kind"), ("channel", "channel"), ("recipient", "to"),
        ("subject", "subject"), ("status", "status"), ("attempts", "attempts"), ("error", "error")]))


# --- keys ------------------------------------------------------------------------------------


@keys_app.command("new")
def keys_new(
    file: Annotated[Path | None, typer.Option("--file", help="Key file to add the key to, first (it encrypts).")]
    = None,
) -> None:
    """Make a new AES-256 key: printed, or put first in a key file so it encrypts from now on."""
    from datetime import date

    from services.accounts.crypto import new_key_entry

    entry = new_key_entry(f"k{date.today():%Y%m%d}-{os.urandom(2).hex()}")
    if file is None:
        sys.stdout.write(entry + "\n")
        return
    lines = file.read_text().splitlines() if file.exists() else []
    comments = [line for line in lines if line.lstrip().startswith("#")]
    keys = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    tmp = file.with_name(file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join([*comments, entry, *keys]) + "\n")
    os.replace(tmp, file)
    err_console.print(f"Key {entry.split(':')[0]} added first to {shown(file)}; now run `collectors keys rotate`.")


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """Re-encrypt every stored password under the newest key (the accounts service reloads its key
    file first); afterwards older keys can be removed."""
    data = run_api(as_json, nats_url, lambda c: c.call(Api.ACCOUNTS_ROTATE_KEYS, {}, timeout=600))
    emit(data, as_json, lambda d: console.print(
        f"Re-encrypted {d['rotated']} credentials under key {shown(d['key_id'])} "
        f"({d['already_current']} already were, {d['failed']} failed). "
        f"Keys loaded: {shown(', '.join(d['key_ids']))}."))


@web_app.command("openapi")
def web_openapi(
    out: Annotated[Path | None, typer.Option("-o", "--output", help="Write it here instead of stdout.")] = None,
) -> None:
    """The HTTP API's OpenAPI document, generated from the code (nothing is started)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.web.app import create_app
    from services.web.auth import Verifier
    from shared.settings import WebSettings

    async def no_backend() -> Any:
        raise RuntimeError("not served")

    settings = WebSettings()
    # A throwaway key: describing the API must not create or need the development key.
    verifier = Verifier(public_key=Ed25519PrivateKey.generate().public_key(), issuer=settings.web_jwt_issuer,
                        audience=settings.web_jwt_audience)
    text = json.dumps(create_app(settings, no_backend, verifier=verifier).openapi(), indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")


def main() -> None:
    # nats-py's default error callback logs each failed connection attempt with its traceback
    # (logger "nats"). With no logging configured, Python's last-resort handler printed those on
    # stderr before the one line the CLI prints for "unavailable". A NullHandler stops only that
    # fallback: where logging is configured (`collectors up`), the records still propagate to it.
    logging.getLogger("nats").addHandler(logging.NullHandler())
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None


__all__ = ["app", "main", "output"]
