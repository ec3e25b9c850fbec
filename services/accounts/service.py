"""Use cases of the accounts service; handlers in ``app.py`` only call these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.accounts import domain
from services.accounts.crypto import DecryptionFailed, Keyring, Sealed
from services.accounts.messages import api_message, status_message
from services.accounts.repository import AccountRepository, CatalogRepository, SlotTaken
from shared import api
from shared.errors import CollectionErrorCode, Conflict, DuplicateAccount, NotFound, TooManyAccounts, UnknownCollector
from shared.events import (
    AccountCreated,
    AccountCredentialsUpdated,
    AccountDeleted,
    AccountRetryRequested,
    AccountStatus,
    AccountStatusChanged,
    CollectionFailed,
    CollectionStarted,
    CollectionSucceeded,
    CollectionTimedOut,
    CollectorAnnounced,
    IncidentDeclared,
    IncidentResolved,
    ScheduleChanged,
    new_id,
    utcnow,
)
from shared.logging import get_logger
from shared.outbox import OutboxRelay, outbox_entry, push_outbox
from shared.subjects import Events

log = get_logger("collectors.accounts")


def to_view(doc: dict[str, Any], lang: str, collector_name: str = "") -> api.AccountView:
    status = AccountStatus(doc["status"])
    code = doc.get("error_code")
    return api.AccountView(
        id=doc["_id"], tenant_id=doc["tenant_id"], collector_id=doc["collector_id"],
        collector_name=collector_name, slot=doc["slot"], login=doc.get("login", ""), status=status,
        error_code=code, message=status_message(status, code and CollectionErrorCode(code), lang),
        invoice_count=doc.get("invoice_count", 0), created_at=doc["created_at"],
        last_attempt_at=doc.get("last_attempt_at"), last_success_at=doc.get("last_success_at"),
        next_run_at=doc.get("next_run_at"), pause_reason=doc.get("pause_reason"),
    )


class AccountsService:
    def __init__(self, accounts: AccountRepository, catalog: CatalogRepository, keyring: Keyring,
                 outbox: OutboxRelay, reload_keys: Callable[[], Keyring] | None = None) -> None:
        self.accounts = accounts
        self.catalog = catalog
        self.keyring = keyring
        self.outbox = outbox
        # Re-reads the key source (a secret file can gain a key without a restart).
        self.reload_keys = reload_keys

    async def _flush(self, tenant_id: str, account_id: str) -> None:
        """Publish what the last write queued; on failure the relay's sweep will."""
        try:
            await self.outbox.flush({"tenant_id": tenant_id, "_id": account_id})
        except Exception as exc:
            log.warning("outbox_flush_deferred", account_id=account_id, error=str(exc))

    async def _collector(self, collector_id: str, lang: str) -> dict[str, Any]:
        entry = await self.catalog.get(collector_id)
        if entry is None:
            raise UnknownCollector(api_message("unknown_collector", lang), field="collector_id")
        return entry

    async def _live(self, tenant_id: str, account_id: str, lang: str) -> dict[str, Any]:
        doc = await self.accounts.get(tenant_id, account_id)
        if doc is None or not doc.get("active"):
            raise NotFound(api_message("not_found", lang), field="account_id")
        return doc

    # --- catalog -----------------------------------------------------------------------------

    async def record_collector(self, evt: CollectorAnnounced) -> None:
        await self.catalog.upsert(evt, utcnow())

    async def catalog_entries(self) -> api.CatalogReply:
        return api.CatalogReply(collectors=[
            api.CatalogEntry(id=d["_id"], **{k: d[k] for k in api.CatalogEntry.model_fields if k != "id"})
            for d in await self.catalog.all()
        ])

    # --- commands ----------------------------------------------------------------------------

    async def create(self, req: api.CreateAccount) -> api.AccountView:
        collector = await self._collector(req.collector_id, req.lang)
        login = domain.validate_login(req.login, collector["login_kind"], req.lang)
        domain.validate_password(req.password, req.lang)
        key = domain.login_key(login)
        account_id = new_id()
        now = utcnow()
        sealed = self.keyring.seal(req.password, req.tenant_id, account_id)
        # The unique indexes arbitrate races: two creates for the last slot cannot both insert.
        for slot in range(1, domain.MAX_ACCOUNTS_PER_COLLECTOR + 1):
            if await self.accounts.find_login(req.tenant_id, req.collector_id, key):
                raise DuplicateAccount(api_message("duplicate_account", req.lang), field="login")
            if slot in await self.accounts.used_slots(req.tenant_id, req.collector_id):
                continue
            evt = AccountCreated(tenant_id=req.tenant_id, account_id=account_id,
                                 collector_id=req.collector_id, login=login, slot=slot)
            doc = {
                "_id": account_id, "tenant_id": req.tenant_id, "collector_id": req.collector_id,
                "slot": slot, "login": login, "login_key": key, "secret": sealed.to_doc(),
                "credential_version": 1, "status": AccountStatus.PENDING.value, "error_code": None,
                "invoice_count": 0, "created_at": now, "updated_at": now, "active": True,
                "outbox": [outbox_entry(Events.ACCOUNT_CREATED.for_tenant(req.tenant_id), evt)],
            }
            try:
                await self.accounts.insert(doc)
            except SlotTaken:
                continue
            log.info("account_created", tenant_id=req.tenant_id, account_id=account_id,
                     collector_id=req.collector_id, slot=slot)
            await self._flush(req.tenant_id, account_id)
            return to_view(doc, req.lang, collector["name"])
        if await self.accounts.find_login(req.tenant_id, req.collector_id, key):
            raise DuplicateAccount(api_message("duplicate_account", req.lang), field="login")
        raise TooManyAccounts(api_message("too_many_accounts", req.lang), field="collector_id")

    async def get(self, req: api.AccountRef) -> api.AccountView:
        doc = await self._live(req.tenant_id, req.account_id, req.lang)
        entry = await self.catalog.get(doc["collector_id"])
        return to_view(doc, req.lang, entry["name"] if entry else "")

    async def list(self, req: api.ListAccounts) -> api.AccountListReply:
        names = {d["_id"]: d["name"] for d in await self.catalog.all()}
        docs = await self.accounts.list_live(req.tenant_id, req.collector_id)
        return api.AccountListReply(
            accounts=[to_view(d, req.lang, names.get(d["collector_id"], "")) for d in docs]
        )

    async def _status_change(self, doc: dict[str, Any], status: AccountStatus,
                             code: str | None) -> AccountStatusChanged:
        entry = await self.catalog.get(doc["collector_id"])
        return AccountStatusChanged(
            collector_name=entry["name"] if entry else "",
            tenant_id=doc["tenant_id"], account_id=doc["_id"], collector_id=doc["collector_id"],
            credential_version=doc["credential_version"], status=status,
            previous_status=AccountStatus(doc["status"]), error_code=code, login=doc.get("login", ""),
        )

    async def update_credentials(self, req: api.UpdateCredentials) -> api.AccountView:
        doc = await self._live(req.tenant_id, req.account_id, req.lang)
        collector = await self._collector(doc["collector_id"], req.lang)
        login = doc["login"] if req.login is None else domain.validate_login(
            req.login, collector["login_kind"], req.lang)
        domain.validate_password(req.password, req.lang)
        key = domain.login_key(login)
        if key != doc["login_key"]:
            other = await self.accounts.find_login(req.tenant_id, doc["collector_id"], key)
            if other is not None and other["_id"] != doc["_id"]:
                raise DuplicateAccount(api_message("duplicate_account", req.lang), field="login")
        version = doc["credential_version"] + 1
        sealed = self.keyring.seal(req.password, req.tenant_id, req.account_id)
        updated_evt = AccountCredentialsUpdated(
            tenant_id=req.tenant_id, account_id=req.account_id, collector_id=doc["collector_id"],
            credential_version=version)
        status_evt = await self._status_change({**doc, "credential_version": version},
                                               AccountStatus.PENDING, None)
        try:
            new = await self.accounts.update(
                req.tenant_id, req.account_id,
                {"$set": {"login": login, "login_key": key, "secret": sealed.to_doc(),
                          "credential_version": version, "status": AccountStatus.PENDING.value,
                          "error_code": None, "updated_at": utcnow()},
                 "$push": push_outbox(
                     outbox_entry(Events.ACCOUNT_CREDENTIALS_UPDATED.for_tenant(req.tenant_id), updated_evt),
                     outbox_entry(Events.ACCOUNT_STATUS_CHANGED.for_tenant(req.tenant_id), status_evt))},
                # Optimistic concurrency: a concurrent update bumps the version first and wins.
                extra_filter={"credential_version": doc["credential_version"]},
            )
        except SlotTaken as exc:  # the new login was taken by another account meanwhile
            raise DuplicateAccount(api_message("duplicate_account", req.lang), field="login") from exc
        if new is None:
            raise Conflict("Le compte a été modifié entre-temps : réessayez.", field="account_id")
        await self._flush(req.tenant_id, req.account_id)
        return to_view(new, req.lang, collector["name"])

    async def retry(self, req: api.AccountRef) -> api.AccountView:
        doc = await self._live(req.tenant_id, req.account_id, req.lang)
        evt = AccountRetryRequested(tenant_id=req.tenant_id, account_id=req.account_id,
                                    collector_id=doc["collector_id"],
                                    credential_version=doc["credential_version"])
        new = await self.accounts.update(
            req.tenant_id, req.account_id,
            {"$set": {"updated_at": utcnow()},
             "$push": push_outbox(outbox_entry(Events.ACCOUNT_RETRY_REQUESTED.for_tenant(req.tenant_id), evt))},
        )
        if new is None:
            raise NotFound(api_message("not_found", req.lang), field="account_id")
        await self._flush(req.tenant_id, req.account_id)
        return await self.get(req)

    async def delete(self, req: api.AccountRef) -> dict[str, Any]:
        doc = await self._live(req.tenant_id, req.account_id, req.lang)
        evt = AccountDeleted(tenant_id=req.tenant_id, account_id=req.account_id,
                             collector_id=doc["collector_id"], credential_version=doc["credential_version"])
        # Credentials are erased, not just flagged: nothing can decrypt them afterwards.
        new = await self.accounts.update(
            req.tenant_id, req.account_id,
            {"$set": {"active": False, "status": AccountStatus.DELETED.value, "deleted_at": utcnow(),
                      "login": "", "login_key": None, "error_code": None},
             "$unset": {"secret": ""},
             "$push": push_outbox(outbox_entry(Events.ACCOUNT_DELETED.for_tenant(req.tenant_id), evt))},
        )
        if new is None:
            raise NotFound(api_message("not_found", req.lang), field="account_id")
        await self._flush(req.tenant_id, req.account_id)
        log.info("account_deleted", tenant_id=req.tenant_id, account_id=req.account_id)
        return {"id": req.account_id, "status": AccountStatus.DELETED.value}

    async def reveal(self, req: api.RevealCredentials) -> api.RevealedCredentials:
        doc = await self.accounts.get(req.tenant_id, req.account_id)
        if doc is None or not doc.get("active"):
            raise NotFound("account not found or deleted", field="account_id")
        if doc["credential_version"] != req.credential_version:
            raise Conflict("stale credential version", field="credential_version")
        password = self.keyring.open(Sealed.from_doc(doc["secret"]), req.tenant_id, req.account_id)
        return api.RevealedCredentials(login=doc["login"], password=password,
                                       credential_version=doc["credential_version"])

    async def rotate_keys(self, _: api.RotateKeys) -> api.RotateKeysReply:
        """Re-encrypt every live credential under the newest key; old keys can then be retired."""
        if self.reload_keys is not None:
            self.keyring = self.reload_keys()
        ring = self.keyring
        rotated = failed = 0
        skipped: set[str] = set()
        while True:
            batch = [d for d in await self.accounts.with_secret_not_under(ring.current_kid, 200)
                     if d["_id"] not in skipped]
            if not batch:
                break
            for doc in batch:
                try:
                    plain = ring.open(Sealed.from_doc(doc["secret"]), doc["tenant_id"], doc["_id"])
                except DecryptionFailed as exc:
                    log.error("credential_not_rotated", account_id=doc["_id"], kid=doc["secret"]["kid"],
                              error=str(exc))
                    failed += 1
                    skipped.add(doc["_id"])
                    continue
                sealed = ring.seal(plain, doc["tenant_id"], doc["_id"])
                if await self.accounts.replace_secret(doc, sealed.to_doc()):
                    rotated += 1
                else:
                    skipped.add(doc["_id"])  # updated meanwhile, so already under the newest key
        log.info("credentials_rotated", key_id=ring.current_kid, rotated=rotated, failed=failed)
        return api.RotateKeysReply(key_id=ring.current_kid, rotated=rotated, failed=failed,
                                   already_current=await self.accounts.count_under(ring.current_kid) - rotated,
                                   key_ids=ring.kids)

    # --- collection results ------------------------------------------------------------------

    async def _apply(self, evt: CollectionStarted | CollectionSucceeded | CollectionFailed | CollectionTimedOut,
                     status: AccountStatus, fields: dict[str, Any]) -> None:
        doc = await self.accounts.get(evt.tenant_id, evt.account_id)
        if doc is None or not doc.get("active"):
            return
        # Consumers are unordered. A run whose result (or whose timeout) was applied is over: its late
        # start must not show it collecting again. The scheduler's timeout never hides a real result.
        # Checked on the document read, and again in the write's filter: the start and the result of one
        # run come through two consumers at once, and the result may land between this read and the
        # start's write (the start would then show a finished run collecting until its next run).
        still_open: dict[str, Any] = {}
        if isinstance(evt, CollectionStarted):
            still_open = {"last_result_job": {"$ne": evt.job_id}, "timed_out_job": {"$ne": evt.job_id}}
        elif isinstance(evt, CollectionTimedOut):
            still_open = {"last_result_job": {"$ne": evt.job_id}}
        if any(doc.get(name) == evt.job_id for name in still_open):
            return
        stamp = domain.AttemptStamp(evt.credential_version, evt.started_at)
        if domain.is_stale(doc["credential_version"], doc.get("last_attempt_at"), stamp):
            log.info("stale_result_ignored", account_id=evt.account_id, job_id=evt.job_id)
            return
        code = fields.get("error_code", doc.get("error_code"))
        if doc.get("incident_id") and status in (AccountStatus.RETRYING, AccountStatus.COLLECTING):
            status = AccountStatus.MAINTENANCE  # an incident's probe: the collector is still being fixed
        push: dict[str, Any] = {}
        if status.value != doc["status"] or code != doc.get("error_code"):
            change = await self._status_change(doc, status, code)
            push = {"$push": push_outbox(outbox_entry(
                Events.ACCOUNT_STATUS_CHANGED.for_tenant(evt.tenant_id), change))}
        await self.accounts.update(
            evt.tenant_id, evt.account_id,
            {"$set": {"status": status.value, "last_attempt_at": evt.started_at,
                      "updated_at": utcnow(), **fields}, **push},
            # Guard against a newer attempt or credentials landing between read and write.
            extra_filter={"credential_version": evt.credential_version, **still_open,
                          "$or": [{"last_attempt_at": None}, {"last_attempt_at": {"$lte": evt.started_at}}]},
        )
        if push:
            await self._flush(evt.tenant_id, evt.account_id)

    # --- scheduler ---------------------------------------------------------------------------------

    async def schedule_changed(self, evt: ScheduleChanged) -> None:
        """The next planned run and the reason for any pause, for the status page."""
        await self.accounts.update(
            evt.tenant_id, evt.account_id,
            {"$set": {"next_run_at": evt.next_run_at, "pause_reason": evt.pause_reason,
                      "schedule_changed_at": evt.changed_at}},
            # Consumers are unordered: an older change never overwrites a newer one.
            extra_filter={"$or": [{"schedule_changed_at": None},
                                  {"schedule_changed_at": {"$lte": evt.changed_at}}]},
        )

    async def incident_declared(self, evt: IncidentDeclared) -> None:
        # The notifier tells each tenant once about the incident: no per-account status event here.
        for member in evt.affected:
            await self.accounts.update(
                member.tenant_id, member.account_id,
                {"$set": {"status": AccountStatus.MAINTENANCE.value, "incident_id": evt.incident_id,
                          "updated_at": utcnow()}},
                extra_filter={"status": {"$nin": [AccountStatus.ACTION_REQUIRED.value]}})

    async def incident_resolved(self, evt: IncidentResolved) -> None:
        for member in evt.affected:
            await self.accounts.update(
                member.tenant_id, member.account_id,
                {"$set": {"status": AccountStatus.RETRYING.value, "incident_id": None, "updated_at": utcnow()}},
                extra_filter={"incident_id": evt.incident_id, "status": AccountStatus.MAINTENANCE.value})

    async def collection_started(self, evt: CollectionStarted) -> None:
        await self._apply(evt, AccountStatus.COLLECTING, {})

    async def collection_succeeded(self, evt: CollectionSucceeded) -> None:
        await self._apply(evt, AccountStatus.OK, {
            "error_code": None, "incident_id": None, "last_success_at": evt.finished_at,
            "invoice_count": evt.total_invoices, "last_result_job": evt.job_id})

    async def collection_timed_out(self, evt: CollectionTimedOut) -> None:
        """A run that never reported back (the scheduler's watch): internal_error, retried as one.
        Its result, if it still comes, is applied over this (same attempt, real outcome)."""
        await self._apply(evt, domain.status_after_failure(evt.error_code),
                          {"error_code": evt.error_code.value, "timed_out_job": evt.job_id})

    async def collection_failed(self, evt: CollectionFailed) -> None:
        fields: dict[str, Any] = {"error_code": evt.error_code.value, "last_result_job": evt.job_id}
        if evt.total_invoices:
            fields["invoice_count"] = evt.total_invoices
        await self._apply(evt, domain.status_after_failure(evt.error_code), fields)

