"""Documents per second for the e-invoice extractor (issue 14), every sample printed.

    python benchmarks/extraction_bench.py [--samples 5] [--per-sample 40] [--isolated-per-sample 10]

Documents, all from the sandbox: its portals' Factur-X PDFs (classic: EN 16931; legacy: BASIC /
BASIC WL; twostep: ZUGFeRD 2.0 BASIC or plain), its plain PDFs (spa, and no style), and the
generator's 200-line wholesaler invoice as a Factur-X EN 16931 PDF. Each kind is extracted
``--per-sample`` times per sample in this process (``extract``) and ``--isolated-per-sample``
times through ``extract_isolated`` (in a worker process kept between documents, as the documents
service does); the rate of each sample is printed, then min / median / max. The first isolated
call starts the forkserver and the worker and is made before timing. Run it alone: the machine's other load shows in
the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import einvoice as gen
from sandbox.data import documents_for
from sandbox.pdf import pdf_for
from services.documents.einvoice import extract, extract_isolated


def corpus() -> dict[str, list[bytes]]:
    docs = documents_for("bench-pharmacy", date(2026, 11, 30))[:20]
    plain = [pdf_for(doc, None) for doc in docs]
    wholesaler = gen.facturx_pdf(gen.wholesaler_spec(200), "en16931", plain[0])
    return {
        "factur-x classic (EN 16931)": [pdf_for(doc, "classic") for doc in docs],
        "factur-x legacy (BASIC/WL)": [pdf_for(doc, "legacy") for doc in docs],
        "twostep (ZUGFeRD or plain)": [pdf_for(doc, "twostep") for doc in docs],
        "plain PDF": plain,
        "wholesaler 200 lines": [wholesaler],
    }


def rate(run: Callable[[bytes], object], documents: list[bytes], count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        run(documents[n % len(documents)])
    return count / (time.perf_counter() - started)


def isolated(data: bytes) -> object:
    return asyncio.run(extract_isolated(data))


def report(label: str, rates: list[float]) -> None:
    samples = " ".join(f"{r:.1f}" for r in rates)
    print(f"  {label:<30} docs/s min {min(rates):8.1f}  median {statistics.median(rates):8.1f}  "
          f"max {max(rates):8.1f}   samples: {samples}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--per-sample", type=int, default=40)
    parser.add_argument("--isolated-per-sample", type=int, default=10)
    args = parser.parse_args()
    kinds = corpus()
    for documents in kinds.values():  # warm-up: schemas compiled, modules imported
        extract(documents[0])
    isolated(kinds["plain PDF"][0])  # starts the forkserver
    sources = {label: extract(docs[0]).source for label, docs in kinds.items()}
    print(f"extract, in process ({args.per_sample} documents a sample):")
    for label, documents in kinds.items():
        per = max(1, args.per_sample // 10) if "200" in label else args.per_sample
        report(f"{label} [{sources[label]}]", [rate(extract, documents, per) for _ in range(args.samples)])
    print(f"extract_isolated, in a kept worker process ({args.isolated_per_sample} documents a sample):")
    for label, documents in kinds.items():
        report(label, [rate(isolated, documents, args.isolated_per_sample) for _ in range(args.samples)])


if __name__ == "__main__":
    main()
