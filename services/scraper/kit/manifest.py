"""A collector's manifest: what the catalog shows and what the scheduler needs to know."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, HttpUrl

from shared.settings import MAX_DOCUMENT_BYTES_CEILING

LoginKind = Literal["email", "identifier"]


class Manifest(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str
    supplier: str
    portal_url: HttpUrl
    login_kind: LoginKind = "identifier"
    frequency_hours: int = Field(default=24, ge=1, le=24 * 31)
    max_sessions: int = Field(default=4, ge=1, description="Concurrent sessions allowed on the portal")
    version: str = "1"
    # Largest document this portal may send (None: the worker's COLLECTORS_MAX_DOCUMENT_BYTES).
    max_document_bytes: int | None = Field(default=None, ge=1, le=MAX_DOCUMENT_BYTES_CEILING)
