"""``python -m sandbox --prepare FILE`` renders the listed logins' PDFs before serving."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sandbox.data import documents_for
from sandbox.legacy import legacy_documents
from sandbox.pdf import pdf_for
from sandbox.prepare import prepare, read_pairs

TODAY = date(2026, 3, 15)


def test_prepare_renders_what_each_style_will_serve(tmp_path: Path) -> None:
    pdf_for.cache_clear()
    pairs = [("classic", "prep-a"), ("legacy", "prep-b-multi")]
    rendered = prepare(pairs, TODAY)
    expected = len(documents_for("prep-a", TODAY)) + len(legacy_documents("prep-b-multi", TODAY))
    assert rendered == expected and pdf_for.cache_info().currsize == expected
    hits = pdf_for.cache_info().hits
    doc = documents_for("prep-a", TODAY)[0]
    assert pdf_for(doc, "classic").startswith(b"%PDF") and pdf_for.cache_info().hits == hits + 1


def test_the_list_is_style_tab_login(tmp_path: Path) -> None:
    good = tmp_path / "good.tsv"
    good.write_text("classic\tpb-1\n\nlegacy\tpb-2-multi\n", encoding="utf-8")
    assert read_pairs(good) == [("classic", "pb-1"), ("legacy", "pb-2-multi")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("classic pb-1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.tsv:1"):
        read_pairs(bad)
