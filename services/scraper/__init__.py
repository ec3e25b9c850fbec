"""Scraper service: browser workers, collector plugins, the collected-invoice ledger (§7)."""
