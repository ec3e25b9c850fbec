"""How the CLI prints: rich tables for people, JSON for scripts, the API's error either way.

Whatever the platform sends back is data from outside (a supplier name a pharmacy typed, an invoice
number a portal showed), possibly stored before the API refused control characters: it is printed
through ``shown`` (people) or ``json_text`` (scripts), never as it is. A raw ESC could recolour,
retitle or rewrite the operator's terminal, and a ``[`` could be taken for rich markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.errors import RemoteApiError
from shared.text import MULTILINE_ALLOWED, escape_hidden, json_escape

# Piped output is read by grep and people's scripts: never cut a table to 80 columns there.
console = Console() if sys.stdout.isatty() else Console(width=400)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=400)

EXIT_API_ERROR = 1
EXIT_UNAVAILABLE = 3


def shown(value: Any) -> str:
    """A value from the platform as rich prints it: hidden characters as ``\\x1b``, markup escaped.
    Line feeds and tabs stay (a multi-line comment)."""
    return escape(escape_hidden(str(value), MULTILINE_ALLOWED))


def json_text(data: Any) -> str:
    """JSON for scripts: ``json.dumps`` escapes C0 controls but keeps DEL, C1 controls (\\x9b is a
    CSI on some terminals), bidi overrides and lone surrogates raw; those become \\u escapes too."""
    return escape_hidden(json.dumps(data, ensure_ascii=False, default=str), escape=json_escape)


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json_text(data) + "\n")
    else:
        human(data)


def fail(exc: RemoteApiError, as_json: bool) -> NoReturn:
    code = exc.remote_code
    body: dict[str, Any] = {"code": code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    if as_json:
        sys.stdout.write(json_text({"error": body}) + "\n")
    else:
        where = f" \\[{shown(exc.field)}]" if exc.field else ""  # a literal "[", not a markup tag
        err_console.print(f"[red]Error ({shown(code)}){where}:[/] {shown(exc.message)}")
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
        return ", ".join(shown(v) for v in value)
    text = str(value)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else shown(text)
