"""Which database a service and a test get: `make_mongo_client` (without connecting anywhere), and `pytest -m mongo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from shared.memory_mongo import InMemoryMongoClient
from shared.mongo import is_in_memory, make_mongo_client
from tests.storage import (
    MONGO_NEEDED,
    StorageKind,
    docker_engine_answers,
    mongo_run_refusal,
    open_test_mongo,
    reaches_the_database,
    selects_mongo_tests,
    storage_kind,
)

ROOT = Path(__file__).resolve().parents[2]


def test_no_url_gives_the_process_wide_in_memory_client() -> None:
    first = make_mongo_client(None)
    assert isinstance(first, InMemoryMongoClient)
    assert is_in_memory(first)
    assert make_mongo_client("") is first
    assert make_mongo_client(None) is first


async def test_services_share_the_stand_in_each_with_its_own_database() -> None:
    await make_mongo_client(None)["selection_a"]["c"].insert_one({"_id": "from-a"})
    other = make_mongo_client(None)
    assert await other["selection_a"]["c"].find_one({"_id": "from-a"}) == {"_id": "from-a"}
    assert await other["selection_b"]["c"].find_one({"_id": "from-a"}) is None
    await other.close()  # the stand-in keeps its data and stays usable
    assert await make_mongo_client(None)["selection_a"]["c"].count_documents({}) == 1
    await other.drop_database("selection_a")


async def test_url_gives_a_lazy_real_client_that_does_not_connect() -> None:
    started = time.perf_counter()
    client = make_mongo_client("mongodb://127.0.0.1:1")
    try:
        assert time.perf_counter() - started < 1.0
        assert isinstance(client, AsyncMongoClient)
        assert not is_in_memory(client)
        assert client.codec_options.tz_aware
        assert client.codec_options.tzinfo is not None
        assert client.codec_options.tzinfo.utcoffset(None) == timedelta(0)
    finally:
        await client.close()


async def test_test_storage_gives_fresh_stand_ins_not_the_singleton() -> None:
    if storage_kind() != "memory":
        return  # a real MongoDB is configured: nothing in memory to compare
    async with open_test_mongo() as (first, kind), open_test_mongo() as (second, _):
        assert kind == "memory"
        assert first is not second
        assert first is not make_mongo_client(None)
        await first["db"]["c"].insert_one({"_id": 1})
        assert await second["db"]["c"].find_one({"_id": 1}) is None


def test_docker_probe_is_fast_and_cached() -> None:
    docker_engine_answers.cache_clear()
    started = time.perf_counter()
    docker_engine_answers()
    assert time.perf_counter() - started < 3.0
    started = time.perf_counter()
    docker_engine_answers()
    assert time.perf_counter() - started < 0.01


# --- `pytest -m mongo`: which tests, and never on the stand-in --------------------------------------


def test_the_mongo_tests_are_the_integration_tests_that_reach_the_database() -> None:
    contract = "tests/integration/test_storage_contract.py::test_ping"
    assert reaches_the_database(f"{contract}[default]", ["mongo_client", "request"], {"mongo_client": "default"})
    assert not reaches_the_database(f"{contract}[durable]", ["mongo_client"], {"mongo_client": "durable"})
    assert reaches_the_database("tests/integration/test_scheduler.py::test_x", ["harness", "mongodb_url"], {})
    assert not reaches_the_database("tests/integration/test_accounts_fuzz.py::test_x", ["platform"], {})
    assert not reaches_the_database("tests/unit/test_x.py::test_x", ["mongo_client"], {})  # a unit test
    assert not reaches_the_database("tests/e2e/test_x.py::test_x", ["mongodb_url"], {})


@pytest.mark.parametrize(("markexpr", "selects"), [
    ("mongo", True), ("mongo and not slow", True), ("mongo or slow", True), (" mongo ", True),
    ("", False), ("not chaos", False), ("not mongo", False), ("slow", False), ("mongo and slow", False),
])
def test_which_mark_expressions_ask_for_the_mongo_tests(markexpr: str, selects: bool) -> None:
    assert selects_mongo_tests(markexpr) is selects


def test_the_mongo_run_refuses_the_stand_in_and_only_asks_when_it_matters() -> None:
    def never() -> StorageKind:
        raise AssertionError("the storage kind is probed only for a mongo run")

    assert mongo_run_refusal("not chaos", never) is None
    assert mongo_run_refusal("", never) is None
    assert mongo_run_refusal("mongo", lambda: "memory") == MONGO_NEEDED
    assert mongo_run_refusal("mongo", lambda: "external") is None
    assert mongo_run_refusal("mongo", lambda: "testcontainers") is None


def _collect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args,
         "tests/integration/test_storage_contract.py", "tests/integration/test_accounts_fuzz.py",
         "tests/unit/test_crypto.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_pytest_m_mongo_collects_the_contract_on_the_given_server_and_refuses_without_one() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "PYTEST_ADDOPTS"}}
    # A URL no server answers: collection never connects (the client is lazy).
    done = _collect({**env, "MONGODB_URL": "mongodb://127.0.0.1:1/?replicaSet=rs0"}, "-m", "mongo")
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/integration/test_storage_contract.py::") for i in ids), ids
    assert all("[default" in i for i in ids) and "tests/integration/test_storage_contract.py::test_ping[default]" in ids
    if docker_engine_answers():
        return  # testcontainers would serve the run: nothing to refuse here
    done = _collect(env, "-m", "mongo")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert MONGO_NEEDED in done.stderr
