"""Sandbox collections per second for one scraper worker, against a naive browser-per-job baseline.

    .venv/bin/python benchmarks/scraper_bench.py                      # defaults below
    .venv/bin/python benchmarks/scraper_bench.py --concurrency 8 --jobs 300 --baseline-jobs 60 --json

Each style is measured alone (``--jobs / number of styles`` collections each), then the mix (``--jobs``,
styles taken in turn); the baseline the same way with ``--baseline-jobs``. Only successful collections
count in the rates; failures are printed apart with their reason.

A *collection* is what a first run of a new account does on the sandbox: log in, walk every list page
and download every PDF (10 to 40 documents per pharmacy), through the same collectors and the same
framework runner (classification, session handling) the scraper service uses. Styles are taken in
turn (classic, two-step recipe, SPA). Only the storage side (object store, ledger) is left out: it is
the pipeline benchmark's business, not the browser's.

- worker: what one scraper process does: ONE Chromium, a fresh context per job, ``--concurrency``
  jobs at a time (services/scraper/browsers.py).
- baseline: the naive way: each job launches its own Chromium and closes it at the end, with the
  same concurrency.

Both run in the same invocation, after a shared warm-up (the sandbox caches its PDFs, as a real
portal serves them from storage). The sandbox runs in its own process: it is the "portal", and on
this machine it shares the two cores with the worker, which only makes the figures conservative.

Memory is the PSS (proportional set size: shared pages split between the processes sharing them) of
every process the benchmark started except the sandbox (Playwright's driver and Chromium's), sampled
every 100 ms. "Per context" is (peak − idle browser) / concurrency for the worker, and peak /
concurrency for the baseline (each job there carries a whole browser).

CPU is also counted, per collection: this process, the driver and every browser process (those that
exit are counted through their parent), the sandbox apart. Unlike collections per second it does not
depend on what else the machine runs, so two runs on a busy machine can still be compared.

``--workload daily`` is the steady state instead: each account already has all but its two newest
documents (a daily run), so a collection is mostly the login and the list pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.data import documents_for  # noqa: E402
from sandbox.legacy import sites_for  # noqa: E402
from services.scraper.browser import chromium_path, launch_browser  # noqa: E402
from services.scraper.browsers import BrowserPool  # noqa: E402
from services.scraper.collectors import builtin_collectors  # noqa: E402
from services.scraper.kit import CollectContext, CollectedDocument, Collector  # noqa: E402
from services.scraper.runner import run_collection  # noqa: E402
from shared.natsserver import free_port, port_open  # noqa: E402

STYLES = {"classic": "sandbox-classic", "twostep": "sandbox-twostep", "spa": "sandbox-spa",
          "legacy": "sandbox-legacy"}
PAGE_TIMEOUT_MS = 15_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- memory ------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(root: int, skip: set[int]) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in skip:
                found.append(child)
                todo.append(child)
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    """User + system time of a process and of its children it has reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLOCK_TICKS


def worker_cpu_s(skip: set[int]) -> float:
    own = os.times()
    return own.user + own.system + sum(_cpu_s(pid) for pid in _descendants(os.getpid(), skip))


def browser_pss_mib(skip: set[int]) -> float:
    return sum(_pss_kib(pid) for pid in _descendants(os.getpid(), skip)) / 1024


class PeakSampler:
    """Samples in a thread, so a busy event loop does not skew when samples are taken."""

    def __init__(self, skip: set[int], every_s: float = 0.1) -> None:
        self.skip, self.every_s, self.peak = skip, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, browser_pss_mib(self.skip))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --- jobs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    style: str
    login: str
    known: frozenset[str] = frozenset()


@dataclass
class Phase:
    name: str
    jobs: int = 0
    ok: int = 0
    documents: int = 0
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    peak_mib: float = 0.0
    idle_mib: float = 0.0
    concurrency: int = 1
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        """Successful collections per second: a failed job costs time but is no collection."""
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def per_context_mib(self) -> float:
        return (self.peak_mib - self.idle_mib) / self.concurrency

    @property
    def cpu_ms_per_collection(self) -> float:
        return 1000 * self.cpu_s / self.jobs if self.jobs else 0.0


def make_jobs(styles: list[str], logins_per_style: int, count: int, workload: str = "first") -> list[Job]:
    pool = []
    for i in range(logins_per_style):
        for style in styles:
            login = f"bench-{i:03d}" + ("@pharmacie.test" if style == "twostep" else "")
            # The sandbox runs on the real calendar; newest first: all but two are already collected.
            known = (frozenset(d.number for d in documents_for(login, date.today())[2:]) if workload == "daily"
                     else frozenset())
            pool.append(Job(style, login, known))
    return [pool[i % len(pool)] for i in range(count)]


async def collect_one(collector: Collector, context: BrowserContext, portal: str, job: Job) -> tuple[int, str]:
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    # The legacy portal names its customers' site: what the ledger would know is keyed by it.
    site = sites_for(job.login)[0][1] if job.style == "legacy" else None
    ctx = CollectContext(browser_context=context, portal_url=f"{portal}/{job.style}/",
                         login=job.login, password="demo", known=frozenset((site, n) for n in job.known))
    documents = 0

    async def store(_: CollectedDocument) -> bool:
        nonlocal documents
        documents += 1
        return True

    report = await run_collection(collector, ctx, store, timeout_s=120)
    return documents, "" if report.outcome is None else f"{job}: {report.outcome.code.value} {report.outcome.detail}"


RunOne = Callable[[Job], Awaitable[tuple[int, str]]]


async def run_phase(phase: Phase, jobs: list[Job], run_one: RunOne, skip: set[int]) -> Phase:
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def lane() -> None:
        while not queue.empty():
            documents, failure = await run_one(queue.get_nowait())
            phase.jobs += 1
            phase.documents += documents
            if failure:
                phase.failures.append(failure)
            else:
                phase.ok += 1

    with PeakSampler(skip) as sampler:
        cpu_before = worker_cpu_s(skip)
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(phase.concurrency)))
        phase.elapsed_s = time.perf_counter() - started
        await asyncio.sleep(0.5)  # exited renderers are reaped, so their CPU is counted
        phase.cpu_s = worker_cpu_s(skip) - cpu_before
    phase.peak_mib = sampler.peak
    return phase


# --- the two ways --------------------------------------------------------------------------------


async def worker_phases(runs: list[tuple[str, list[Job]]], warmup: list[Job], portal: str, concurrency: int,
                        skip: set[int]) -> list[Phase]:
    collectors = builtin_collectors()
    pool = BrowserPool(page_timeout_s=PAGE_TIMEOUT_MS / 1000)

    async def run_one(job: Job) -> tuple[int, str]:
        async with pool.context() as context:
            return await collect_one(collectors[STYLES[job.style]], context, portal, job)

    try:
        # Warm-up: launches the worker's browser, fills the sandbox's caches for every login.
        await run_phase(Phase("warm-up", concurrency=concurrency), warmup, run_one, skip)
        await asyncio.sleep(1.0)  # let closed contexts' renderers exit
        phases = []
        for name, jobs in runs:
            await asyncio.sleep(1.0)
            idle = browser_pss_mib(skip)
            phase = await run_phase(Phase(f"worker {name}", concurrency=concurrency), jobs, run_one, skip)
            phase.idle_mib = idle
            phases.append(phase)
        return phases
    finally:
        await pool.close()


async def baseline_phases(runs: list[tuple[str, list[Job]]], portal: str, concurrency: int,
                          skip: set[int]) -> list[Phase]:
    collectors = builtin_collectors()
    holder: dict[str, Playwright] = {}

    async def run_one(job: Job) -> tuple[int, str]:
        browser: Browser = await launch_browser(holder["pw"])
        try:
            context = await browser.new_context(accept_downloads=True, locale="fr-FR", timezone_id="Europe/Paris")
            return await collect_one(collectors[STYLES[job.style]], context, portal, job)
        finally:
            await browser.close()

    async with async_playwright() as playwright:
        holder["pw"] = playwright
        phases = []
        for name, jobs in runs:
            await asyncio.sleep(0.5)
            idle = browser_pss_mib(skip)  # the driver alone: every browser belongs to a job
            phase = await run_phase(Phase(f"baseline {name}", concurrency=concurrency), jobs, run_one, skip)
            phase.idle_mib = idle
            phases.append(phase)
        return phases


# --- main ----------------------------------------------------------------------------------------


def start_sandbox() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the sandbox did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def report(worker: list[Phase], baseline: list[Phase], as_json: bool) -> None:
    """One line per style and one for the mix, worker then baseline; the ratio on the mix."""
    mix, base_mix = worker[-1], baseline[-1]
    ratio = mix.rate / base_mix.rate if base_mix.rate else float("inf")
    phases = [*worker, *baseline]
    if as_json:
        print(json.dumps({"phases": {p.name: {
            "jobs": p.jobs, "ok": p.ok, "documents": p.documents, "elapsed_s": round(p.elapsed_s, 2),
            "collections_per_s": round(p.rate, 2), "concurrency": p.concurrency,
            "cpu_ms_per_collection": round(p.cpu_ms_per_collection), "peak_mib": round(p.peak_mib, 1),
            "idle_mib": round(p.idle_mib, 1), "per_context_mib": round(p.per_context_mib, 1),
            "failures": p.failures} for p in phases}, "ratio": round(ratio, 2)}))
        return
    print(f"{'':16} {'jobs':>5} {'ok':>5} {'docs':>6} {'time s':>7} {'ok coll/s':>9} {'docs/s':>7} "
          f"{'CPU ms/job':>10} {'peak MiB':>9} {'idle MiB':>9} {'MiB/ctx':>8} {'failed':>6}")
    for p in phases:
        print(f"{p.name:16} {p.jobs:5d} {p.ok:5d} {p.documents:6d} {p.elapsed_s:7.1f} {p.rate:9.2f} "
              f"{p.documents / p.elapsed_s:7.1f} {p.cpu_ms_per_collection:10.0f} {p.peak_mib:9.0f} "
              f"{p.idle_mib:9.0f} {p.per_context_mib:8.1f} {len(p.failures):6d}")
    cores = os.cpu_count() or 1
    if mix.cpu_ms_per_collection:
        print(f"\nCPU-bound ceiling at the mix's CPU cost: {cores * 1000 / mix.cpu_ms_per_collection:.1f} "
              f"collections/s on {cores} cores if nothing else ran")
    memory = (f", {base_mix.per_context_mib / mix.per_context_mib:.1f}x less memory per concurrent job"
              if mix.per_context_mib > 0 else "")
    print(f"worker / baseline on the mix: {ratio:.1f}x successful collections per second{memory}")
    failures = [(p.name, f) for p in phases for f in p.failures]
    print(f"failures (left out of the rates): {len(failures)}")
    for name, failure in failures[:20]:
        print(f"  {name}: {failure}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent jobs (contexts) per worker")
    parser.add_argument("--jobs", type=int, default=300,
                        help="collections measured for the worker's mix (each style alone: jobs / styles)")
    parser.add_argument("--baseline-jobs", type=int, default=60,
                        help="collections measured for the baseline's mix (each style alone: baseline-jobs / styles)")
    parser.add_argument("--styles", default="classic,twostep,spa,legacy", help="portal styles, taken in turn")
    parser.add_argument("--logins", type=int, default=10, help="distinct pharmacies per style")
    parser.add_argument("--workload", choices=("first", "daily"), default="first",
                        help="first: every PDF downloaded; daily: all but the two newest already collected")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = parser.parse_args()
    styles = [s for s in args.styles.split(",") if s]
    unknown = set(styles) - set(STYLES)
    if unknown:
        raise SystemExit(f"unknown style(s): {', '.join(sorted(unknown))}")

    def runs(total: int) -> list[tuple[str, list[Job]]]:
        alone = [(style, make_jobs([style], args.logins, max(1, total // len(styles)), args.workload))
                 for style in styles]
        return [*alone, ("mix", make_jobs(styles, args.logins, total, args.workload))] if len(styles) > 1 else alone

    load_before = os.getloadavg()
    sandbox, portal = start_sandbox()
    try:
        skip = {sandbox.pid}
        warmup = make_jobs(styles, args.logins, args.logins * len(styles))
        worker = await worker_phases(runs(args.jobs), warmup, portal, args.concurrency, skip)
        baseline = await baseline_phases(runs(args.baseline_jobs), portal, args.concurrency, skip)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    if not args.json:
        load = os.getloadavg()
        print(f"one worker, {os.cpu_count()} CPUs (load average {load_before[0]:.1f} before, {load[0]:.1f} after), "
              f"{chromium_path()}, styles {', '.join(styles)}, concurrency {args.concurrency}, "
              f"workload {args.workload}\n")
    report(worker, baseline, args.json)


if __name__ == "__main__":
    asyncio.run(main())
