"""The platform on a 3-node NATS cluster, reached through a `NATS_URL` naming every node."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.accounts.app import build
from services.accounts.crypto import Keyring
from shared.client import ApiClient, servers
from shared.events import CollectorAnnounced
from shared.natsserver import start_cluster, wait_jetstream_ready
from shared.settings import AccountsSettings
from shared.subjects import STREAMS, Api, Events
from tests.integration.helpers import eventually


def test_nats_url_may_name_a_whole_cluster() -> None:
    assert servers(" nats://a:4222, nats://b:4222 ,") == ["nats://a:4222", "nats://b:4222"]


async def test_accounts_run_on_a_three_node_cluster(tmp_path: Path, mongodb_url: str | None, db_prefix: str,
                                                   keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    # As deploy/k8s/configmap.yaml sets it: a host's loss is survived by replication.
    monkeypatch.setenv("COLLECTORS_STREAM_REPLICAS", "3")
    nodes = start_cluster(tmp_path, size=3)
    url = ",".join(node.url for node in nodes)
    try:
        await wait_jetstream_ready(url, timeout=30)
        rt = build(AccountsSettings(nats_url=url, mongodb_url=mongodb_url, db_prefix=db_prefix), keyring=keyring)
        await rt.start()
        client = await ApiClient.connect(url)
        try:
            for config in STREAMS.values():
                info = await client.nc.jetstream().stream_info(str(config.name))
                assert info.config.num_replicas == 3, (config.name, info.config.num_replicas)
            announced = CollectorAnnounced(collector_id="sandbox-classic", name="S", supplier="S",
                                           login_kind="identifier", portal_url="http://127.0.0.1:1/",
                                           frequency_hours=24, max_sessions=2, version="1")
            await client.nc.jetstream().publish(Events.COLLECTOR_ANNOUNCED.base, announced.model_dump_json().encode())

            async def catalog() -> bool:
                return bool((await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "t"}))["collectors"])

            await eventually(catalog, what="the catalog through the cluster")
            created = await client.call(Api.ACCOUNTS_CREATE, {"tenant_id": "t", "collector_id": "sandbox-classic",
                                                              "login": "officine", "password": "demo"})
            assert created["status"] == "pending"
        finally:
            await client.close()
            await rt.stop()
    finally:
        for node in nodes:
            node.stop()
