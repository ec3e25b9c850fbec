"""`collectors documents read FILE [--json]` on local files, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from collectors.documents import app
from sandbox import einvoice as gen
from tests.unit.documents.einvoice_expect import blank_pdf

runner = CliRunner()


def test_read_factur_x_pdf_as_json(tmp_path: Path) -> None:
    spec = gen.four_rates_spec()
    path = tmp_path / "invoice.pdf"
    path.write_bytes(gen.facturx_pdf(spec, "en16931", blank_pdf()))
    result = runner.invoke(app, ["read", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "factur-x"
    assert data["invoice"]["number"] == spec.number
    # Amounts as exact decimal strings, never floats.
    assert data["invoice"]["totals"]["grand_total"] == f"{spec.totals().grand_total:f}"
    assert {c["name"] for c in data["checks"]} >= {"lines_sum", "totals", "xsd"}
    assert data["warnings"] == []


def test_read_human_output(tmp_path: Path) -> None:
    path = tmp_path / "invoice.xml"
    path.write_bytes(gen.ubl_xml(gen.credit_note_spec()))
    result = runner.invoke(app, ["read", str(path)])
    assert result.exit_code == 0, result.output
    for text in ("credit_note", "AV2026-000031", "VAT breakdown", "Lines", "Checks", "xsd"):
        assert text in result.output


def test_hostile_file_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_bytes(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    result = runner.invoke(app, ["read", str(path)])
    assert result.exit_code == 0
    assert "xml_unsafe" in result.output
    as_json = runner.invoke(app, ["read", str(path), "--json", "--isolated"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["warnings"][0]["code"] == "xml_unsafe"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["read", str(tmp_path / "nope.pdf")])
    assert result.exit_code == 2


def test_escapes_what_the_file_says(tmp_path: Path) -> None:
    # A seller name carrying a C1 CSI (allowed by XML 1.0, a terminal escape on some terminals)
    # must reach the terminal escaped.
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    evil = xml.replace("Sandbox Répartition".encode(), b"Evil&#x9b;31m")
    assert evil != xml
    path = tmp_path / "evil.xml"
    path.write_bytes(evil)
    result = runner.invoke(app, ["read", str(path)])
    assert result.exit_code == 0
    assert "Evil" in result.output
    assert "\x9b" not in result.output
