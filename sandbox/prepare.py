"""Render ahead of time the PDFs a portal will serve to given logins (``python -m sandbox --prepare``).

The sandbox stands for the suppliers' servers, whose work never runs on the platform's cores. A
benchmark that makes it render each new login's PDFs (a Factur-X one costs ~7 ms) while the platform
collects them would charge that to the platform's throughput; rendered first, the portal only
answers during the measurement, as a real supplier's server would from where it stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from sandbox.data import documents_for
from sandbox.legacy import legacy_documents
from sandbox.pdf import pdf_for


def prepare(pairs: Iterable[tuple[str, str]], today: date) -> int:
    """Render the PDF of every document the ``style`` portal lists for each ``(style, login)``;
    returns how many."""
    rendered = 0
    for style, login in pairs:
        docs = ([doc for _, doc in legacy_documents(login, today)] if style == "legacy"
                else documents_for(login, today))
        for doc in docs:
            pdf_for(doc, style)
            rendered += 1
    return rendered


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """``style<TAB>login`` lines; blank lines skipped."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        style, sep, login = line.partition("\t")
        if not sep or not login:
            raise ValueError(f"{path}:{number}: expected 'style<TAB>login', got {line!r}")
        pairs.append((style, login))
    return pairs
