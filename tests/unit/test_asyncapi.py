"""The AsyncAPI document covers the whole contract, with real payload schemas."""

from typing import Any
from urllib.parse import unquote

import pytest

from collectors.platform import build_runtimes_for_docs
from shared.asyncapi import build_document
from shared.contract import API, PUBLISHES
from shared.runtime import ServiceRuntime
from shared.subjects import SERVICES, Api, health


@pytest.fixture(scope="module")
def runtimes() -> list[ServiceRuntime]:
    return build_runtimes_for_docs()


@pytest.fixture(scope="module")
def document(runtimes: list[ServiceRuntime]) -> dict[str, Any]:
    return build_document(runtimes)


def _payload(doc: dict[str, Any], address: str) -> dict[str, Any]:
    for channel in doc["channels"].values():
        if channel["address"] == address:
            ref = unquote(next(iter(channel["messages"].values()))["$ref"].rsplit("/", 1)[-1])
            return dict(doc["components"]["messages"][ref]["payload"])
    raise AssertionError(f"{address} missing from the document")


def test_every_api_verb_is_documented_with_its_request_schema(document: dict[str, Any]) -> None:
    for subject, (request, _) in API.items():
        assert _payload(document, subject) == {"$ref": f"#/components/schemas/{request.__name__}"}
    create = document["components"]["schemas"]["CreateAccount"]
    assert {"tenant_id", "collector_id", "login", "password"} <= set(create["properties"])


def test_every_published_event_is_documented(document: dict[str, Any]) -> None:
    for published in PUBLISHES.values():
        for subject, model in published:
            assert _payload(document, subject) == {"$ref": f"#/components/schemas/{model.__name__}"}
    assert "ErrorReply" in document["components"]["schemas"]


def test_the_contract_table_lists_every_subject_the_services_answer(runtimes: list[ServiceRuntime]) -> None:
    subjects = {sub.subject.broker_address for rt in runtimes for sub in rt.broker.subscribers}
    served = {s for s in subjects if s.startswith("collectors.api.")}
    assert served - {health(s) for s in SERVICES} <= set(API), "add the new verb to shared/contract.API"
    assert Api.ACCOUNTS_REVEAL_CREDENTIALS in served
    # the tenant-checked download and the operators' list of every pharmacy's requests (issue 10)
    assert {Api.SCRAPER_INVOICE_DOWNLOAD, Api.REQUESTS_LIST_ALL} <= served


def test_the_download_and_the_tenant_less_listing_are_documented(document: dict[str, Any]) -> None:
    assert _payload(document, Api.SCRAPER_INVOICE_DOWNLOAD) == {"$ref": "#/components/schemas/DownloadInvoice"}
    assert _payload(document, Api.REQUESTS_LIST_ALL) == {"$ref": "#/components/schemas/ListAllRequests"}
    schemas = document["components"]["schemas"]
    assert {"tenant_id", "invoice_id", "offset", "cursor"} <= set(schemas["DownloadInvoice"]["properties"])
    assert "tenant_id" in schemas["ListRequests"]["required"]
