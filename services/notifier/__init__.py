"""Notifier service: notification preferences per tenant, the notification log, delivery (§2, §8)."""
