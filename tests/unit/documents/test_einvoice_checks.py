"""The checks (arithmetic, schema) fail on tampered invoices, and reconcile flags the portal's differences."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal

from lxml import etree

from sandbox import einvoice as gen
from services.documents.einvoice import extract, reconcile
from shared.invoice_data import Extraction, Listed

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"


def _tampered(path: str, value: str, index: int = 0, spec: gen.InvoiceSpec | None = None) -> Extraction:
    root = gen.cii_tree(spec or gen.four_rates_spec(), "en16931")
    nodes = root.findall(f".//{{{RAM}}}{path}")
    nodes[index].text = value
    return extract(etree.tostring(root))


def _failed(result: Extraction) -> set[str]:
    return {c.name for c in result.checks if not c.ok}


def test_untampered_passes_every_check() -> None:
    result = extract(gen.cii_xml(gen.four_rates_spec(), "en16931"))
    assert _failed(result) == set()


def test_grand_total_off_by_a_cent_fails_totals_and_due() -> None:
    result = _tampered("GrandTotalAmount", "63.26")
    assert _failed(result) == {"totals", "due"}
    assert {w.code for w in result.warnings} == {"check_totals_failed", "check_due_failed"}
    # Nothing is corrected: the model says what the document says.
    assert result.invoice is not None and result.invoice.totals.grand_total == Decimal("63.26")


def test_a_line_total_changed_fails_lines_sum() -> None:
    result = _tampered("LineTotalAmount", "4.01", index=0)  # the first line's BT-131
    assert _failed(result) == {"lines_sum"}


def test_vat_per_rate_any_rounding_passes_more_than_a_cent_off_fails() -> None:
    spec = gen.four_rates_spec()
    vat_20 = next(v for v in spec.totals().vat_breakdown if v.rate == Decimal("20"))
    index = list(spec.totals().vat_breakdown).index(vat_20)
    exact = vat_20.basis * Decimal("0.20")  # 14.99 x 20 % = 2.998
    truncated = exact.quantize(Decimal("0.01"), rounding=ROUND_DOWN)  # another rounding mode: 2.99
    assert truncated != vat_20.amount
    other_rounding = _tampered("CalculatedAmount", f"{truncated:f}", index=index, spec=spec)
    assert "vat_20" not in _failed(other_rounding)
    assert "vat_sum" in _failed(other_rounding)  # BT-110 no longer the sum: that one is exact
    wrong = _tampered("CalculatedAmount", f"{vat_20.amount + Decimal('0.02'):f}", index=index, spec=spec)
    assert "vat_20" in _failed(wrong)
    assert "check_vat_20_failed" in {w.code for w in wrong.warnings}


def test_schema_violation_fails_xsd_but_data_is_still_read() -> None:
    root = gen.cii_tree(gen.four_rates_spec(), "en16931")
    doc = root.find("{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}ExchangedDocument")
    assert doc is not None
    etree.SubElement(doc, f"{{{RAM}}}NotInTheSchema").text = "x"
    result = extract(etree.tostring(root))
    assert _failed(result) == {"xsd"}
    assert result.invoice is not None and result.invoice.number == "FA2026-000417"
    assert "check_xsd_failed" in {w.code for w in result.warnings}


def test_a_number_that_is_not_a_number_is_a_warning() -> None:
    result = _tampered("DuePayableAmount", "12,50")
    assert result.invoice is not None and result.invoice.totals.due is None
    assert any(w.code == "bad_number" and w.field == "totals.due" for w in result.warnings)


def _listed(**change: object) -> Listed:
    base: dict[str, object] = {"number": "FA2026-000417", "issue_date": date(2026, 3, 14),
                               "amount": gen.four_rates_spec().totals().grand_total, "kind": "invoice"}
    base.update(change)
    return Listed.model_validate(base)


def test_reconcile_agrees() -> None:
    result = extract(gen.cii_xml(gen.four_rates_spec(), "en16931"))
    assert reconcile(result, _listed()) == []
    # Case and blanks of the number are the portal's typing, not a difference.
    assert reconcile(result, _listed(number=" fa2026-000417 ")) == []


def test_reconcile_flags_each_difference_and_overwrites_nothing() -> None:
    result = extract(gen.cii_xml(gen.four_rates_spec(), "en16931"))
    before = result.model_dump()
    warnings = reconcile(result, _listed(number="FA2026-000418", issue_date=date(2026, 3, 15),
                                         amount=Decimal("63.00"), kind="credit_note"))
    assert [w.code for w in warnings] == ["listed_number_differs", "listed_issue_date_differs",
                                          "listed_amount_differs", "listed_kind_differs"]
    assert result.model_dump() == before


def test_each_reconcile_warning_names_the_field_and_both_values() -> None:
    """What an operator reads: which field, what the portal listed, what the e-invoice says."""
    result = extract(gen.cii_xml(gen.four_rates_spec(), "en16931"))
    warnings = reconcile(result, _listed(number="FA2026-000418", issue_date=date(2026, 3, 15),
                                         amount=Decimal("63.00"), kind="credit_note"))
    by_field = {w.field: w.message for w in warnings}
    assert set(by_field) == {"number", "issue_date", "totals.grand_total", "kind"}
    assert "FA2026-000418" in by_field["number"] and "FA2026-000417" in by_field["number"]
    assert "2026-03-15" in by_field["issue_date"] and "2026-03-14" in by_field["issue_date"]
    assert "63.00" in by_field["totals.grand_total"] and "63.25" in by_field["totals.grand_total"]
    assert "credit_note" in by_field["kind"] and "380" in by_field["kind"]
    assert " a invoice" not in by_field["kind"]  # read aloud, not a template's seam


def test_reconcile_credit_note_listed_negative_or_positive() -> None:
    spec = gen.credit_note_spec()
    result = extract(gen.cii_xml(spec, "en16931"))
    total = spec.totals().grand_total
    for amount in (total, -total):
        assert reconcile(result, Listed(number=spec.number, issue_date=spec.issue_date, amount=amount,
                                        kind="credit_note")) == []
    # An invoice listed negative is a difference.
    invoice = extract(gen.cii_xml(gen.four_rates_spec(), "en16931"))
    assert [w.code for w in reconcile(invoice, _listed(amount=-gen.four_rates_spec().totals().grand_total))] == [
        "listed_amount_differs"]


def test_reconcile_without_an_invoice_says_nothing() -> None:
    assert reconcile(extract(b"not a document"), _listed()) == []
