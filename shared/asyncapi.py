"""The AsyncAPI document of the whole platform, generated from the services' code (§3)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

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


def build_document(runtimes: list[ServiceRuntime], version: str = "1") -> dict[str, Any]:
    merged: dict[str, Any] = {"asyncapi": "3.0.0", "info": {"title": "collectors", "version": version},
                              "channels": {}, "operations": {},
                              "components": {"messages": {}, "schemas": {}}}
    schemas = merged["components"]["schemas"]
    for rt in runtimes:
        for subject, model in PUBLISHES.get(rt.name, []):
            # Declared for the document only: services publish through the outbox or publish_event.
            rt.broker.publisher(subject, schema=model, title=f"{rt.name}:{subject}",
                                description=model.__doc__)
        doc = json.loads(AsyncAPI(rt.broker, title=f"collectors {rt.name}").to_specification().to_json())
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
            channel["x-service"] = rt.name
            merged["channels"][key] = channel
        merged["operations"].update(doc.get("operations", {}))
        merged["components"]["messages"].update(doc["components"].get("messages", {}))
        for name, schema in doc["components"].get("schemas", {}).items():
            schemas.setdefault(name, schema)
    schemas.pop("EmptyPayload", None)
    _schema(ErrorReply, schemas)
    return merged
