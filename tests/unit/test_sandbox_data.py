"""The sandbox's fake documents: deterministic per login and plausible enough to collect."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pypdf

from sandbox.data import documents_for
from sandbox.pdf import pdf_for

TODAY = date(2026, 3, 15)
LOGINS = [f"pharma-{i}" for i in range(50)]


def test_same_login_and_day_give_the_same_documents() -> None:
    assert documents_for("pharma-42", TODAY) == documents_for("pharma-42", TODAY)
    assert documents_for("pharma-42", TODAY) != documents_for("pharma-43", TODAY)


def test_each_login_has_10_to_40_documents_newest_first() -> None:
    for login in LOGINS:
        documents = documents_for(login, TODAY)
        assert 10 <= len(documents) <= 40
        dates = [doc.issue_date for doc in documents]
        assert dates == sorted(dates, reverse=True)


def test_documents_fall_within_the_last_12_months() -> None:
    for login in LOGINS:
        for doc in documents_for(login, TODAY):
            assert TODAY - timedelta(days=365) < doc.issue_date <= TODAY


def test_numbers_are_unique_and_tell_the_kind() -> None:
    for login in LOGINS:
        documents = documents_for(login, TODAY)
        login_hash = hashlib.sha256(login.encode()).hexdigest()[:6]
        assert len({doc.number for doc in documents}) == len(documents)
        for doc in documents:
            prefix = "FA" if doc.kind == "invoice" else "AV"
            assert doc.number.startswith(f"{prefix}{doc.issue_date.year}-{login_hash}-")


def test_mix_of_invoices_and_credit_notes() -> None:
    kinds = Counter(doc.kind for login in LOGINS for doc in documents_for(login, TODAY))
    share = kinds["credit_note"] / (kinds["credit_note"] + kinds["invoice"])
    assert 0.08 < share < 0.25
    assert all(any(d.kind == "credit_note" for d in documents_for(login, TODAY)) for login in LOGINS)


def test_amounts_are_positive_euros_with_cents() -> None:
    for doc in documents_for("pharma-42", TODAY):
        assert doc.currency == "EUR"
        assert doc.amount > 0
        assert doc.amount == doc.amount.quantize(Decimal("0.01"))
        assert doc.amount.as_tuple().exponent == -2


def test_pdfs_are_stable_and_readable() -> None:
    for doc in documents_for("pharma-42", TODAY)[:5]:
        content = pdf_for(doc)
        assert content.startswith(b"%PDF")
        pdf_for.cache_clear()
        assert pdf_for(doc) == content  # rebuilt, not just cached
        text = pypdf.PdfReader(io.BytesIO(content)).pages[0].extract_text()
        assert doc.number in text
        assert "pharma-42" in text
        assert ("FACTURE" if doc.kind == "invoice" else "AVOIR") in text
