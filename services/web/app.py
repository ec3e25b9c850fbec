"""Composition root of the web service: the FastAPI app, built from its settings and NATS client."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.web.page import router as page_router

STATIC_DIR = Path(__file__).parent / "static"


def create_app() -> FastAPI:
    app = FastAPI(title="Collectors web API", version="1")
    app.include_router(page_router)
    # The page's assets, once the page's helper has written them.
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
