"""Contracts and plumbing shared by the five services: no service's domain logic lives here."""
