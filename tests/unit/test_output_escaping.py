"""The CLI never prints raw control characters or markup from the platform's data (issue 10, bullet 4):
names stored before the API refused them are escaped on output, in tables, records, errors and JSON."""

from __future__ import annotations

import io
import json
import re

import pytest
import typer
from rich.console import Console

from collectors import output
from shared.errors import RemoteApiError

# No raw "ESC [ ... m" in it: plain() below drops those, as the console's own colours.
HOSTILE = "Evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eLabo\x7f [/] [bold]x"
RAW = ["\x1b", "\x07", "\x9b", "\u202e", "\x7f"]


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    # A terminal-like console (colours on) writing to a buffer, for stdout and stderr alike.
    console = Console(file=out, width=300, force_terminal=True, color_system="standard")
    monkeypatch.setattr(output, "console", console)
    monkeypatch.setattr(output, "err_console", console)
    return out


def plain(text: str) -> str:
    """What was printed without the console's own colours (SGR sequences it writes itself)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _no_raw_controls(text: str) -> None:
    for ch in RAW:
        assert ch not in plain(text), f"{ch!r} printed raw in {plain(text)!r}"


def test_shown_escapes_controls_and_markup_but_keeps_lines() -> None:
    assert output.shown("a\x1b[31mb") == "a\\x1b[31mb"
    assert output.shown("x\u202ey") == "x\\u202ey"
    assert output.shown("[/]") == "\\[/]"
    assert output.shown("line 1\nline 2\tend") == "line 1\nline 2\tend"
    assert output.shown("Labo\u00a0Œnologie") == "Labo\u00a0Œnologie"


def test_a_table_of_hostile_rows_prints_them_escaped(screen: io.StringIO) -> None:
    output.table([{"id": "r1", "supplier": HOSTILE, "status": "submitted", "requesters": [HOSTILE]}],
                 [("id", "id"), ("supplier", "supplier"), ("status", "status"), ("requesters", "who")])
    text = plain(screen.getvalue())
    _no_raw_controls(text)
    assert "\\x1b]0;pwned\\x07" in text and "\\u202eLabo" in text
    assert "[/] [bold]x" in text  # the markup shown as text, not applied (nor a crash on "[/]")


def test_a_record_prints_them_escaped(screen: io.StringIO) -> None:
    output.record({"supplier": HOSTILE, "reason": "two\nlines"}, ["supplier", "reason"])
    _no_raw_controls(screen.getvalue())
    assert "two\nlines" in plain(screen.getvalue())


def test_an_error_message_prints_escaped(screen: io.StringIO) -> None:
    with pytest.raises(typer.Exit):
        output.fail(RemoteApiError("validation_error", HOSTILE, field="supplier"), as_json=False)
    _no_raw_controls(screen.getvalue())
    assert "[supplier]" in plain(screen.getvalue())  # the field, once swallowed as a markup tag


def test_json_output_has_no_raw_control_and_stays_the_same_data(capsys: pytest.CaptureFixture[str]) -> None:
    data = {"requests": [{"supplier": HOSTILE, "astral": "\U000e0001", "lone": "\udc80"}]}
    output.emit(data, True, lambda _: None)
    printed = capsys.readouterr().out
    _no_raw_controls(printed)
    assert "\U000e0001" not in printed and "\\udb40\\udc01" in printed
    assert json.loads(printed) == data


def _invoice(number: str, site: str | None) -> dict[str, object]:
    return {"id": f"id-{number}", "tenant_id": "pharma", "account_id": "acc", "collector_id": "c", "number": number,
            "site": site, "issue_date": "2026-03-01", "amount": "12.30", "currency": "EUR", "kind": "invoice",
            "sha256": "0" * 64, "size": 8, "object_key": "k", "collected_at": "2026-03-02T08:00:00Z"}


def _list_invoices(monkeypatch: pytest.MonkeyPatch, invoices: list[dict[str, object]], as_json: bool) -> None:
    from collectors import cli

    monkeypatch.setattr(cli, "_call", lambda *args: {"invoices": invoices})
    cli.invoices_list(tenant="pharma", account=None, as_json=as_json, nats_url="nats://unused:4222")


def test_the_invoice_list_shows_a_site_column_only_when_some_invoice_has_a_site(
        screen: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    _list_invoices(monkeypatch, [_invoice("FA-1", None), _invoice("FA-2", None)], as_json=False)
    without = plain(screen.getvalue())
    assert "FA-1" in without and "site" not in without
    screen.truncate(0)
    screen.seek(0)
    _list_invoices(monkeypatch, [_invoice("FA-1", "Officine du Port"), _invoice("FA-2", None),
                                 _invoice("FA-3", HOSTILE)], as_json=False)
    shown = plain(screen.getvalue())
    header = next(line for line in shown.splitlines() if "number" in line)
    assert header.index("number") < header.index("site") < header.index("date")
    assert "Officine du Port" in shown and "—" in shown  # the site-less one
    _no_raw_controls(shown)


def test_the_invoice_list_as_json_always_has_the_site(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _list_invoices(monkeypatch, [_invoice("FA-1", None)], as_json=True)
    assert json.loads(capsys.readouterr().out)["invoices"][0]["site"] is None
