"""The AsyncAPI document covers the whole contract, with real payload schemas.

It is checked against what the services do, not against the table it is generated from: the
subscribers their composition roots register on FastStream, and the events their code publishes
(every ``outbox_entry`` and ``publish_event`` call in ``services/<name>/``). And the AsyncAPI
project's own parser (``@asyncapi/parser``, installed by ``npm ci``) must find no error in it.
"""

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import shared.asyncapi
from collectors.platform import build_runtimes_for_docs
from shared.asyncapi import build_document
from shared.contract import API, PUBLISHES
from shared.runtime import ServiceRuntime
from shared.subjects import COLLECT_JOBS_PATTERN, SERVICES, Api, Events, EventSubject, health

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tools" / "asyncapi-validate.mjs"
PARSER = ROOT / "node_modules" / "@asyncapi" / "parser"


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


# -- against what the services really do ---------------------------------------------------------


def _operations(doc: dict[str, Any], action: str) -> set[tuple[str, str]]:
    """(service, subject) of every operation of the document with this action ("send", "receive")."""
    found = set()
    for operation in doc["operations"].values():
        if operation["action"] == action:
            channel = doc["channels"][unquote(operation["channel"]["$ref"].removeprefix("#/channels/"))]
            found.add((channel["x-service"], channel["address"]))
    return found


def _subject_of(node: ast.expr, where: str) -> str:
    """The subject pattern a publish call's subject argument stands for."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "collect_job":
        return COLLECT_JOBS_PATTERN
    target = node.func if isinstance(node, ast.Call) else node
    if (isinstance(target, ast.Attribute) and target.attr in {"for_tenant", "base"}
            and isinstance(target.value, ast.Attribute) and isinstance(target.value.value, ast.Name)
            and target.value.value.id == "Events"):
        subject = getattr(Events, target.value.attr)
        assert isinstance(subject, EventSubject)
        return subject.pattern
    raise AssertionError(f"{where}: cannot tell which subject `{ast.unparse(node)}` is; teach this test")


def published_by_code(service: str) -> set[str]:
    """Subjects that ``services/<service>/`` publishes on, read from its code: the subject argument
    of every ``outbox_entry(subject, event)`` and ``publish_event(broker, subject, event)``. Any
    other publish call there fails the test, which could not see what it sends."""
    found = set()
    for path in sorted((ROOT / "services" / service).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name == "outbox_entry":
                found.add(_subject_of(node.args[0], where))
            elif name == "publish_event":
                found.add(_subject_of(node.args[1], where))
            elif name in {"publish", "publish_each", "publish_batch"}:
                raise AssertionError(f"{where}: a publish this test cannot read; go through the outbox "
                                     "or publish_event, or teach this test")
    return found


def _registered_subscribers(runtimes: list[ServiceRuntime]) -> set[tuple[str, str]]:
    return {(rt.name, sub.subject.broker_address) for rt in runtimes for sub in rt.broker.subscribers}


def test_the_document_receives_exactly_what_the_services_subscribe_to(document: dict[str, Any]) -> None:
    registered = _registered_subscribers(build_runtimes_for_docs())  # built apart from the document's
    assert registered, "no subscriber registered: the comparison would prove nothing"
    assert _operations(document, "receive") == registered


def test_the_document_sends_exactly_what_the_services_code_publishes(document: dict[str, Any]) -> None:
    by_code = {(service, subject) for service in SERVICES for subject in published_by_code(service)}
    assert len(by_code) >= 18, by_code  # the scan reads the code's publish calls (18 subjects today)
    documented = _operations(document, "send")
    assert documented - by_code == set(), "documented but published by no code: drop it from shared/contract"
    assert by_code - documented == set(), "published but missing from the contract: add it to shared/contract"


def test_an_event_dropped_from_the_contract_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                       runtimes: list[ServiceRuntime]) -> None:
    dropped = PUBLISHES["scraper"][-1]
    monkeypatch.setattr(shared.asyncapi, "PUBLISHES",
                        {**PUBLISHES, "scraper": [p for p in PUBLISHES["scraper"] if p != dropped]})
    with pytest.raises(AssertionError, match="missing from the contract"):
        test_the_document_sends_exactly_what_the_services_code_publishes(build_document(runtimes))


def test_the_document_leaves_the_services_brokers_as_built(runtimes: list[ServiceRuntime],
                                                            document: dict[str, Any]) -> None:
    assert [list(rt.broker.publishers) for rt in runtimes] == [[] for _ in runtimes]


# -- the AsyncAPI project's own parser -----------------------------------------------------------


@pytest.mark.skipif(not PARSER.is_dir(), reason="@asyncapi/parser is not installed: run `npm ci` (install.sh does)")
def test_the_asyncapi_parser_finds_no_error(document: dict[str, Any], tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node_modules is there but node is not on PATH"
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    done = subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "SCARF_ANALYTICS": "false"})
    assert done.stdout, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["errors"] == [], result["errors"][:5]
    assert result["parsed"] and done.returncode == 0, done.stderr


def test_an_invoice_s_site_is_documented_in_the_event_and_the_views(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    collected = _payload(document, Events.INVOICE_COLLECTED.pattern)
    site = schemas[collected["$ref"].rsplit("/", 1)[-1]]["properties"]["site"]
    # Optional and nullable (producers and consumers from before sites still agree), and explained.
    assert "site" not in schemas["InvoiceCollected"].get("required", [])
    assert {"type": "null"} in site["anyOf"] and "site or customer account" in site["description"]
    assert "site" in schemas["InvoiceView"]["properties"]


def test_the_documents_service_s_event_and_api_are_documented(document: dict[str, Any]) -> None:
    """Issue 14: `invoice data extracted` carries the e-invoice model; the export takes `from` and `to`."""
    schemas = document["components"]["schemas"]
    extracted = _payload(document, Events.INVOICE_DATA_EXTRACTED.pattern)
    assert extracted == {"$ref": "#/components/schemas/InvoiceDataExtracted"}
    props = schemas["InvoiceDataExtracted"]["properties"]
    assert {"tenant_id", "invoice_id", "source", "data_warnings", "invoice"} <= set(props)
    assert {"$ref": "#/components/schemas/EInvoice"} in props["invoice"]["anyOf"]
    assert {"vat_breakdown", "lines", "totals", "seller"} <= set(schemas["EInvoice"]["properties"])
    assert _payload(document, Api.DOCUMENTS_EXPORT) == {"$ref": "#/components/schemas/ExportInvoiceData"}
    assert {"from", "to", "after"} <= set(schemas["ExportInvoiceData"]["properties"])
    assert ("documents", Events.INVOICE_COLLECTED.pattern) in _operations(document, "receive")
