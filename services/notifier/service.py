"""Use cases of the notifier: preferences, history, and the rules that turn events into notifications (§8).

Handlers only record notifications (one per wanted channel); the :class:`Dispatcher` delivers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.notifier import messages, rules
from services.notifier.channels import Channel
from services.notifier.delivery import Dispatcher
from services.notifier.preferences import DEFAULT_PREFS, to_prefs, validate_emails, validate_webhook_url
from services.notifier.repository import PENDING, NotifierRepository
from services.notifier.rules import AccountState, Kind, Notice
from services.notifier.signing import new_secret
from shared import api
from shared.errors import ValidationFailed
from shared.events import AccountStatusChanged, IncidentDeclared, IncidentResolved, RequestStatusChanged, new_id
from shared.logging import get_logger

log = get_logger("collectors.notifier")

HISTORY_LIMIT = 200
SWEEP_BATCH = 500
# Notification fields copied from a notice's parameters, for the history, the in-app event and webhooks.
CONTEXT_FIELDS = ("account_id", "collector_id", "request_id", "incident_id")


def to_view(doc: dict[str, Any]) -> api.NotificationView:
    return api.NotificationView(
        id=doc["_id"], tenant_id=doc["tenant_id"], kind=doc["kind"], channel=doc["channel"],
        subject=doc["subject"], body=doc["body"], created_at=doc["created_at"],
        delivered=doc["delivered"], delivered_at=doc.get("delivered_at"), error=doc.get("error"),
        status=doc.get("status"), attempts=doc.get("attempts", 0),
        next_attempt_at=doc.get("next_attempt_at") if doc.get("status") == PENDING else None,
        recipient=doc.get("recipient"), account_id=doc.get("account_id"),
        collector_id=doc.get("collector_id"), request_id=doc.get("request_id"),
    )


def by_tenant_of(evt: IncidentDeclared | IncidentResolved) -> dict[str, list[str]]:
    """The affected accounts grouped by tenant, each once, in the order given."""
    grouped: dict[str, list[str]] = {}
    for affected in evt.affected:
        accounts = grouped.setdefault(affected.tenant_id, [])
        if affected.account_id not in accounts:
            accounts.append(affected.account_id)
    return grouped


def describe_accounts(docs: list[dict[str, Any]], collector_id: str) -> tuple[str, list[str]]:
    """(collector name, logins) of some accounts, as far as their stored states know them."""
    names = [d["collector_name"] for d in docs if d.get("collector_name")]
    return (names[0] if names else collector_id), sorted({d["login"] for d in docs if d.get("login")})


def render(notice: Notice, lang: str) -> messages.Rendered:
    p = notice.params
    match notice.kind:
        case Kind.ACTION_REQUIRED:
            return messages.action_required(p["code"], p["login"], p["collector"], lang)
        case Kind.ACTION_REQUIRED_REMINDER:
            return messages.action_required_reminder(p["code"], p["login"], p["collector"], p["days"], lang)
        case Kind.TRANSIENT_FAILURE | Kind.TRANSIENT_FAILURE_REMINDER:
            return messages.transient_failure(p["code"], p["login"], p["collector"], p["hours"], lang,
                                              reminder=notice.kind is Kind.TRANSIENT_FAILURE_REMINDER)
        case Kind.RECOVERED:
            return messages.recovered(p["login"], p["collector"], lang)
        case Kind.INCIDENT_DECLARED:
            return messages.incident_declared(p["code"], p["collector"], p["logins"], lang)
        case Kind.INCIDENT_RESOLVED:
            return messages.incident_resolved(p["collector"], p["logins"], lang)
        case Kind.REQUEST_AVAILABLE:
            return messages.request_available(p["supplier"], p["portal"], p["name"], p["login_kind"], lang)
        case Kind.REQUEST_REJECTED:
            return messages.request_rejected(p["supplier"], p["reason"], lang)
    raise ValueError(f"no template for {notice.kind}")  # pragma: no cover - every Kind is matched


class NotifierService:
    def __init__(self, repo: NotifierRepository, channels: list[Channel], dispatcher: Dispatcher, *,
                 clock: Callable[[], datetime], policy: rules.Policy | None = None) -> None:
        self.repo = repo
        self.channels = channels
        self.dispatcher = dispatcher
        self.clock = clock
        self.policy = policy or rules.Policy()

    # --- preferences -------------------------------------------------------------------------

    async def get_prefs(self, req: api.TenantRequest) -> api.Prefs:
        return to_prefs(req.tenant_id, await self.repo.get_prefs(req.tenant_id))

    async def set_prefs(self, req: api.PrefsUpdate) -> api.Prefs:
        changes: dict[str, Any] = {}
        if req.emails is not None:
            changes["emails"] = validate_emails(req.emails, req.lang)
        if req.webhook_url is not None:
            changes["webhook_url"] = validate_webhook_url(req.webhook_url, req.lang)
        if req.language is not None:
            changes["language"] = req.language
        current = await self.repo.get_prefs(req.tenant_id) or {}
        # A webhook has a secret to sign with, generated with it, replaced on request, gone with it.
        webhook = changes["webhook_url"] if "webhook_url" in changes else current.get("webhook_url")
        if webhook is None:
            if req.rotate_webhook_secret:
                raise ValidationFailed(messages.api_message("secret_without_webhook", req.lang),
                                       field="rotate_webhook_secret")
            if current.get("webhook_secret"):
                changes["webhook_secret"] = None
        elif req.rotate_webhook_secret or not current.get("webhook_secret"):
            changes["webhook_secret"] = new_secret()
        doc = await self.repo.set_prefs(req.tenant_id, changes, DEFAULT_PREFS, self.clock())
        log.info("prefs_updated", tenant_id=req.tenant_id, fields=sorted(changes))
        return to_prefs(req.tenant_id, doc)

    async def history(self, req: api.TenantRequest) -> api.NotificationListReply:
        docs = await self.repo.history(req.tenant_id, HISTORY_LIMIT)
        return api.NotificationListReply(notifications=[to_view(d) for d in docs])

    # --- recording ---------------------------------------------------------------------------

    async def notify(self, tenant_id: str, notice: Notice) -> None:
        """Record the notice once per channel the tenant wants, then let the dispatcher deliver it.

        The unique (tenant, notice key, channel) index makes a second recording of the same notice a
        no-op, whatever caused it.
        """
        prefs = to_prefs(tenant_id, await self.repo.get_prefs(tenant_id))
        rendered = render(notice, prefs.language)
        now = self.clock()
        context = {k: notice.params.get(k) for k in CONTEXT_FIELDS if notice.params.get(k) is not None}
        if notice.params.get("code"):
            context["error_code"] = notice.params["code"]
        recorded = False
        for channel in self.channels:
            if not channel.wants(prefs):
                continue
            created = await self.repo.record({
                "_id": new_id(), "tenant_id": tenant_id, "notice_key": notice.key, "kind": notice.kind.value,
                "channel": channel.name, "language": prefs.language, "subject": rendered.subject,
                "body": rendered.body, "created_at": now, "status": PENDING, "delivered": False,
                "delivered_at": None, "error": None, "attempts": 0, "rounds": 0, "next_attempt_at": now,
                "recipient": channel.recipient(prefs), **context,
            })
            if created:
                recorded = True
                log.info("notification_recorded", tenant_id=tenant_id, kind=notice.kind.value,
                         channel=channel.name, notice_key=notice.key)
        if recorded:
            self.dispatcher.wake()

    # --- account rules -----------------------------------------------------------------------

    async def account_status_changed(self, evt: AccountStatusChanged) -> None:
        """A change into ``action_required`` is told at once, a recovery once; see ``rules``."""
        doc = await self.repo.account_state(evt.tenant_id, evt.account_id)
        state = AccountState.from_doc(doc) if doc else None
        if rules.is_stale(state, evt):
            log.info("stale_status_ignored", tenant_id=evt.tenant_id, account_id=evt.account_id,
                     status=evt.status.value)
            return
        new, notices = rules.apply_status(state, evt)
        # Notices first, state second: if we die in between, the redelivered event records the same
        # notices again (no-ops) and then stores the state.
        for notice in notices:
            await self.notify(evt.tenant_id, notice)
        if new is None:
            await self.repo.forget_account(evt.tenant_id, evt.account_id)
        else:
            await self.repo.save_state_after_event(new.to_doc(self.policy), evt.occurred_at)

    async def sweep(self) -> int:
        """Tell what time alone makes due (24 h transient failures, reminders); return how many."""
        now = self.clock()
        told = 0
        for doc in await self.repo.problems_due(now, SWEEP_BATCH):
            state = AccountState.from_doc(doc)
            new, notice = rules.due_notice(state, now, self.policy)
            if notice is not None:
                await self.notify(state.tenant_id, notice)
                told += 1
            # Guarded on what was read: an event that changed the problem meanwhile wins.
            await self.repo.save_state_if(new.to_doc(self.policy),
                                          {"episode_id": state.episode_id, "next_stage": state.next_stage})
        return told

    async def run_sweeps(self, every_s: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database blinked: the next sweep catches up
                log.warning("notification_sweep_failed", error=str(exc)[:300])
            await asyncio.sleep(every_s)

    # --- supplier-wide incidents -------------------------------------------------------------

    async def incident_declared(self, evt: IncidentDeclared) -> None:
        """One notice per affected tenant, whatever its number of accounts."""
        if not await self.repo.open_incident(evt.incident_id, evt.collector_id, evt.occurred_at):
            log.info("incident_already_resolved", incident_id=evt.incident_id)
            return
        for tenant_id, account_ids in by_tenant_of(evt).items():
            docs = await self.repo.account_states_of(tenant_id, account_ids)
            collector, logins = describe_accounts(docs, evt.collector_id)
            await self.notify(tenant_id, Notice(
                Kind.INCIDENT_DECLARED, f"incident_declared:{evt.incident_id}",
                {"code": evt.error_code.value, "collector": collector, "logins": logins,
                 "collector_id": evt.collector_id, "incident_id": evt.incident_id}))
            await self.repo.remember_told(evt.incident_id, tenant_id, collector, logins)
            known = {d["account_id"]: AccountState.from_doc(d) for d in docs}
            for account_id in account_ids:
                state = rules.enter_incident(known.get(account_id), tenant_id, account_id, evt.collector_id,
                                             evt.incident_id, evt.occurred_at)
                await self.repo.save_state(state.to_doc(self.policy))

    async def incident_resolved(self, evt: IncidentResolved) -> None:
        """The end of an incident, told to the tenants that were told it began (and only to them)."""
        told = await self.repo.close_incident(evt.incident_id, evt.collector_id, evt.occurred_at)
        for tenant_id, what in told.items():
            await self.notify(tenant_id, Notice(
                Kind.INCIDENT_RESOLVED, f"incident_resolved:{evt.incident_id}",
                {"collector": what.get("collector") or evt.collector_id, "logins": what.get("logins", []),
                 "collector_id": evt.collector_id, "incident_id": evt.incident_id}))

    # --- collector requests ------------------------------------------------------------------

    async def request_status_changed(self, evt: RequestStatusChanged) -> None:
        """Every requester hears of the outcome: how to activate the collector, or why there is none."""
        if evt.status == "available":
            params = {"supplier": evt.supplier, "portal": evt.collector_supplier or evt.supplier,
                      "name": evt.collector_name or evt.collector_id or evt.supplier,
                      "login_kind": evt.login_kind, "collector_id": evt.collector_id,
                      "request_id": evt.request_id}
            kind = Kind.REQUEST_AVAILABLE
        elif evt.status == "rejected":
            params = {"supplier": evt.supplier, "reason": evt.reason or "", "request_id": evt.request_id}
            kind = Kind.REQUEST_REJECTED
        else:
            return
        for tenant_id in dict.fromkeys(evt.requesters):
            await self.notify(tenant_id, Notice(kind, f"{kind.value}:{evt.request_id}", params))
