from collectors.feed import describe


def test_results_are_described_for_people() -> None:
    line = describe("collectors.evt.scraper.collection_succeeded.demo",
                    {"tenant_id": "demo", "account_id": "abcdef123456", "new_invoices": 3, "total_invoices": 9})
    assert line is not None and "3 new" in line and "demo/abcdef12" in line
    failed = describe("collectors.evt.scraper.collection_failed.demo",
                      {"tenant_id": "demo", "account_id": "a", "error_code": "login_failed", "detail": "x"})
    assert failed is not None and "login_failed" in failed


def test_per_invoice_events_are_not_printed_one_by_one() -> None:
    assert describe("collectors.evt.scraper.invoice_collected.demo", {}) is None
    assert describe("bad", {}) is None
