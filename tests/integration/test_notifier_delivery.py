"""Delivery on every channel, for real: email through a local SMTP server (aiosmtpd), signed calls to a
local webhook endpoint (aiohttp), the in-app event on JetStream; retries, failures and the history."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.notifier import signing
from shared.broker import publish_event
from shared.errors import CollectionErrorCode
from shared.events import AccountStatus, AccountStatusChanged
from shared.natsserver import free_port
from shared.subjects import Api, Events
from tests.integration.helpers import eventually
from tests.notifier_harness import Platform, SmtpInbox, running_platform, smtp_inbox, webhook_receiver

TENANT = "pharma-1"


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Platform]:
    async with smtp_inbox() as inbox, webhook_receiver() as hook, \
            running_platform(nats_url, mongodb_url, db_prefix, inbox=inbox, hook=hook) as p:
        yield p


def _alert(tenant: str = TENANT, account: str = "acc1", login: str = "officine-42") -> AccountStatusChanged:
    return AccountStatusChanged(tenant_id=tenant, account_id=account, collector_id="ocp-classic",
                                collector_name="OCP", login=login, status=AccountStatus.ACTION_REQUIRED,
                                previous_status=AccountStatus.COLLECTING,
                                error_code=CollectionErrorCode.LOGIN_FAILED)


async def _prefs(p: Platform, tenant: str = TENANT, **changes: Any) -> dict[str, Any]:
    assert p.hook is not None
    return await p.call(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": tenant, "emails": ["compta@pharma.fr", "titulaire@pharma.fr"], "webhook_url": p.hook.url,
        **changes})


async def _publish(p: Platform, evt: AccountStatusChanged) -> None:
    await publish_event(p.broker, Events.ACCOUNT_STATUS_CHANGED.for_tenant(evt.tenant_id), evt)
    await p.consumed("accounts", "notifier-status")


def _by_channel(notes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["channel"]: n for n in notes}


async def test_an_alert_reaches_every_channel_and_the_webhook_call_is_signed(platform: Platform) -> None:
    assert platform.inbox and platform.hook
    prefs = await _prefs(platform)
    secret = prefs["webhook_secret"]
    await _publish(platform, _alert())
    notes = _by_channel(await platform.settled(TENANT, 3))
    assert set(notes) == {"in_app", "email", "webhook"}
    assert all(n["status"] == "delivered" and n["delivered"] and n["attempts"] == 1 for n in notes.values())
    assert notes["email"]["recipient"] == "compta@pharma.fr, titulaire@pharma.fr"
    assert notes["webhook"]["recipient"] == platform.hook.url

    # the email: one message to both addresses, in French, saying what to do
    [mail] = platform.inbox.mails
    assert sorted(mail.recipients) == ["compta@pharma.fr", "titulaire@pharma.fr"]
    assert mail.subject == "Action requise – OCP, officine-42"
    assert "Mettez à jour votre mot de passe dans Collecteurs → Modifier" in mail.text
    assert "« officine-42 »" in mail.text
    assert mail.message["Message-ID"] == f"<{notes['email']['id']}@collectors.invalid>"
    assert mail.message["Content-Language"] == "fr"

    # the webhook: JSON, signed over "<t>.<body>" with the tenant's secret, recent timestamp
    [call] = platform.hook.calls
    assert call.path == "/hooks/collectors"
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.headers["X-Collectors-Event"] == "action_required"
    assert call.headers["X-Collectors-Delivery"] == notes["webhook"]["id"]
    header = call.headers["X-Collectors-Signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + call.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 60
    assert signing.verify(secret, call.body, header, now=time.time())
    assert not signing.verify(secret, call.body + b" ", header, now=time.time())
    assert not signing.verify(secret, call.body, header, now=time.time() + 3600)  # a replay, an hour later
    payload = json.loads(call.body)
    assert payload["type"] == "action_required" and payload["tenant_id"] == TENANT
    assert payload["account_id"] == "acc1" and payload["collector_id"] == "ocp-classic"
    assert payload["error_code"] == "login_failed" and payload["language"] == "fr"
    assert payload["subject"] == mail.subject
    assert payload["id"] == notes["webhook"]["id"]

    # the in-app event
    [sent] = await platform.messages("notifier", Events.NOTIFICATION_SENT.for_tenant(TENANT))
    assert sent["notification_id"] == notes["in_app"]["id"] and sent["subject"] == mail.subject


async def test_redelivered_events_send_nothing_twice_on_any_channel(platform: Platform) -> None:
    assert platform.inbox and platform.hook
    await _prefs(platform)
    evt = _alert()
    subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant(TENANT)
    for copy in range(3):  # stored three times (past the dedup window, a restored outbox...)
        await platform.js.publish(subject, evt.model_dump_json().encode(), headers={"Nats-Msg-Id": f"copy-{copy}"})
    await platform.consumed("accounts", "notifier-status")
    await platform.settled(TENANT, 3)
    assert len(platform.inbox.mails) == 1
    assert len(platform.hook.calls) == 1
    assert len(await platform.messages("notifier", Events.NOTIFICATION_SENT.for_tenant(TENANT))) == 1


async def test_a_webhook_failing_several_times_is_retried_with_backoff_then_delivered(platform: Platform) -> None:
    assert platform.hook
    platform.hook.fail_first(4, status=502)  # a whole round of 3 attempts, then one more
    secret = (await _prefs(platform, emails=[]))["webhook_secret"]
    await _publish(platform, _alert())
    notes = _by_channel(await platform.settled(TENANT, 2))
    hook_note = notes["webhook"]
    assert hook_note["status"] == "delivered" and hook_note["attempts"] == 5
    assert hook_note["error"] is None
    assert [c.status for c in platform.hook.calls] == [502, 502, 502, 502, 200]
    # every attempt is the same notification, each signed afresh
    assert len({c.headers["X-Collectors-Delivery"] for c in platform.hook.calls}) == 1
    assert len({c.body for c in platform.hook.calls}) == 1
    for c in platform.hook.calls:
        assert signing.verify(secret, c.body, c.headers["X-Collectors-Signature"], now=time.time())
    # backoff: the attempts were spread out, not fired at once
    gaps = [b.received_at - a.received_at for a, b in zip(platform.hook.calls, platform.hook.calls[1:], strict=False)]
    assert all(g > 0.005 for g in gaps)
    assert notes["in_app"]["status"] == "delivered"


async def test_a_webhook_that_keeps_failing_blocks_no_other_channel_and_its_failure_is_recorded(
        platform: Platform) -> None:
    assert platform.inbox and platform.hook
    platform.hook.always(503)
    await _prefs(platform)
    await _publish(platform, _alert())
    notes = _by_channel(await platform.settled(TENANT, 3))
    assert notes["email"]["status"] == "delivered" and len(platform.inbox.mails) == 1
    assert notes["in_app"]["status"] == "delivered"
    failed = notes["webhook"]
    assert failed["status"] == "failed" and failed["delivered"] is False
    assert failed["error"] == "WebhookRejected: HTTP 503 from the webhook"
    assert failed["attempts"] == 9 and len(platform.hook.calls) == 9  # 3 rounds of 3 attempts
    assert failed["next_attempt_at"] is None

    # a later alert for another account still goes out on the healthy channels at once
    await _publish(platform, _alert(account="acc2", login="officine-43"))
    notes = await platform.settled(TENANT, 6)
    assert len(platform.inbox.mails) == 2
    assert sorted(n["status"] for n in notes if n["channel"] != "webhook") == ["delivered"] * 4


async def test_smtp_down_then_back_loses_no_email(nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    port = free_port()  # the SMTP server is down: nothing listens there yet
    async with webhook_receiver() as hook:
        async with running_platform(nats_url, mongodb_url, db_prefix, inbox=SmtpInbox(port=port), hook=hook,
                                    delivery_rounds=50, delivery_round_delay_s=0.2,
                                    delivery_round_delay_max_s=0.2) as p:
            await p.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": TENANT, "emails": ["compta@pharma.fr"]})
            await _publish(p, _alert())

            async def retried() -> dict[str, Any] | None:
                notes = _by_channel(await p.history(TENANT))
                email = notes.get("email")
                return email if email and email["attempts"] >= 3 and email["status"] == "pending" else None

            pending = await eventually(retried, what="a failed SMTP round")
            assert pending["error"] and pending["next_attempt_at"]
            assert _by_channel(await p.history(TENANT))["in_app"]["status"] == "delivered"

            async with smtp_inbox(port) as inbox:  # the SMTP server comes back
                notes = _by_channel(await p.settled(TENANT, 2))
                assert notes["email"]["status"] == "delivered" and notes["email"]["error"] is None
                [mail] = inbox.mails
                assert mail.subject == "Action requise – OCP, officine-42"


async def test_email_without_an_smtp_server_configured_fails_at_once_with_a_clear_error(
        nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    async with running_platform(nats_url, mongodb_url, db_prefix) as p:  # no smtp_host
        await p.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": TENANT, "emails": ["compta@pharma.fr"]})
        await _publish(p, _alert())
        notes = _by_channel(await p.settled(TENANT, 2))
        assert notes["email"]["status"] == "failed" and notes["email"]["attempts"] == 1
        assert notes["email"]["error"] == ("PermanentDeliveryError: no SMTP server configured "
                                           "(COLLECTORS_SMTP_HOST)")
        assert notes["in_app"]["status"] == "delivered"


async def test_rotating_the_secret_signs_the_next_calls_with_the_new_one(platform: Platform) -> None:
    assert platform.hook
    old = (await _prefs(platform, emails=[]))["webhook_secret"]
    new = (await platform.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": TENANT, "rotate_webhook_secret": True}))[
        "webhook_secret"]
    assert new != old
    await _publish(platform, _alert())
    await platform.settled(TENANT, 2)
    [call] = platform.hook.calls
    assert signing.verify(new, call.body, call.headers["X-Collectors-Signature"], now=time.time())
    assert not signing.verify(old, call.body, call.headers["X-Collectors-Signature"], now=time.time())


async def test_each_tenant_signs_with_its_own_secret_and_reads_its_own_language(platform: Platform) -> None:
    assert platform.hook and platform.inbox
    s1 = (await _prefs(platform, "ph-fr", emails=["fr@pharma.fr"]))["webhook_secret"]
    s2 = (await _prefs(platform, "ph-en", emails=["en@pharma.fr"], language="en"))["webhook_secret"]
    assert s1 != s2
    await _publish(platform, _alert("ph-fr"))
    await _publish(platform, _alert("ph-en"))
    await platform.settled("ph-fr", 3)
    await platform.settled("ph-en", 3)
    by_tenant = {json.loads(c.body)["tenant_id"]: c for c in platform.hook.calls}
    assert signing.verify(s1, by_tenant["ph-fr"].body, by_tenant["ph-fr"].headers["X-Collectors-Signature"],
                          now=time.time())
    assert not signing.verify(s2, by_tenant["ph-fr"].body, by_tenant["ph-fr"].headers["X-Collectors-Signature"],
                              now=time.time())
    [en] = platform.inbox.to("en@pharma.fr")
    assert en.subject == "Action required – OCP, officine-42"
    assert "Update your password in Collectors → Edit" in en.text
    assert en.message["Content-Language"] == "en"
    [fr] = platform.inbox.to("fr@pharma.fr")
    assert fr.subject == "Action requise – OCP, officine-42"
