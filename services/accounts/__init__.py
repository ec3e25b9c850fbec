"""Accounts service: collector accounts, their encrypted credentials and their status (§2, §4, §6)."""
