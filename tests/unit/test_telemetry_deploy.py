"""deploy/prometheus and deploy/grafana checked offline: the alert rules by promtool when one is on the
PATH (Debian's `prometheus` package has it; PROMTOOL=path also works), every PromQL expression by a
parser, and every metric they name one the services export (read from a live registry)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics_core import Metric

from services.notifier.metrics import record_delivery
from services.scheduler.metrics import record_dispatch
from services.scraper import metrics as scraper_metrics
from services.scraper.runner import RunReport
from shared import telemetry
from shared.events import CollectJob, utcnow
from shared.subjects import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "collectors.json"
NAME = re.compile(r"\b((?:collectors|faststream)_[a-z_]+)\b")
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$collector": ".*"}


def _exported() -> set[str]:
    """The series names a process exports once every recording path has run once."""
    reg = telemetry.configure_metrics(True)
    try:
        telemetry.broker_middlewares("scraper")  # FastStream's families
        job = CollectJob(job_id="j", tenant_id="t", account_id="a", collector_id="c", credential_version=1,
                         planned_at=utcnow() - timedelta(seconds=5), reason="scheduled", attempt=0)

        class NoLedger:
            invoices = None

        asyncio.run(scraper_metrics.record_run(NoLedger(), job, RunReport(), utcnow()))  # type: ignore[arg-type]
        record_dispatch(1, [job], utcnow())
        record_delivery("email", "delivered", 1)

        async def info(stream: str, durable: str) -> Any:
            return SimpleNamespace(num_pending=1, num_ack_pending=0, num_redelivered=0)

        asyncio.run(telemetry.read_consumer_lag("scraper", [("S", "d")], info))

        class Letters:
            async def count_documents(self, _: dict[str, Any]) -> int:
                raise asyncio.CancelledError  # one pass of the loop is enough

        telemetry.gauge("collectors_dead_letters", "", ("service",))  # as watch_dead_letters makes it
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(scraper_metrics.watch_dead_letters(Letters(), 1.0))
        names: set[str] = set()
        family: Metric
        for family in reg.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ())
            names.update(family.name + s for s in suffixes)
        return names
    finally:
        telemetry.configure_metrics(None)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        exprs.append(var["definition"].replace("label_values(", "").split(",")[0])
    return exprs


def _concrete(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def test_alert_rules_are_well_formed_and_parse() -> None:
    rules = _rules()
    assert {"CollectorSuccessRateFalling", "ConsumerLagGrowing", "DeadLettersKept"} <= {r["alert"] for r in rules}
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule.get("alert")
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["annotations"]["summary"]
        promql_parser.parse(rule["expr"])  # raises on a syntax error


def test_promtool_accepts_the_rules() -> None:
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        pytest.skip("no promtool (apt-get download prometheus; dpkg -x; PROMTOOL=.../usr/bin/promtool)")
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_queries_parse_and_cover_the_fleet_and_the_pipeline() -> None:
    exprs = _dashboard_exprs()
    for expr in exprs:
        promql_parser.parse(_concrete(expr))
    text = " ".join(exprs)
    for needed in ("collectors_scraper_runs_total", "collectors_scraper_run_duration_seconds_bucket",
                   "faststream_received_processed_messages_total", "collectors_consumer_pending_messages",
                   "collectors_scheduler_due_total", "collectors_scheduler_dispatched_total",
                   "collectors_scheduler_late_total", "collectors_notifier_deliveries_total"):
        assert needed in text, needed
    assert "histogram_quantile(0.5" in text and "histogram_quantile(0.95" in text


def test_every_metric_named_in_rules_and_dashboard_is_exported() -> None:
    exported = _exported()
    named = {m for expr in [r["expr"] for r in _rules()] + _dashboard_exprs() for m in NAME.findall(expr)}
    assert named and named <= exported, sorted(named - exported)


def test_prometheus_scrapes_every_service_and_loads_the_rules() -> None:
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert conf["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert set(sd["names"]) == set(SERVICES) and sd["port"] == 8080
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]
    assert compose["services"]["grafana"]["volumes"][1].startswith("./grafana/dashboards:")
