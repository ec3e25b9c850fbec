"""benchmarks/pipeline_bench.py, tiny: the whole platform as separate processes, two new accounts per
style and a ``fault-layout_changed-`` one, no baseline. Its JSON has the documented shape and counts
only verified collections: the faulty account is a failure, never a collection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STYLES = ("classic", "twostep", "spa", "legacy")

pytestmark = pytest.mark.slow


def test_pipeline_bench_counts_only_verified_collections() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pipeline_bench.py"), "--accounts-per-style", "2",
         "--styles", ",".join(STYLES), "--fault", "layout_changed", "--phase-timeout", "120",
         "--timeout", "400", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["styles"] == list(STYLES)
    assert result["baseline"] is None and result["ratio"] is None
    assert len(result["load_average_start"]) == 3 and result["commit"]
    assert [p["phase"] for p in result["phases"]] == [*STYLES, "mix"]
    for phase in result["phases"]:
        per_style = len(phase["styles"])
        assert phase["accounts"] == 3 * per_style  # 2 plain + 1 faulty per style
        assert not phase["timed_out"]
        # Every plain account collected whole, exactly once; the faulty ones never counted.
        assert phase["verified"] == 2 * per_style, phase["failures"]
        assert phase["collections_per_s"] > 0
        assert phase["collections_per_s"] == pytest.approx(phase["verified"] / phase["wall_s"], rel=0.02)
        assert set(phase["latency_s"]) == {"n", "min", "p50", "p95", "max", "samples"}
        assert phase["latency_s"]["n"] == len(phase["latency_s"]["samples"]) == phase["verified"]
        assert 0 < phase["latency_s"]["min"] <= phase["latency_s"]["p50"] <= phase["latency_s"]["max"]
        assert {"accounts", "scheduler", "scraper", "scraper browser", "notifier", "requests", "documents",
                "nats-server", "sandbox"} == set(phase["cpu_ms_per_account"])
        assert phase["cpu_ms_per_account"]["scraper"] > 0
        assert {"idle_mib", "peak_mib", "per_context_mib", "concurrency"} <= set(phase["memory"])
        faulty = [f for f in phase["failures"] if f["login"].startswith("fault-layout_changed-")]
        assert len(faulty) == per_style == len(phase["failures"]), phase["failures"]
        for failure in faulty:
            assert failure["status"] != "ok" and failure["error_code"] == "interface_changed", failure
