"""How many fault pages written independently of the classifier it classifies right.

    python tools/fault_pages_report.py

Each page of ``tests/fixtures/fault_pages`` goes through what the runner does when a collector stops
in front of it: the witness's evidence (the page as a browser decodes it, the main document's status
and URL, not logged in: fault pages are shown in answer to the login), ``diagnose``, then ``classify``
of the ``InterfaceChanged`` the collector raised. ``holdout/`` pages are only counted: a miss there
names the file and the two codes, nothing of the page.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULT_PAGES = ROOT / "tests" / "fixtures" / "fault_pages"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.scraper.classify import classify  # noqa: E402
from services.scraper.diagnose import Diagnosis, diagnose  # noqa: E402
from services.scraper.kit.errors import InterfaceChanged  # noqa: E402
from services.scraper.kit.reply import HttpReply  # noqa: E402
from services.scraper.kit.witness import Evidence, HttpSeen  # noqa: E402


@dataclass(frozen=True)
class Verdict:
    file: str
    expected: str
    got: str

    @property
    def right(self) -> bool:
        return self.expected == self.got

    @property
    def part(self) -> str:
        return self.file.split("/", 1)[0]


def evidence_for(body: bytes, *, status: int, url: str, logged_in: bool = False) -> Evidence:
    """The evidence the witness gathers for a page shown as the main document (``Witness._shown``)."""
    html = HttpReply(status, url, {"content-type": "text/html"}, body).text()
    return Evidence(url=url, html=html, document=HttpSeen(url, status), logged_in=logged_in)


def code_for(evidence: Evidence) -> str:
    """The §4 code the runner reports when a collector raised ``InterfaceChanged`` in front of it."""
    found = diagnose(evidence)
    diagnosis = found if isinstance(found, Diagnosis) else None
    exc = InterfaceChanged("expected element not found")
    return classify(exc, diagnosis).code.value


def verdicts() -> list[Verdict]:
    entries = json.loads((FAULT_PAGES / "expected.json").read_text(encoding="utf-8"))
    found = []
    for entry in entries:
        evidence = evidence_for((FAULT_PAGES / entry["file"]).read_bytes(), status=entry["status"], url=entry["url"])
        found.append(Verdict(entry["file"], entry["expected"], code_for(evidence)))
    return found


def report(found: list[Verdict]) -> str:
    def score(part: str) -> str:
        pages = [v for v in found if v.part == part]
        return f"{part} {sum(v.right for v in pages)}/{len(pages)} right"

    lines = [f"fault pages: {score('dev')}, {score('holdout')}"]
    lines += [f"  miss {v.file}: expected {v.expected}, got {v.got}" for v in found if not v.right]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(verdicts()))
