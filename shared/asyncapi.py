"""The AsyncAPI document of the whole platform, generated from the services' code (§3)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from shared.api import ErrorReply
from shared.contract import API, EVENT_MODELS, PUBLISHES
from shared.runtime import ServiceRuntime

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _specification(broker: NatsBroker, title: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(AsyncAPI(broker, title=title).to_specification().to_json())
    return doc


def _documented_publishers(service: str) -> NatsBroker:
    """A broker of its own holding what ``service`` publishes, for the document only: the services
    publish through the outbox or ``publish_event``, and the runtime's broker is left as built."""
    broker = NatsBroker()
    for subject, model in PUBLISHES.get(service, []):
        broker.publisher(subject, schema=model, title=f"{service}:{subject}", description=model.__doc__)
    return broker


def build_document(runtimes: list[ServiceRuntime], version: str = "1") -> dict[str, Any]:
    merged: dict[str, Any] = {"asyncapi": "3.0.0", "info": {"title": "collectors", "version": version},
                              "servers": {}, "channels": {}, "operations": {},
                              "components": {"messages": {}, "schemas": {}}}
    schemas = merged["components"]["schemas"]
    docs = [(rt.name, _specification(rt.broker, f"collectors {rt.name}")) for rt in runtimes]
    docs += [(rt.name, _specification(_documented_publishers(rt.name), f"collectors {rt.name}")) for rt in runtimes]
    for name, doc in docs:
        # Every channel names the server it is on (FastStream's "development": NATS_URL's default);
        # the document must hold it, or each channel's reference dangles.
        for server, description in doc.get("servers", {}).items():
            merged["servers"].setdefault(server, description)
        for key, channel in doc.get("channels", {}).items():
            address = channel.get("address", key)
            payload: type[BaseModel] | None = API.get(address, (None, None))[0] or EVENT_MODELS.get(address)
            for message in channel.get("messages", {}).values():
                ref = unquote(message.get("$ref", "").rsplit("/", 1)[-1])
                target = doc["components"]["messages"].get(ref)
                if target is not None and payload is not None and "SubscribeMessage" in ref:
                    target["payload"] = _schema(payload, schemas)
            reply = API.get(address, (None, None))[1]
            if reply is not None:
                channel["description"] = f"Request/reply: answers {reply.__name__} or an ErrorReply."
                _schema(reply, schemas)
            channel["x-service"] = name
            merged["channels"][key] = channel
        merged["operations"].update(doc.get("operations", {}))
        merged["components"]["messages"].update(doc["components"].get("messages", {}))
        for schema_name, schema in doc["components"].get("schemas", {}).items():
            schemas.setdefault(schema_name, schema)
    _schema(ErrorReply, schemas)
    return merged
