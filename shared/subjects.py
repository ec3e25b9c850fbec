"""Every NATS subject and stream of the public contract (§3), declared in one place.

- API (request/reply, core NATS): ``collectors.api.<service>.<verb>``
- Events (JetStream): ``collectors.evt.<service>.<event>[.<tenant>]``
- Work queue (JetStream): ``collectors.jobs.collect.<collector_id>``
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import RetentionPolicy, StorageType, StreamConfig

SERVICES = ("accounts", "scheduler", "scraper", "notifier", "requests", "documents")
PREFIX = "collectors"


def api(service: str, verb: str) -> str:
    return f"{PREFIX}.api.{service}.{verb}"


def health(service: str) -> str:
    return api(service, "health")


class Api:
    """Request/reply subjects."""

    ACCOUNTS_CATALOG = api("accounts", "catalog")
    ACCOUNTS_CREATE = api("accounts", "create")
    ACCOUNTS_LIST = api("accounts", "list")
    ACCOUNTS_GET = api("accounts", "get")
    ACCOUNTS_UPDATE_CREDENTIALS = api("accounts", "update_credentials")
    ACCOUNTS_RETRY = api("accounts", "retry")
    ACCOUNTS_DELETE = api("accounts", "delete")
    # Reserved to the scraper by NATS permissions (deploy/nats): the only reply carrying a password.
    ACCOUNTS_REVEAL_CREDENTIALS = api("accounts", "reveal_credentials")
    # Operators only: reload the keys and re-encrypt every credential under the newest one.
    ACCOUNTS_ROTATE_KEYS = api("accounts", "rotate_keys")
    # Operators only: per collector, accounts, share ok, error codes, open incident, run durations.
    ACCOUNTS_FLEET = api("accounts", "fleet")

    SCRAPER_INVOICES_LIST = api("scraper", "invoices_list")
    SCRAPER_INVOICE_GET = api("scraper", "invoice_get")
    # An invoice's PDF in chunks, checked against the tenant: nobody but the scraper reads the bucket.
    SCRAPER_INVOICE_DOWNLOAD = api("scraper", "invoice_download")
    # Operators only: the scraper's runs (one attempt of a job each) and a failed run's evidence.
    SCRAPER_RUNS_LIST = api("scraper", "runs_list")
    SCRAPER_RUNS_SHOW = api("scraper", "runs_show")
    SCRAPER_RUNS_EVIDENCE = api("scraper", "runs_evidence")

    NOTIFIER_PREFS_GET = api("notifier", "prefs_get")
    NOTIFIER_PREFS_SET = api("notifier", "prefs_set")
    NOTIFIER_HISTORY = api("notifier", "history")

    REQUESTS_CREATE = api("requests", "create")
    REQUESTS_LIST = api("requests", "list")
    REQUESTS_SET_STATUS = api("requests", "set_status")
    # Every pharmacy's requests: the team's view, not a pharmacy's (REQUESTS_LIST needs a tenant).
    REQUESTS_LIST_ALL = api("requests", "list_all")

    # The structured data read from a collected invoice (issue 14): its model, warnings and checks.
    DOCUMENTS_INVOICE_DATA = api("documents", "invoice_data")
    # One row per invoice and VAT rate over a date range, the layout an accountant imports.
    DOCUMENTS_EXPORT = api("documents", "export")


# Dead letters (`collectors dlq`): each service keeps the jobs and events it could not handle in its
# own database and answers for them on ``collectors.api.<service>.dlq_<verb>`` (shared/dead_letters.py);
# the CLI asks each service and merges. Operators only.
DLQ_VERBS = ("dlq_list", "dlq_show", "dlq_replay", "dlq_drop")


def dead_letters(service: str, verb: str) -> str:
    return api(service, verb)


DLQ_API: tuple[str, ...] = tuple(dead_letters(s, v) for s in SERVICES for v in DLQ_VERBS)


# Who may call what; deploy/nats/permissions.py grants it and refuses to run while a subject a service
# answers is in neither list. The web gateway (NATS user `gateway`) acts for one pharmacy at a time:
# every tenant-facing request names its tenant (shared.api.TenantRequest). Operators (user `operator`,
# the CLI) call the operator subjects and, to help a pharmacy, the tenant-facing ones. New operator
# views (fleet, runs, dead letters) join OPERATOR_API.
TENANT_API: tuple[str, ...] = (
    Api.ACCOUNTS_CATALOG, Api.ACCOUNTS_CREATE, Api.ACCOUNTS_LIST, Api.ACCOUNTS_GET,
    Api.ACCOUNTS_UPDATE_CREDENTIALS, Api.ACCOUNTS_RETRY, Api.ACCOUNTS_DELETE,
    Api.SCRAPER_INVOICES_LIST, Api.SCRAPER_INVOICE_GET, Api.SCRAPER_INVOICE_DOWNLOAD,
    Api.NOTIFIER_PREFS_GET, Api.NOTIFIER_PREFS_SET, Api.NOTIFIER_HISTORY,
    Api.REQUESTS_CREATE, Api.REQUESTS_LIST,
    Api.DOCUMENTS_INVOICE_DATA, Api.DOCUMENTS_EXPORT,
)
OPERATOR_API: tuple[str, ...] = (
    *DLQ_API,
    Api.ACCOUNTS_ROTATE_KEYS, Api.REQUESTS_SET_STATUS, Api.REQUESTS_LIST_ALL,
    Api.SCRAPER_RUNS_LIST, Api.SCRAPER_RUNS_SHOW, Api.SCRAPER_RUNS_EVIDENCE,
    Api.ACCOUNTS_FLEET,
)
# The operator subjects the web service (services/web) calls for an operator's token: the request
# workflow and nothing else of OPERATOR_API (no key rotation, fleet, runs or dead letters over HTTP).
WEB_OPERATOR_API: tuple[str, ...] = (Api.REQUESTS_LIST_ALL, Api.REQUESTS_SET_STATUS)
# Service to service only: reveal_credentials (the scraper's, design §6).
INTERNAL_API: tuple[str, ...] = (Api.ACCOUNTS_REVEAL_CREDENTIALS,)


def _evt(service: str, event: str) -> str:
    return f"{PREFIX}.evt.{service}.{event}"


@dataclass(frozen=True)
class EventSubject:
    """An event subject; ``tenant_scoped`` ones end with the tenant id as a further token."""

    base: str
    tenant_scoped: bool = True

    def for_tenant(self, tenant_id: str) -> str:
        return f"{self.base}.{tenant_id}" if self.tenant_scoped else self.base

    @property
    def pattern(self) -> str:
        return f"{self.base}.*" if self.tenant_scoped else self.base


class Events:
    ACCOUNT_CREATED = EventSubject(_evt("accounts", "created"))
    ACCOUNT_CREDENTIALS_UPDATED = EventSubject(_evt("accounts", "credentials_updated"))
    ACCOUNT_RETRY_REQUESTED = EventSubject(_evt("accounts", "retry_requested"))
    ACCOUNT_DELETED = EventSubject(_evt("accounts", "deleted"))
    ACCOUNT_STATUS_CHANGED = EventSubject(_evt("accounts", "status_changed"))

    COLLECTION_STARTED = EventSubject(_evt("scraper", "collection_started"))
    COLLECTION_SUCCEEDED = EventSubject(_evt("scraper", "collection_succeeded"))
    COLLECTION_FAILED = EventSubject(_evt("scraper", "collection_failed"))
    INVOICE_COLLECTED = EventSubject(_evt("scraper", "invoice_collected"))
    COLLECTOR_ANNOUNCED = EventSubject(_evt("scraper", "collector_announced"), tenant_scoped=False)

    SCHEDULE_CHANGED = EventSubject(_evt("scheduler", "schedule_changed"))
    # A supplier-wide incident on one collector (§5 of issue "Scheduler"): not per tenant.
    INCIDENT_DECLARED = EventSubject(_evt("scheduler", "incident_declared"), tenant_scoped=False)
    INCIDENT_RESOLVED = EventSubject(_evt("scheduler", "incident_resolved"), tenant_scoped=False)
    # A run that started and never reported back, closed by the scheduler (shared.events.CollectionTimedOut).
    COLLECTION_TIMED_OUT = EventSubject(_evt("scheduler", "collection_timed_out"))

    NOTIFICATION_SENT = EventSubject(_evt("notifier", "notification_sent"))

    REQUEST_CREATED = EventSubject(_evt("requests", "created"), tenant_scoped=False)
    REQUEST_STATUS_CHANGED = EventSubject(_evt("requests", "status_changed"), tenant_scoped=False)

    # What the documents service read from a collected invoice (shared.events.InvoiceDataExtracted).
    INVOICE_DATA_EXTRACTED = EventSubject(_evt("documents", "invoice_data_extracted"))


def collect_job(collector_id: str) -> str:
    return f"{PREFIX}.jobs.collect.{collector_id}"


COLLECT_JOBS_PATTERN = f"{PREFIX}.jobs.collect.*"

INVOICE_BUCKET = "collectors-invoices"
# Scrubbed evidence of failed runs (trail, last page, screenshot, HAR), expired by the bucket's TTL.
EVIDENCE_BUCKET = "collectors-evidence"


def _stream(name: str, subjects: list[str], **kw: object) -> StreamConfig:
    return StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE, **kw)  # type: ignore[arg-type]


# One stream per owner. Events are kept a month for late consumers; the work queue drops a job once
# a worker has acked it. The dedup window backs the ``Nats-Msg-Id`` header set by every publisher.
DEDUP_WINDOW_S = 2 * 60 * 60
STREAMS: dict[str, StreamConfig] = {
    "accounts": _stream("COLLECTORS_ACCOUNTS", [f"{PREFIX}.evt.accounts.>"], max_age=31 * 86400.0,
                        duplicate_window=DEDUP_WINDOW_S),
    "scheduler": _stream("COLLECTORS_SCHEDULER", [f"{PREFIX}.evt.scheduler.>"], max_age=31 * 86400.0,
                         duplicate_window=DEDUP_WINDOW_S),
    "scraper": _stream("COLLECTORS_SCRAPER", [f"{PREFIX}.evt.scraper.>"], max_age=31 * 86400.0,
                       duplicate_window=DEDUP_WINDOW_S),
    "notifier": _stream("COLLECTORS_NOTIFIER", [f"{PREFIX}.evt.notifier.>"], max_age=31 * 86400.0,
                        duplicate_window=DEDUP_WINDOW_S),
    "requests": _stream("COLLECTORS_REQUESTS", [f"{PREFIX}.evt.requests.>"], max_age=365 * 86400.0,
                        duplicate_window=DEDUP_WINDOW_S),
    # Its own stream, like every owner's: its NATS user publishes there and nowhere else, and the
    # scraper's stream (whose subjects are the scraper's alone) keeps the `invoice collected` it reads.
    "documents": _stream("COLLECTORS_DOCUMENTS", [f"{PREFIX}.evt.documents.>"], max_age=31 * 86400.0,
                         duplicate_window=DEDUP_WINDOW_S),
    "jobs": _stream("COLLECTORS_JOBS", [f"{PREFIX}.jobs.>"], retention=RetentionPolicy.WORK_QUEUE,
                    duplicate_window=DEDUP_WINDOW_S),
}
