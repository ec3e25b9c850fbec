"""The live feed of ``collectors up``: one line per thing that happens on the platform."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.subjects import PREFIX

Say = Callable[[str], None]


def describe(subject: str, evt: dict[str, Any]) -> str | None:
    """A human line for an event, or None for the ones too chatty to show one by one."""
    parts = subject.split(".")
    if len(parts) < 4:
        return None
    service, name = parts[2], parts[3]
    who = f"{evt.get('tenant_id', '')}/{str(evt.get('account_id', ''))[:8]}"
    match (service, name):
        case ("accounts", "created"):
            return f"account {who} created on {evt.get('collector_id')} ({evt.get('login')})"
        case ("accounts", "credentials_updated"):
            return f"account {who}: credentials updated"
        case ("accounts", "retry_requested"):
            return f"account {who}: retry requested"
        case ("accounts", "deleted"):
            return f"account {who} deleted"
        case ("accounts", "status_changed"):
            code = f" ({evt['error_code']})" if evt.get("error_code") else ""
            return f"account {who}: {evt.get('previous_status')} → [bold]{evt.get('status')}[/]{code}"
        case ("scraper", "collection_started"):
            return f"collecting {who} on {evt.get('collector_id')}"
        case ("scraper", "collection_succeeded"):
            return (f"[green]collected[/] {who}: {evt.get('new_invoices')} new, "
                    f"{evt.get('total_invoices')} in all")
        case ("scraper", "collection_failed"):
            return f"[red]collection failed[/] {who}: {evt.get('error_code')} — {evt.get('detail')}"
        case ("scraper", "collector_announced"):
            return f"collector available: {evt.get('collector_id')} ({evt.get('name')})"
        case ("notifier", "notification_sent"):
            return f"notification to {evt.get('tenant_id')}: {evt.get('subject', evt.get('kind'))}"
        case ("requests", _):
            return f"collector request {evt.get('request_id', '')}: {name.replace('_', ' ')}"
    return None


async def follow(nc: Client, say: Say) -> Subscription:
    async def on_event(msg: Msg) -> None:
        try:
            line = describe(msg.subject, json.loads(msg.data))
        except ValueError:
            return
        if line:
            say(line)

    return await nc.subscribe(f"{PREFIX}.evt.>", cb=on_event)
