"""Scheduler service: one schedule per account, collect jobs on the work queue (§2, §4, §9)."""
