"""End to end: new sandbox accounts collected by the real platform, as production runs it.

    python benchmarks/pipeline_bench.py [--accounts-per-style 100] [--styles classic,twostep,spa,legacy]
                                        [--concurrency C] [--baseline] [--fault MODE] [--json]

The platform: nats-server with JetStream (``collectors up``'s sync policy: fsync always), the sandbox
portal, and the five services each in its own process (``python -m services.<name>``, its own data
dir: the durable embedded store), as production and ``tests/chaos/harness.py`` run them, with every
setting at its default (the scraper's concurrency unless ``--concurrency``). Accounts are created
over the NATS API (``accounts.create``, as the gateway does), so each collection goes through the
whole path: activation, the scheduler's dispatch, the credential reveal, the browser, the Object
Store, the ledger, the events.

Phases, one after another on the same platform: a warm-up (one account per style, not counted),
then each style alone, then the mix (N accounts of every style at once). In each phase N new
accounts per style are created at once (one tenant each); the phase ends when every account has
left ``pending``/``collecting`` (its first run's outcome), or after ``--phase-timeout``. N is 100 by
default, as in the issue's own measurement: a 25-account phase lasted 3–8 s, and its start (the
first dispatches) and its tail (the last jobs alone) weighed on its rate.

A collection counts only when verified: the account is ``ok`` and the ``invoice collected`` events
in the stream (read back from JetStream, what consumers see) hold every document the sandbox itself
lists for that login (``sandbox.data.documents_for``; ``sandbox.legacy.legacy_documents`` with sites
for legacy), each exactly once, and nothing else. Anything else is a failure, printed apart with its
reason (status, error code, missing / doubled / unexpected numbers), and left out of the rate.

- collections/s: verified collections / (last verified completion − the creates' start);
- latency: from an account's create reply to its last ``invoice collected`` event (the stream's
  timestamp), per verified account: min / p50 / p95 / max;
- CPU ms per account: CPU time (user + system, /proc) used during the phase by each process
  group — each service's Python process, the scraper's Playwright driver and Chromium apart,
  nats-server, and the sandbox (the "portal": not the platform's cost, but it shares the cores);
- memory: PSS of the scraper's driver and browser processes sampled every 100 ms: (peak − idle
  before the phase) / concurrent jobs.

``--baseline``: the mix again, on a second fresh platform whose scraper launches a new Chromium for
every job and reads the portal through it (``BrowserPool.context`` replaced in that process only,
and ``browserless_start`` off: ``--serve-scraper-per-job``); everything else identical. The ratio is
the mix's rate over the baseline's.

The sandbox renders the PDFs of every login the phases will create before it serves
(``python -m sandbox --prepare``): a supplier's work is not the platform's, and never runs on its
cores in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()
sys.path.insert(0, str(ROOT))

from shared.subjects import SERVICES  # noqa: E402  (after the path: run from a checkout)

STYLES = {"classic": "sandbox-classic", "twostep": "sandbox-twostep", "spa": "sandbox-spa",
          "legacy": "sandbox-legacy"}
SERVICE_NAMES = SERVICES  # every service `collectors up` runs
SETTLED = {"ok", "action_required", "retrying", "maintenance", "deleted"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_CONCURRENCY = 8  # ScraperSettings.concurrency's default (checked at start)


# --- /proc -------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        tree[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    return tree


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    tree = tree if tree is not None else _children()
    found, todo = [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_s(pid: int, *, reaped: bool = True) -> float:
    """User + system time of a process, and with ``reaped`` that of the children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15 if reaped else 13]) / CLOCK_TICKS


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


class PeakSampler:
    """PSS of a process's descendants, sampled in a thread every 100 ms."""

    def __init__(self, root: int) -> None:
        self.root, self.peak = root, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, pss_mib(descendants(self.root)))
            self._stop.wait(0.1)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the platform, one process per service -------------------------------------------------------


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                          cwd=ROOT, start_new_session=True)

    def stop(self) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self.popen = None


@dataclass
class Platform:
    root: Path
    concurrency: int | None
    per_job_browser: bool = False
    # (style, login) of every account the phases will create: the sandbox renders their PDFs before
    # it serves (sandbox/prepare.py), so a supplier's work does not count against the platform's.
    prepared: list[tuple[str, str]] = field(default_factory=list)
    nats: Any = None
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.nats.url)

    async def start(self) -> None:
        from services.accounts.crypto import new_key_entry
        from shared.natsserver import NatsServer, free_port, port_open, wait_jetstream_ready

        self.root.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(store_dir=self.root / "nats", log_file=self.root / "nats-server.log")
        self.nats.start()
        await wait_jetstream_ready(self.nats.url)
        sandbox_port = free_port()
        base = {**os.environ, "NATS_URL": self.nats.url, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        for name in ("MONGODB_URL", "COLLECTORS_MONGODB_URL", "COLLECTORS_IN_MEMORY", "COLLECTORS_CONCURRENCY"):
            base.pop(name, None)
        prepare_file = self.root / "sandbox-logins.tsv"
        prepare_file.write_text("".join(f"{style}\t{login}\n" for style, login in self.prepared), encoding="utf-8")
        self.procs["sandbox"] = Proc("sandbox", [sys.executable, "-m", "sandbox", "--host", "127.0.0.1",
                                                 "--port", str(sandbox_port), "--prepare", str(prepare_file)],
                                     base, self.root / "sandbox.log")
        keys = new_key_entry("bench1")
        for service in SERVICE_NAMES:
            env = {**base, "COLLECTORS_DATA_DIR": str(self.root / service), "COLLECTORS_CREDENTIAL_KEYS": keys,
                   "COLLECTORS_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}"}
            if service == "scraper" and self.concurrency is not None:
                env["COLLECTORS_CONCURRENCY"] = str(self.concurrency)
            (self.root / service).mkdir(exist_ok=True)
            argv = [sys.executable, "-m", f"services.{service}"]
            if service == "scraper" and self.per_job_browser:
                argv = [sys.executable, str(SELF), "--serve-scraper-per-job"]
            self.procs[service] = Proc(service, argv, env, self.root / f"{service}.log")
        for proc in self.procs.values():
            proc.start()
        deadline = time.monotonic() + 300  # rendering first: ~7 ms a Factur-X PDF
        while not port_open(sandbox_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start; log: {self.root / 'sandbox.log'}")
            await asyncio.sleep(0.1)

    def pid(self, name: str) -> int:
        if name == "nats-server":
            return int(self.nats.process.pid)
        popen = self.procs[name].popen
        assert popen is not None
        return popen.pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far by process group; the scraper's browser processes apart."""
        tree = _children()
        out: dict[str, float] = {}
        for name in (*SERVICE_NAMES, "nats-server", "sandbox"):
            pid = self.pid(name)
            if name == "scraper":
                out["scraper"] = cpu_s(pid, reaped=False)
                out["scraper browser"] = (cpu_s(pid) - cpu_s(pid, reaped=False)
                                          + sum(cpu_s(p) for p in descendants(pid, tree)))
            else:
                out[name] = cpu_s(pid) + sum(cpu_s(p) for p in descendants(pid, tree))
        return out

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        if self.nats is not None:
            self.nats.stop()


# --- accounts, events ----------------------------------------------------------------------------


@dataclass
class Planned:
    style: str
    tenant: str
    login: str
    expected: Counter[tuple[str | None, str]]
    account_id: str = ""
    created_at: float = 0.0  # wall clock, at the create's reply


def expected_documents(style: str, login: str, today: date) -> Counter[tuple[str | None, str]]:
    from sandbox.data import documents_for
    from sandbox.legacy import legacy_documents, sites_for

    if style == "legacy":  # the portal shows each site by its label, which the events carry
        label = dict(sites_for(login))
        return Counter((label[code], doc.number) for code, doc in legacy_documents(login, today))
    return Counter((None, doc.number) for doc in documents_for(login, today))


def plan(phase: str, styles: list[str], per_style: int, run: str, fault: str | None) -> list[Planned]:
    today = date.today()
    planned = []
    for style in styles:
        for i in range(per_style + (1 if fault else 0)):
            faulty = fault is not None and i == per_style
            login = f"fault-{fault}-{run}-{phase}-{style}" if faulty else f"pb-{run}-{phase}-{style}-{i}"
            if style == "legacy" and i % 2 == 0 and not faulty:
                login += "-multi"  # two sites under one customer login
            if style == "twostep":
                login += "@pharmacie.test"
            expected = Counter() if faulty else expected_documents(style, login, today)
            planned.append(Planned(style, f"pb-{run}-{phase}-{style}-{i}", login, expected))
    return planned


@dataclass
class Observer:
    """Every account status change (core NATS) and every `invoice collected` event (read back from
    the stream by a durable pull consumer, with the stream's own timestamp)."""

    status: dict[str, tuple[str, str | None, float]] = field(default_factory=dict)
    events: dict[str, list[tuple[str | None, str, float]]] = field(default_factory=lambda: defaultdict(list))
    changed: float = field(default_factory=time.time)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _nc: Any = None

    async def start(self, url: str) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        from shared.client import inbox_prefix
        from shared.subjects import STREAMS, Events

        self._nc = await nats.connect(url, name="pipeline-bench", inbox_prefix=inbox_prefix("cli"))

        async def on_status(msg: Any) -> None:
            evt = json.loads(msg.data)
            self.status[evt["account_id"]] = (evt["status"], evt.get("error_code"), time.time())
            self.changed = time.time()

        await self._nc.subscribe(Events.ACCOUNT_STATUS_CHANGED.pattern, cb=on_status)
        js = self._nc.jetstream()
        # No acks: the bench only reads the stream, and acking each of ~200 events a second cost its
        # process and nats-server CPU on the cores the platform is measured on.
        sub = await js.pull_subscribe(Events.INVOICE_COLLECTED.pattern, durable=f"pipeline-bench-{os.getpid()}",
                                      stream=str(STREAMS["scraper"].name),
                                      config=ConsumerConfig(ack_policy=AckPolicy.NONE))

        async def pull() -> None:
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=1.0)
                except Exception:  # nats-py's TimeoutError: nothing new
                    continue
                for msg in msgs:
                    evt = json.loads(msg.data)
                    stamp = msg.metadata.timestamp.timestamp() if msg.metadata.timestamp else time.time()
                    self.events[evt["account_id"]].append((evt.get("site"), evt["number"], stamp))
                    self.changed = time.time()

        self._tasks.append(asyncio.create_task(pull()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()


# --- a phase ----------------------------------------------------------------------------------


async def extraction_share(platform: Platform, before: dict[str, float], documents: int,
                           quiet_s: float = 3.0, timeout_s: float = 300.0) -> dict[str, Any]:
    """The documents service reads every collected document after the fact, at a lower priority
    (its workers are niced): it lags the phases. Wait until its CPU stays still for ``quiet_s`` (it
    caught up), then its share of the platform's CPU over all the phases and the catch-up."""
    started = time.monotonic()
    last = platform.cpu().get("documents", 0.0)
    still_since = time.monotonic()
    while time.monotonic() - still_since < quiet_s and time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.5)
        now = platform.cpu().get("documents", 0.0)
        if now - last > 0.05:
            still_since = time.monotonic()
        last = now
    after = platform.cpu()
    used = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after if k != "sandbox"}
    total = sum(used.values())
    return {"documents": documents, "documents_cpu_s": round(used.get("documents", 0.0), 2),
            "platform_cpu_s": round(total, 2),
            "share": round(used.get("documents", 0.0) / total, 3) if total else None,
            "ms_per_document": round(1000 * used.get("documents", 0.0) / documents, 2) if documents else None,
            "caught_up_after_s": round(time.monotonic() - started - quiet_s, 1)}


def spread(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"n": len(ordered), "min": round(ordered[0], 3), "p50": round(statistics.median(ordered), 3),
            "p95": round(p95, 3), "max": round(ordered[-1], 3), "samples": [round(x, 3) for x in ordered]}


async def run_phase(platform: Platform, client: Any, observer: Observer, name: str, styles: list[str],
                    per_style: int, run: str, fault: str | None, concurrency: int,
                    timeout_s: float) -> dict[str, Any]:
    from shared.subjects import Api

    accounts = plan(name, styles, per_style, run, fault)
    load_before = os.getloadavg()
    scraper_pid = platform.pid("scraper")
    await asyncio.sleep(0.5)
    idle_mib = pss_mib(descendants(scraper_pid))
    cpu_before = platform.cpu()

    async def create(p: Planned) -> None:
        reply = await client.call(Api.ACCOUNTS_CREATE, {"tenant_id": p.tenant, "collector_id": STYLES[p.style],
                                                        "login": p.login, "password": "demo"}, timeout=30)
        p.created_at = time.time()
        p.account_id = reply["id"]

    with PeakSampler(scraper_pid) as sampler:
        started = time.time()
        await asyncio.gather(*(create(p) for p in accounts))
        created_s = time.time() - started
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [observer.status.get(p.account_id, ("pending", None, 0.0))[0] for p in accounts]
            if all(s in SETTLED for s in states):
                # ok arrives with the job's result; its events are already in the stream, but give the
                # reader a moment, then go on once nothing changed for 2 s (or every ok account is whole).
                whole = all(sum(1 for _ in observer.events.get(p.account_id, ())) >= sum(p.expected.values())
                            for p in accounts if observer.status[p.account_id][0] == "ok")
                if (whole and time.time() - observer.changed > 0.5) or time.time() - observer.changed > 2.0:
                    break
            await asyncio.sleep(0.2)
        timed_out = time.monotonic() >= deadline
    cpu_after = platform.cpu()
    load_after = os.getloadavg()

    verified, failures, latencies, finished = 0, [], [], []
    for p in accounts:
        status, code, status_at = observer.status.get(p.account_id, ("pending", None, 0.0))
        got = Counter((site, number) for site, number, _ in observer.events.get(p.account_id, ()))
        missing = sorted(f"{s + '/' if s else ''}{n}" for (s, n) in p.expected - got)
        doubled = sorted(f"{s + '/' if s else ''}{n}" for (s, n), c in got.items() if c > 1)
        unexpected = sorted(f"{s + '/' if s else ''}{n}" for (s, n) in got if (s, n) not in p.expected)
        if status == "ok" and p.expected and not missing and not doubled and not unexpected:
            verified += 1
            last = max(stamp for _, _, stamp in observer.events[p.account_id])
            latencies.append(last - p.created_at)
            finished.append(max(last, status_at))
        else:
            failures.append({"style": p.style, "login": p.login, "account_id": p.account_id, "status": status,
                             "error_code": code, "expected": sum(p.expected.values()),
                             "events": sum(got.values()), "missing": missing[:10], "missing_n": len(missing),
                             "doubled": doubled[:10], "unexpected": unexpected[:10]})
    wall = (max(finished) - started) if finished else time.time() - started
    cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    jobs = len(accounts)
    active = min(concurrency, jobs)
    return {
        "phase": name, "styles": styles, "accounts": jobs, "verified": verified,
        "documents": sum(sum(p.expected.values()) for p in accounts),
        "created_s": round(created_s, 2), "wall_s": round(wall, 2),
        "collections_per_s": round(verified / wall, 2) if wall > 0 else 0.0,
        "timed_out": timed_out,
        "latency_s": spread(latencies),
        "cpu_ms_per_account": {k: round(1000 * v / jobs, 1) for k, v in cpu.items()},
        "cpu_ms_per_account_platform": round(1000 * sum(v for k, v in cpu.items() if k != "sandbox") / jobs, 1),
        "memory": {"idle_mib": round(idle_mib, 1), "peak_mib": round(sampler.peak, 1), "concurrency": active,
                   "per_context_mib": round((sampler.peak - idle_mib) / active, 1)},
        "load_average": [round(x, 2) for x in (*load_before, *load_after)],
        "failures": failures,
    }


async def wait_ready(client: Any, styles: list[str], timeout: float = 90.0) -> None:
    from shared.subjects import Api, health

    deadline = time.monotonic() + timeout
    missing = list(SERVICE_NAMES)
    while missing:
        still = []
        for name in missing:
            try:
                await client.call(health(name), timeout=1.0)
            except Exception:
                still.append(name)
        missing = still
        if missing and time.monotonic() > deadline:
            raise RuntimeError(f"services not answering: {missing}")
        await asyncio.sleep(0.2)
    while True:  # the accounts service learns the catalog from the scraper's announcements
        catalog = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "bench"})
        if {STYLES[s] for s in styles} <= {c["id"] for c in catalog["collectors"]}:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"catalog incomplete: {catalog}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def platform_up(root: Path, concurrency: int | None, per_job: bool, styles: list[str],
                      prepared: list[tuple[str, str]]) -> AsyncIterator[tuple[Platform, Any, Observer]]:
    from shared.client import ApiClient

    platform = Platform(root, concurrency, per_job_browser=per_job, prepared=prepared)
    observer = Observer()
    client = None
    try:
        await platform.start()
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = await ApiClient.connect(platform.url, timeout=10.0)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        await wait_ready(client, styles)
        await observer.start(platform.url)
        yield platform, client, observer
    finally:
        await observer.close()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        platform.stop()


async def bench(args: argparse.Namespace, styles: list[str], work: Path) -> dict[str, Any]:
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    run = f"{int(time.time()) % 100000}"
    phases: list[dict[str, Any]] = []
    say = (lambda _: None) if args.json else (lambda line: print(line, flush=True))

    async def phases_on(root: Path, per_job: bool, names: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
        out = []
        warmup = "warmup" + ("-b" if per_job else "")
        planned = [*plan(warmup, styles, 1, run, None),
                   *(p for name, phase_styles in names
                     for p in plan(name, phase_styles, args.accounts_per_style, run, args.fault))]
        async with platform_up(root, args.concurrency, per_job, styles,
                               [(p.style, p.login) for p in planned]) as (platform, client, observer):
            warm = await run_phase(platform, client, observer, warmup, styles, 1,
                                   run, None, concurrency, args.phase_timeout)
            say(f"  warm-up: {warm['verified']}/{warm['accounts']} in {warm['wall_s']} s (not counted)")
            before = platform.cpu()
            for name, phase_styles in names:
                result = await run_phase(platform, client, observer, name, phase_styles, args.accounts_per_style,
                                         run, args.fault, concurrency, args.phase_timeout)
                say(f"  {name}: {result['verified']}/{result['accounts']} verified, "
                    f"{result['collections_per_s']} collections/s")
                out.append(result)
            if not per_job:
                extraction.update(await extraction_share(platform, before, sum(r["documents"] for r in out)))
        return out

    extraction: dict[str, Any] = {}

    say(f"pipeline: styles {', '.join(styles)}, {args.accounts_per_style} new accounts per style and phase")
    plan_phases = [(s, [s]) for s in styles] + ([("mix", styles)] if len(styles) > 1 else [])
    phases = await phases_on(work / "pipeline", False, plan_phases)
    baseline = None
    if args.baseline:
        say("baseline: the same platform, its scraper launching a Chromium per job")
        baseline = (await phases_on(work / "baseline", True, [("mix" if len(styles) > 1 else styles[0], styles)]))[0]
        baseline["phase"] = "baseline"
    mix = phases[-1]
    return {"phases": phases, "baseline": baseline, "extraction": extraction,
            "ratio": round(mix["collections_per_s"] / baseline["collections_per_s"], 2)
            if baseline and baseline["collections_per_s"] else None}


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


TARGETS = {"classic": 10.0, "twostep": 10.0, "legacy": 10.0, "spa": 5.0}


def print_report(result: dict[str, Any]) -> None:
    print(f"\ncommit {result['commit']}, {result['cpus']} CPUs, load average at start "
          f"{' '.join(str(x) for x in result['load_average_start'])}, at end "
          f"{' '.join(str(x) for x in result['load_average_end'])}; scraper concurrency {result['concurrency']}")
    rows = [*result["phases"], *([result["baseline"]] if result["baseline"] else [])]
    print(f"\n{'phase':9} {'accts':>5} {'ok':>4} {'docs':>5} {'wall s':>7} {'coll/s':>7} {'lat min':>7} "
          f"{'p50':>6} {'p95':>6} {'max':>6} {'CPU ms/acct':>11} {'MiB/ctx':>7} {'load':>14}")
    for r in rows:
        lat = r["latency_s"] or {"min": math.nan, "p50": math.nan, "p95": math.nan, "max": math.nan}
        load = r["load_average"]
        print(f"{r['phase']:9} {r['accounts']:5d} {r['verified']:4d} {r['documents']:5d} {r['wall_s']:7.1f} "
              f"{r['collections_per_s']:7.2f} {lat['min']:7.2f} {lat['p50']:6.2f} {lat['p95']:6.2f} "
              f"{lat['max']:6.2f} {r['cpu_ms_per_account_platform']:11.0f} "
              f"{r['memory']['per_context_mib']:7.1f} {load[0]:6.2f}→{load[3]:<6.2f}")
    print("\nlatency samples, s (create reply → last `invoice collected` event, every verified account, sorted):")
    for r in rows:
        print(f"{r['phase']:9} " + " ".join(f"{x:.2f}" for x in (r["latency_s"] or {}).get("samples", [])))
    names = list(rows[0]["cpu_ms_per_account"])
    print("\nCPU ms per account by process group (the platform's total above leaves the sandbox out):")
    print(f"{'phase':9} " + " ".join(f"{n:>15}" for n in names))
    for r in rows:
        print(f"{r['phase']:9} " + " ".join(f"{r['cpu_ms_per_account'][n]:15.1f}" for n in names))
    print("\nmemory (PSS of the scraper's driver + Chromium): idle → peak MiB, per concurrent job")
    for r in rows:
        m = r["memory"]
        print(f"{r['phase']:9} {m['idle_mib']:7.0f} → {m['peak_mib']:7.0f}  ({m['concurrency']} at once: "
              f"{m['per_context_mib']:.1f} MiB each)")
    ext = result.get("extraction") or {}
    if ext.get("share") is not None:
        print(f"\nextraction (the documents service, after the fact at a lower priority; all phases, caught up "
              f"{ext['caught_up_after_s']} s after the last): {ext['documents']} documents, "
              f"{ext['documents_cpu_s']} s of CPU = {ext['ms_per_document']} ms a document, "
              f"{100 * ext['share']:.1f} % of the platform's CPU")
    failures = [(r["phase"], f) for r in rows for f in r["failures"]]
    print(f"\nfailures (not in the rates): {len(failures)}")
    for phase, f in failures[:40]:
        print(f"  {phase}: {f['style']} {f['login']} {f['account_id']}: status {f['status']} "
              f"code {f['error_code']}; {f['events']}/{f['expected']} events, missing {f['missing_n']} "
              f"{f['missing'][:3]}, doubled {f['doubled'][:3]}, unexpected {f['unexpected'][:3]}")
    print("\ntargets:")
    for r in result["phases"]:
        if len(r["styles"]) == 1:
            target = TARGETS[r["styles"][0]]
            print(f"  {r['phase']}: {r['collections_per_s']:.2f} collections/s, target >= {target:g}: "
                  f"{'met' if r['collections_per_s'] >= target else 'NOT met'}")
    if result["ratio"] is not None:
        print(f"  {result['baseline']['styles']} vs a browser per job: {result['ratio']:.2f}x, target >= 5x: "
              f"{'met' if result['ratio'] >= 5 else 'NOT met'}")


def serve_scraper_per_job() -> None:
    """The scraper service, except that every job gets a Chromium of its own (the baseline)."""
    from collections.abc import AsyncIterator as _It

    from playwright.async_api import BrowserContext

    from services.scraper import browsers
    from services.scraper.app import build
    from shared.settings import ScraperSettings
    from shared.standalone import run_standalone

    original = browsers.BrowserPool.context

    @contextlib.asynccontextmanager
    async def context(self: browsers.BrowserPool, *args: Any, **kwargs: Any) -> _It[BrowserContext]:
        """The pool's own context(), on a Chromium launched for this job alone and closed after it."""
        await self.wait_ready()  # the driver (and the pool's own browser, idle) as in production
        assert self._playwright is not None
        browser = await browsers.launch_browser(self._playwright)
        own = copy.copy(self)
        own._browser = browser
        try:
            async with original(own, *args, **kwargs) as ctx:
                yield ctx
        finally:
            with contextlib.suppress(Exception):
                await browser.close()

    browsers.BrowserPool.context = context  # type: ignore[assignment,method-assign]
    # And every job opens it first, reading the portal through it: a browser per job, all the way.
    run_standalone(lambda: build(ScraperSettings(browserless_start=False)))


def main() -> None:
    if "--serve-scraper-per-job" in sys.argv:
        serve_scraper_per_job()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts-per-style", type=int, default=100)
    parser.add_argument("--styles", default="classic,twostep,spa,legacy")
    parser.add_argument("--concurrency", type=int, default=None,
                        help=f"the scraper's concurrent jobs (default: its production default, {DEFAULT_CONCURRENCY})")
    parser.add_argument("--baseline", action="store_true", help="then the mix with a browser per job")
    parser.add_argument("--fault", metavar="MODE", help="add one fault-MODE- account per style and phase")
    parser.add_argument("--phase-timeout", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="the whole run's limit")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the logs")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the tables")
    args = parser.parse_args()
    styles = [s for s in args.styles.split(",") if s]
    if set(styles) - set(STYLES):
        raise SystemExit(f"unknown style(s): {', '.join(sorted(set(styles) - set(STYLES)))}")
    from shared.settings import ScraperSettings

    assert ScraperSettings.model_fields["concurrency"].default == DEFAULT_CONCURRENCY
    from shared.logging import configure_logging

    configure_logging("WARNING", json=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill still stops the platform it started
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        result = asyncio.run(asyncio.wait_for(bench(args, styles, work), args.timeout))
    finally:
        if args.keep:
            print(f"data and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {"commit": commit(), "cpus": os.cpu_count(), "concurrency": args.concurrency or DEFAULT_CONCURRENCY,
              "accounts_per_style": args.accounts_per_style, "styles": styles,
              "load_average_start": load_start, "load_average_end": [round(x, 2) for x in os.getloadavg()],
              **result}
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
