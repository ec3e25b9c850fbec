"""Shape of the fault-page fixture set (not the classifier: see tests/fixtures/fault_pages/README.md)."""

import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "fault_pages"
CODES = {
    "supplier_unavailable",
    "password_expired",
    "action_required_on_site",
    "two_factor_required",
    "rate_limited",
    "account_locked",
}
CATEGORIES = {
    "maintenance": "supplier_unavailable",
    "planned_outage": "supplier_unavailable",
    "server_error": "supplier_unavailable",
    "password_expired": "password_expired",
    "password_change_forced": "password_expired",
    "terms": "action_required_on_site",
    "one_time_code": "two_factor_required",
    "captcha": "rate_limited",
    "account_locked": "account_locked",
    "too_many_attempts": "rate_limited",
}


def _entries() -> list[dict]:
    return json.loads((ROOT / "expected.json").read_text(encoding="utf-8"))


def test_every_listed_file_exists_and_every_page_is_listed() -> None:
    listed = [e["file"] for e in _entries()]
    assert len(listed) == len(set(listed))
    on_disk = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*.html")}
    assert set(listed) == on_disk


def test_entries_are_well_formed() -> None:
    for e in _entries():
        assert e["expected"] in CODES, e
        assert CATEGORIES[e["category"]] == e["expected"], e
        assert e["lang"] in {"fr", "en"}, e
        assert isinstance(e["status"], int) and 100 <= e["status"] <= 599, e
        assert e["url"].startswith(("http://", "https://")), e
        assert e["note"].strip(), e
        assert e["file"].split("/")[0] in {"dev", "holdout"}, e


def test_each_category_has_french_and_english_pages() -> None:
    langs: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for e in _entries():
        langs[e["category"]].add(e["lang"])
        counts[e["category"]] += 1
    assert set(langs) == set(CATEGORIES)
    for category, seen in langs.items():
        assert seen == {"fr", "en"}, category
        assert counts[category] >= (6 if category == "captcha" else 4), category


def test_split_sizes() -> None:
    splits = [e["file"].split("/")[0] for e in _entries()]
    assert splits.count("dev") >= 44
    assert splits.count("holdout") >= 16


def test_pages_are_small_utf8_and_free_of_test_vocabulary() -> None:
    for page in ROOT.glob("*/*.html"):
        raw = page.read_bytes()
        assert len(raw) < 7000, page
        text = raw.decode("utf-8").lower()
        assert "sandbox" not in text and "fault-" not in text, page
