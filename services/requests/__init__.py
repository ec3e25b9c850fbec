"""Requests service: collector requests, their requesters (votes) and their workflow (§1.7, §2, §8)."""
