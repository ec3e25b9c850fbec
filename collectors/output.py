"""How the CLI prints: rich tables for people, JSON for scripts, the API's error either way."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from shared.errors import RemoteApiError

# Piped output is read by grep and people's scripts: never cut a table to 80 columns there.
console = Console() if sys.stdout.isatty() else Console(width=400)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=400)

EXIT_API_ERROR = 1
EXIT_UNAVAILABLE = 3


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        human(data)


def fail(exc: RemoteApiError, as_json: bool) -> NoReturn:
    code = exc.remote_code
    body: dict[str, Any] = {"code": code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    if as_json:
        sys.stdout.write(json.dumps({"error": body}, ensure_ascii=False) + "\n")
    else:
        where = f" [{exc.field}]" if exc.field else ""
        err_console.print(f"[red]Error ({code}){where}:[/] {exc.message}")
    raise typer.Exit(EXIT_UNAVAILABLE if code == "unavailable" else EXIT_API_ERROR)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str | None = None) -> None:
    t = Table(title=title, show_lines=False)
    for _, header in columns:
        t.add_column(header)
    for row in rows:
        t.add_row(*[_cell(row.get(key)) for key, _ in columns])
    console.print(t)


def record(data: dict[str, Any], keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        if key in data:
            console.print(f"[bold]{key.ljust(width)}[/]  {_cell(data[key])}")


STATUS_STYLE = {"ok": "green", "action_required": "red", "retrying": "yellow", "maintenance": "magenta",
                "pending": "cyan", "collecting": "cyan", "deleted": "dim"}


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text
