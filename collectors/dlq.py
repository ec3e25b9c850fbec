"""``collectors dlq``: the dead letters every service kept aside (shared/dead_letters.py).

Each service holds its own and answers on ``collectors.api.<service>.dlq_*``; ``list`` asks every
service (or one, ``--service``) and merges, newest failure first. An id names the service holding it
(``scraper-0123456789abcdef``), so ``show``, ``replay`` and ``drop`` ask that service only. What is
printed of a payload is the service's scrubbed preview, escaped like everything else the CLI prints.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from collectors.api_call import DEFAULT_NATS, JsonOpt, NatsOpt, run_api
from collectors.output import console, emit, err_console, fail, record, shown, table
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.subjects import SERVICES, dead_letters

app = typer.Typer(help="Dead letters: jobs and events kept aside, to inspect, replay or drop.",
                  no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="Dead letter id, as `dlq list` shows it (<service>-<hex>).")]
LIST_COLUMNS = [("id", "id"), ("kind", "kind"), ("subject", "subject"), ("reason", "reason"),
                ("deliveries", "deliveries"), ("times_kept", "kept"), ("first_failed_at", "first failure"),
                ("last_failed_at", "last failure"), ("status", "status"), ("preview", "payload")]
KEYS = ["id", "service", "kind", "subject", "consumer", "status", "reason", "deliveries", "times_kept",
        "first_failed_at", "last_failed_at", "replayed_at", "replay_msg_id", "size", "preview"]
PREVIEW_IN_TABLE = 80




def _service_of(letter_id: str) -> str:
    service = letter_id.partition("-")[0]
    if service not in SERVICES:
        raise typer.BadParameter(f"{shown(letter_id)} names no service ({', '.join(SERVICES)})",
                                 param_hint="ID")
    return service


@app.command("list")
def list_cmd(
    service: Annotated[str | None, typer.Option("--service", "-s", help=f"Only this service: {', '.join(SERVICES)}.")]
    = None,
    show_all: Annotated[bool, typer.Option("--all", help="Replayed dead letters too (kept for audit).")] = False,
    limit: Annotated[int, typer.Option(help="At most this many per service.")] = 100,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """The dead letters of every service (or one), newest failure first."""
    if service is not None and service not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}", param_hint="--service")
    services = [service] if service else list(SERVICES)

    async def work(client: ApiClient) -> dict[str, Any]:
        async def one(name: str) -> list[dict[str, Any]] | RemoteApiError:
            try:
                reply = await client.call(dead_letters(name, "dlq_list"), {"all": show_all, "limit": limit})
            except RemoteApiError as exc:
                return exc
            return list(reply["dead_letters"])

        replies = await asyncio.gather(*(one(name) for name in services))
        letters = [d for r in replies if not isinstance(r, RemoteApiError) for d in r]
        letters.sort(key=lambda d: str(d["last_failed_at"]), reverse=True)
        unanswered = {name: f"{r.remote_code}: {r.message}" for name, r in zip(services, replies, strict=True)
                      if isinstance(r, RemoteApiError)}
        return {"dead_letters": letters, "unanswered": unanswered}

    data = run_api(as_json, nats_url, work)
    if len(data["unanswered"]) == len(services):  # nobody answered: an error, not an empty list
        first = next(iter(data["unanswered"].values()))
        fail(RemoteApiError("unavailable", f"no service answered: {first}"), as_json)

    def human(d: dict[str, Any]) -> None:
        for name, why in d["unanswered"].items():
            err_console.print(f"[yellow]{shown(name)} did not answer ({shown(why)}): its dead letters are "
                              "not listed[/]")
        if not d["dead_letters"]:
            console.print("No dead letters." if not show_all else "No dead letters, replayed or not.")
            return
        rows = [{**x, "preview": _short(x["preview"])} for x in d["dead_letters"]]
        table(rows, LIST_COLUMNS, title="Dead letters")

    emit(data, as_json, human)
    if data["unanswered"]:
        raise typer.Exit(1)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_IN_TABLE else text[:PREVIEW_IN_TABLE - 1] + "…"


def _one(verb: str, letter_id: str, as_json: bool, nats_url: str) -> dict[str, Any]:
    subject = dead_letters(_service_of(letter_id), verb)
    data: dict[str, Any] = run_api(as_json, nats_url, lambda c: c.call(subject, {"id": letter_id}))
    return data


@app.command("show")
def show_cmd(letter_id: IdArg, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """One dead letter: why, how many deliveries, when, and a preview of its payload (secrets hidden)."""
    emit(_one("dlq_show", letter_id, as_json, nats_url), as_json, lambda d: record(d, KEYS))


@app.command("replay")
def replay_cmd(letter_id: IdArg, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """Publish the payload again on its subject (a fresh message id); the letter is kept, as replayed."""
    data = _one("dlq_replay", letter_id, as_json, nats_url)

    def human(d: dict[str, Any]) -> None:
        console.print(f"Replayed {shown(d['id'])} on {shown(d['subject'])} as {shown(d['replay_msg_id'])} "
                      "(listed again if it fails again; `dlq list --all` shows it meanwhile).")

    emit(data, as_json, human)


@app.command("drop")
def drop_cmd(letter_id: IdArg, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """Delete a dead letter for good."""
    data = _one("dlq_drop", letter_id, as_json, nats_url)
    emit(data, as_json, lambda d: console.print(f"Dropped {shown(d['id'])} ({shown(d['subject'])})."))
