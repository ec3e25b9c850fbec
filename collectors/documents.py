"""``collectors documents``: the e-invoice extractor on a local file, without the platform.

For support (why does this supplier's invoice have no data?) and for trying the extractor on any
PDF or XML: prints what ``services.documents.einvoice.extract`` reads, its checks and warnings.
Everything printed comes from the file, i.e. from outside: it goes through ``shown``/``json_text``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from collectors.output import console, emit, err_console, record, shown, table

if TYPE_CHECKING:
    from shared.invoice_data import Extraction

EXIT_MISSING_FILE = 2

app = typer.Typer(help="E-invoices (Factur-X, ZUGFeRD, XRechnung, UBL): read a local document.",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    # A callback keeps `read` a subcommand even while it is the only one.
    pass


HEADER_KEYS = ["source", "attachment", "syntax", "profile", "number", "type_code", "kind", "issue_date",
               "currency", "due_date", "buyer_reference", "preceding_invoice", "seller", "buyer"]
TOTAL_KEYS = ["line_total", "tax_basis", "tax_total", "grand_total", "prepaid", "due"]
LINE_COLUMNS = [("id", "id"), ("product_code", "code"), ("product_scheme", "scheme"), ("name", "name"),
                ("quantity", "qty"), ("unit", "unit"), ("net_price", "net price"), ("line_total", "total"),
                ("vat_rate", "VAT %")]
LINES_SHOWN = 50


def _party(party: dict[str, Any]) -> str:
    parts = [party.get("name"), party.get("siren") and f"SIREN {party['siren']}",
             party.get("siret") and f"SIRET {party['siret']}", party.get("vat_id") and f"VAT {party['vat_id']}"]
    return ", ".join(str(p) for p in parts if p) or "—"


def _human(data: dict[str, Any]) -> None:
    invoice = data.get("invoice")
    head: dict[str, Any] = {"source": data["source"], "attachment": data.get("attachment")}
    if invoice:
        head.update({k: v for k, v in invoice.items() if k in HEADER_KEYS})
        head["seller"], head["buyer"] = _party(invoice["seller"]), _party(invoice["buyer"])
    record(head, HEADER_KEYS)
    if invoice:
        console.print()
        record(invoice["totals"], TOTAL_KEYS)
        if invoice["vat_breakdown"]:
            table(invoice["vat_breakdown"], [("category", "VAT cat."), ("rate", "rate %"), ("basis", "basis"),
                                             ("amount", "VAT")], title="VAT breakdown")
        lines = invoice["lines"]
        if lines:
            more = f" (first {LINES_SHOWN} of {len(lines)}; --json for all)" if len(lines) > LINES_SHOWN else ""
            table(lines[:LINES_SHOWN], LINE_COLUMNS, title=f"Lines{more}")
    if data["checks"]:
        t = Table(title="Checks")
        for header in ("check", "ok", "detail"):
            t.add_column(header)
        for check in data["checks"]:
            t.add_row(shown(check["name"]), "[green]ok[/]" if check["ok"] else "[red]FAILED[/]",
                      shown(check.get("detail") or ""))
        console.print(t)
    for warning in data["warnings"]:
        where = f" \\[{shown(warning['field'])}]" if warning.get("field") else ""
        console.print(f"[yellow]warning[/] {shown(warning['code'])}{where}: {shown(warning['message'])}")


@app.command()
def read(
    file: Annotated[Path, typer.Argument(help="A PDF (Factur-X, ZUGFeRD, XRechnung) or an XML (CII, UBL).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    isolated: Annotated[bool, typer.Option("--isolated", help="Read in a child process with a memory "
                                           "limit and a deadline, as the documents service does.")] = False,
) -> None:
    """Print the e-invoice a local file carries: the data, the checks and the warnings.

    Exit 0 when the file was read (even with warnings or no e-invoice), 2 when it cannot be opened."""
    # Imported here: lxml, pypdf and the extractor cost ~0.2 s, which every other `collectors`
    # command would pay at start-up otherwise.
    from services.documents.einvoice import DEFAULT_LIMITS, extract, extract_isolated

    try:
        with file.open("rb") as handle:
            # One byte past the limit is enough for extract to refuse it: a 10 GB file is not read.
            data = handle.read(DEFAULT_LIMITS.max_document_bytes + 1)
    except OSError as exc:
        err_console.print(f"[red]Cannot read {shown(file)}:[/] {shown(exc.strerror or exc)}")
        raise typer.Exit(EXIT_MISSING_FILE) from exc
    result: Extraction
    if isolated:
        result = asyncio.run(extract_isolated(data, filename=file.name))
    else:
        result = extract(data, filename=file.name)
    emit(result.model_dump(mode="json"), as_json, _human)
