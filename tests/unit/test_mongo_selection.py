"""``make_mongo_client``: which client a service gets, without connecting anywhere."""

from __future__ import annotations

import time
from datetime import timedelta

from pymongo import AsyncMongoClient

from shared.memory_mongo import InMemoryMongoClient
from shared.mongo import is_in_memory, make_mongo_client
from tests.storage import docker_engine_answers, open_test_mongo, storage_kind


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
