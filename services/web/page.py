"""The "Collecteurs" page (owned by the page's helper; this is its placeholder)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> str:
    return "<!doctype html><html lang=\"fr\"><title>Collecteurs</title><p>Collecteurs</p></html>"
