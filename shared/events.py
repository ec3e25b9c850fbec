"""Event and job models of the public contract (§3).

Changes are additive: consumers ignore fields they do not know; a breaking change gets a new
subject version. Every event knows its ``msg_id``, the ``Nats-Msg-Id`` JetStream dedups on, built
from the event's identity (tenant included) so a retried publish is stored once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import CollectionErrorCode
from shared.invoice_data import Check, DataSource, DataWarning, EInvoice

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid4().hex


class AccountStatus(StrEnum):
    PENDING = "pending"
    COLLECTING = "collecting"
    OK = "ok"
    ACTION_REQUIRED = "action_required"
    RETRYING = "retrying"
    MAINTENANCE = "maintenance"
    DELETED = "deleted"


class Contract(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Event(Contract):
    event_id: str = Field(default_factory=new_id)
    occurred_at: datetime = Field(default_factory=utcnow)
    schema_version: int = 1

    def msg_id(self) -> str:
        return self.event_id


# --- accounts -------------------------------------------------------------------------------


class AccountEvent(Event):
    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    credential_version: int = 1


class AccountCreated(AccountEvent):
    login: str
    slot: int

    def msg_id(self) -> str:
        return f"account-created:{self.tenant_id}:{self.account_id}"


class AccountCredentialsUpdated(AccountEvent):
    def msg_id(self) -> str:
        return f"account-credentials:{self.tenant_id}:{self.account_id}:{self.credential_version}"


class AccountRetryRequested(AccountEvent):
    def msg_id(self) -> str:
        return f"account-retry:{self.tenant_id}:{self.account_id}:{self.event_id}"


class AccountDeleted(AccountEvent):
    def msg_id(self) -> str:
        return f"account-deleted:{self.tenant_id}:{self.account_id}"


class AccountStatusChanged(AccountEvent):
    status: AccountStatus
    previous_status: AccountStatus | None = None
    error_code: CollectionErrorCode | None = None
    login: str = ""
    collector_name: str = ""

    def msg_id(self) -> str:
        return f"account-status:{self.tenant_id}:{self.account_id}:{self.event_id}"


# --- scheduler → scraper ----------------------------------------------------------------------

JobReason = Literal["activation", "credentials_updated", "retry", "scheduled", "probe"]


class CollectJob(Contract):
    """A work-queue message: run one collection for one account."""

    job_id: str
    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    credential_version: int
    planned_at: datetime
    reason: JobReason = "scheduled"
    attempt: int = 0
    schema_version: int = 1

    @staticmethod
    def make_id(account_id: str, planned_at: datetime) -> str:
        return f"{account_id}:{int(planned_at.timestamp() * 1000)}"

    def msg_id(self) -> str:
        return f"collect:{self.tenant_id}:{self.job_id}"


# --- scraper ---------------------------------------------------------------------------------


class CollectionEvent(Event):
    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    job_id: str
    credential_version: int
    started_at: datetime
    # The scraper worker that ran the attempt (operators follow a redelivered job with it).
    worker_id: str = ""


class CollectionStarted(CollectionEvent):
    def msg_id(self) -> str:
        return f"collection-started:{self.tenant_id}:{self.job_id}"


class CollectionSucceeded(CollectionEvent):
    finished_at: datetime = Field(default_factory=utcnow)
    # This attempt in the scraper's run index (`collectors runs show RUN_ID`); None from older scrapers.
    run_id: str | None = Field(default=None, description="The run (one attempt of the job) in the "
                               "scraper's run index: `collectors runs show RUN_ID`")
    new_invoices: int = 0
    total_invoices: int = 0

    def msg_id(self) -> str:
        return f"collection-result:{self.tenant_id}:{self.job_id}"


class CollectionFailed(CollectionEvent):
    finished_at: datetime = Field(default_factory=utcnow)
    # Links to the run's scrubbed evidence (`collectors runs evidence RUN_ID`); None from older scrapers.
    run_id: str | None = Field(default=None, description="The run (one attempt of the job) whose scrubbed "
                               "evidence the scraper kept: `collectors runs evidence RUN_ID`")
    error_code: CollectionErrorCode
    # Operator-facing detail; never holds a credential.
    detail: str = ""
    retry_after_s: float | None = None
    new_invoices: int = 0
    total_invoices: int = 0

    def msg_id(self) -> str:
        return f"collection-result:{self.tenant_id}:{self.job_id}"


class CollectionTimedOut(CollectionEvent):
    """A run that started but neither succeeded nor failed within the scraper's time limit plus a
    margin (a worker that died quietly, a result lost with NATS): the scheduler closes it as
    ``internal_error`` and retries it as such. ``started_at`` is the run's own, so a later attempt's
    status never gives way to this event; a real result of this run that still comes afterwards
    counts (it is what really happened)."""

    timed_out_at: datetime = Field(default_factory=utcnow)
    error_code: CollectionErrorCode = CollectionErrorCode.INTERNAL_ERROR
    # Operator-facing: the limit that was exceeded.
    detail: str = ""

    def msg_id(self) -> str:
        return f"collection-timed-out:{self.tenant_id}:{self.job_id}"


class InvoiceCollected(Event):
    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    invoice_id: str
    number: str
    # Additive (schema 1): producers before sites leave it out, consumers before sites ignore it.
    site: str | None = Field(
        default=None,
        description="The site or customer account the document belongs to, as the supplier's portal names it "
                    "(a short label or code), when one login sees several (a pharmacy group, a customer with "
                    "two sites). Null when the portal shows none. Two sites may reuse a number: a document is "
                    "(account_id, site, number).")
    issue_date: date
    amount: Decimal
    currency: str
    kind: Literal["invoice", "credit_note"]
    sha256: str
    size: int
    object_key: str

    def msg_id(self) -> str:
        return f"invoice:{self.tenant_id}:{self.account_id}:{self.invoice_id}"


class CollectorAnnounced(Event):
    collector_id: str
    name: str
    supplier: str
    portal_url: str
    login_kind: Literal["email", "identifier"]
    frequency_hours: int
    max_sessions: int
    version: str
    worker_id: str = ""
    # Local (Europe/Paris) hours the portal may be visited, "HH:MM-HH:MM"; None: any time.
    run_window: str | None = None

    def msg_id(self) -> str:
        return f"collector:{self.collector_id}:{self.version}:{self.worker_id}"


# --- scheduler --------------------------------------------------------------------------------


class ScheduleChanged(Event):
    """When an account runs next and why it does not (the status page shows both, §4)."""

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    next_run_at: datetime | None
    # An error code the user must act on, "incident" (supplier-wide), or None.
    pause_reason: str | None = None
    changed_at: datetime = Field(default_factory=utcnow)

    def msg_id(self) -> str:
        return f"schedule:{self.tenant_id}:{self.account_id}:{self.event_id}"


# --- scheduler: supplier-wide incidents --------------------------------------------------------


class AffectedAccount(Contract):
    tenant_id: str
    account_id: str


class IncidentEvent(Event):
    incident_id: str
    collector_id: str
    error_code: CollectionErrorCode
    # Every (tenant, account) the incident holds in `maintenance`: the notifier tells each tenant
    # once, not once per account.
    affected: list[AffectedAccount] = Field(default_factory=list)


class IncidentDeclared(IncidentEvent):
    def msg_id(self) -> str:
        return f"incident-declared:{self.incident_id}"


class IncidentResolved(IncidentEvent):
    reason: Literal["probe_succeeded", "collector_updated", "manual"] = "probe_succeeded"

    def msg_id(self) -> str:
        return f"incident-resolved:{self.incident_id}"


# --- notifier --------------------------------------------------------------------------------


class NotificationSent(Event):
    """The in-app channel: one notification for the web gateway to show to the pharmacy.

    ``kind`` is a plain string (not a closed set) so new kinds stay an additive change.
    """

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    notification_id: str
    kind: str
    subject: str
    body: str
    language: Literal["fr", "en"] = "fr"
    account_id: str | None = None
    collector_id: str | None = None
    error_code: CollectionErrorCode | None = None
    request_id: str | None = None
    incident_id: str | None = None

    def msg_id(self) -> str:
        return f"notification:{self.tenant_id}:{self.notification_id}"


# --- requests --------------------------------------------------------------------------------
# A request gathers several pharmacies: its subjects carry no tenant token.

RequestStatus = Literal["submitted", "in_progress", "available", "rejected"]


class RequestEvent(Event):
    request_id: str
    supplier: str
    portal_url: str | None = None


class RequestCreated(RequestEvent):
    tenant_id: str = Field(pattern=TENANT_PATTERN, description="The pharmacy that asked first")
    supplier_key: str
    portal_domain: str | None = None
    comment: str | None = None

    def msg_id(self) -> str:
        return f"request-created:{self.request_id}"


class RequestStatusChanged(RequestEvent):
    """``status == "available"`` is the fulfilment: ``requesters`` lists every pharmacy to notify.
    A request goes through each status at most once, so the status is part of its identity."""

    status: RequestStatus
    previous_status: RequestStatus
    requesters: list[str]
    votes: int
    collector_id: str | None = None
    reason: str | None = None
    # What the catalog says of ``collector_id`` when known, so requesters are told how to activate it.
    collector_name: str | None = None
    collector_supplier: str | None = None
    login_kind: Literal["email", "identifier"] | None = None

    def msg_id(self) -> str:
        return f"request-status:{self.request_id}:{self.status}"


# --- documents -------------------------------------------------------------------------------


class InvoiceDataExtracted(Event):
    """The structured data the documents service read from a collected invoice (issue 14), once per
    invoice: a redelivered or duplicated ``invoice collected`` publishes nothing new. ``invoice`` is
    null when the file holds no e-invoice (``source`` "none"); ``data_warnings`` says why, and every
    disagreement with what the portal listed (``listed_<field>_differs``): flagged, never overwritten."""

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    account_id: str
    collector_id: str
    invoice_id: str
    source: DataSource = Field(description="Where the data came from: the embedded e-invoice's flavour, "
                               "a standalone XML syntax, \"text\" (a fallback, marked as such) or \"none\"")
    attachment: str | None = Field(default=None, description="The embedded file read, for a PDF")
    invoice: EInvoice | None = None
    data_warnings: list[DataWarning] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list, description="Arithmetic and XSD checks, as run")

    def msg_id(self) -> str:
        return f"invoice-data:{self.tenant_id}:{self.invoice_id}"
