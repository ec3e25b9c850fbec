"""Use cases of the requests service; handlers in ``app.py`` only call these."""

from __future__ import annotations

from typing import Any

from services.requests import domain
from services.requests.messages import api_message
from services.requests.repository import AlreadyRequested, RequestRepository
from shared import api
from shared.errors import Conflict, NotFound
from shared.events import CollectorAnnounced, RequestCreated, RequestStatus, RequestStatusChanged, new_id, utcnow
from shared.logging import get_logger
from shared.outbox import OutboxRelay, outbox_entry, push_outbox
from shared.subjects import Events

log = get_logger("collectors.requests")

# Races are settled by retrying on the fresh document; this many losses in a row is a conflict.
MAX_ATTEMPTS = 5


def to_view(doc: dict[str, Any], tenant_id: str | None = None) -> api.CollectorRequestView:
    """A request as operators see it, or as pharmacy ``tenant_id`` does: a pharmacy learns how many
    asked (votes), never which other pharmacies did."""
    requesters = list(doc.get("requesters", []))
    if tenant_id is not None:
        requesters = [t for t in requesters if t == tenant_id]
    return api.CollectorRequestView(
        id=doc["_id"], supplier=doc["supplier"], portal_url=doc.get("portal_url"), status=doc["status"],
        requesters=requesters, votes=doc.get("votes", 0),
        collector_id=doc.get("collector_id"), reason=doc.get("reason"), created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class RequestsService:
    def __init__(self, repo: RequestRepository, outbox: OutboxRelay) -> None:
        self.repo = repo
        self.outbox = outbox

    async def _flush(self, request_id: str) -> None:
        """Publish what the last write queued; on failure the relay's sweep will."""
        try:
            await self.outbox.flush({"_id": request_id})
        except Exception as exc:
            log.warning("outbox_flush_deferred", request_id=request_id, error=str(exc))

    # --- commands ----------------------------------------------------------------------------

    async def create(self, req: api.CreateRequest) -> api.CollectorRequestView:
        """Ask for a collector; asking for one already requested adds a vote to that request."""
        supplier, key = domain.validate_supplier(req.supplier, req.lang)
        portal_url, portal_domain = domain.validate_portal_url(req.portal_url, req.lang)
        comment_text = (req.comment or "").strip() or None
        for _ in range(MAX_ATTEMPTS):
            now = utcnow()
            comment = {"tenant_id": req.tenant_id, "text": comment_text, "at": now} if comment_text else None
            existing = await self.repo.open_matching(key, portal_domain)
            if existing:
                mine = [d for d in existing if req.tenant_id in d.get("requesters", [])]
                if mine:
                    return to_view(mine[0], req.tenant_id)  # the same pharmacy asking again counts once
                doc = existing[0]
                joined = await self.repo.add_requester(doc["_id"], req.tenant_id, now, comment)
                if joined is None:
                    continue  # closed or joined meanwhile: look again
                if portal_url and portal_domain and not joined.get("portal_domain"):
                    await self.repo.set_portal_if_missing(joined["_id"], portal_url, portal_domain)
                    joined = await self.repo.get(joined["_id"]) or joined
                log.info("request_joined", request_id=joined["_id"], tenant_id=req.tenant_id,
                         votes=joined["votes"])
                return to_view(joined, req.tenant_id)
            request_id = new_id()
            evt = RequestCreated(request_id=request_id, tenant_id=req.tenant_id, supplier=supplier,
                                 supplier_key=key, portal_url=portal_url, portal_domain=portal_domain,
                                 comment=comment_text)
            doc = {
                "_id": request_id, "supplier": supplier, "supplier_key": key, "portal_url": portal_url,
                "portal_domain": portal_domain, "status": "submitted", "open": True,
                "requesters": [req.tenant_id], "votes": 1, "comments": [comment] if comment else [],
                "collector_id": None, "reason": None, "created_at": now, "updated_at": now,
                "outbox": [outbox_entry(Events.REQUEST_CREATED.base, evt)],
            }
            try:
                await self.repo.insert(doc)
            except AlreadyRequested:
                continue  # another pharmacy asked at the same moment: join its request
            log.info("request_created", request_id=request_id, tenant_id=req.tenant_id, supplier_key=key)
            await self._flush(request_id)
            return to_view(doc, req.tenant_id)
        raise Conflict(api_message("changed", req.lang), field="supplier")

    async def list(self, req: api.ListRequests) -> api.RequestListReply:
        """The requests this pharmacy made, most asked for first."""
        docs = await self.repo.list(req.tenant_id, req.status)
        return api.RequestListReply(requests=[to_view(d, req.tenant_id) for d in docs])

    async def list_all(self, req: api.ListAllRequests) -> api.RequestListReply:
        """Every pharmacy's requests, most asked for first (operators)."""
        docs = await self.repo.list(None, req.status)
        return api.RequestListReply(requests=[to_view(d) for d in docs])

    async def set_status(self, req: api.SetRequestStatus) -> api.CollectorRequestView:
        collector_id, reason = domain.check_status_fields(req.status, req.collector_id, req.reason, "fr")
        for _ in range(MAX_ATTEMPTS):
            doc = await self.repo.get(req.request_id)
            if doc is None:
                raise NotFound(api_message("not_found"), field="request_id")
            domain.check_transition(doc["status"], req.status, "fr")
            new = await self._move(doc, req.status, collector_id, reason)
            if new is not None:
                return to_view(new)
        raise Conflict(api_message("changed"), field="request_id")

    async def _move(self, doc: dict[str, Any], status: RequestStatus, collector_id: str | None,
                    reason: str | None) -> dict[str, Any] | None:
        """Move an (already checked) request to ``status`` with its event; None if it changed meanwhile.

        The event names the collector as the catalog shows it, when known, so that the notifier can
        tell every requester how to activate it.
        """
        now = utcnow()
        entry = await self.repo.collector(collector_id) if collector_id else None
        evt = RequestStatusChanged(
            request_id=doc["_id"], supplier=doc["supplier"], portal_url=doc.get("portal_url"),
            status=status, previous_status=doc["status"], requesters=list(doc["requesters"]),
            votes=doc["votes"], collector_id=collector_id, reason=reason,
            collector_name=entry.get("name") if entry else None,
            collector_supplier=entry.get("supplier") if entry else None,
            login_kind=entry.get("login_kind") if entry else None,
        )
        new = await self.repo.update_if_unchanged(doc, {
            "$set": {"status": status, "open": domain.is_open(status), "collector_id": collector_id,
                     "reason": reason, "updated_at": now},
            "$push": push_outbox(outbox_entry(Events.REQUEST_STATUS_CHANGED.base, evt)),
        })
        if new is None:
            return None
        log.info("request_status_changed", request_id=doc["_id"], status=status,
                 previous_status=doc["status"], collector_id=collector_id)
        await self._flush(doc["_id"])
        return new

    # --- catalog -----------------------------------------------------------------------------

    async def collector_announced(self, evt: CollectorAnnounced) -> None:
        """A collector for a requested supplier or portal exists now: the request is fulfilled."""
        await self.repo.record_collector(evt.collector_id, {
            "name": evt.name, "supplier": evt.supplier, "portal_url": evt.portal_url,
            "login_kind": evt.login_kind, "version": evt.version})
        key = domain.supplier_key(evt.supplier) or None
        portal = domain.portal_domain(evt.portal_url)
        for _ in range(MAX_ATTEMPTS):
            pending = [d for d in await self.repo.open_matching(key, portal)
                       if domain.matches(d["supplier_key"], d.get("portal_domain"), key, portal)]
            if not pending:
                return
            for doc in pending:
                await self._move(doc, "available", evt.collector_id, None)
        log.warning("request_fulfilment_contended", collector_id=evt.collector_id)
