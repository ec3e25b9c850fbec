"""Request and reply models of the request/reply API (``collectors.api.<service>.<verb>``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from shared.errors import CollectionErrorCode
from shared.events import ID_PATTERN, TENANT_PATTERN, AccountStatus, Contract, RequestStatus
from shared.invoice_data import Check, DataSource, DataWarning, EInvoice
from shared.text import multi_line, single_line

Lang = Literal["fr", "en"]
Tenant = Field(pattern=TENANT_PATTERN, description="Pharmacy (tenant) id")
AnId = Field(pattern=ID_PATTERN)
# Names, logins, URLs, emails and ids a caller writes: no control or invisible character (they would
# reach a terminal or a page as they are). Comments and reasons may span lines. Passwords are never
# shown and must reach the portal exactly as typed: they are not checked (shared/text.py).
Line = Annotated[str, AfterValidator(single_line)]
Text = Annotated[str, AfterValidator(multi_line)]


class ErrorBody(Contract):
    code: str
    message: str
    field: str | None = None


class ErrorReply(Contract):
    error: ErrorBody


class TenantRequest(Contract):
    tenant_id: str = Tenant
    lang: Lang = "fr"


class HealthReply(Contract):
    service: str
    status: Literal["ok"] = "ok"
    instance: str


# --- catalog / accounts ---------------------------------------------------------------------


class CatalogEntry(Contract):
    id: str
    name: str
    supplier: str
    portal_url: str
    login_kind: Literal["email", "identifier"]
    frequency_hours: int
    max_sessions: int
    version: str


class CatalogReply(Contract):
    collectors: list[CatalogEntry]


class CreateAccount(TenantRequest):
    collector_id: str = AnId
    login: Line = Field(max_length=320)
    password: str = Field(repr=False, max_length=1024)


class AccountRef(TenantRequest):
    account_id: str = AnId


class ListAccounts(TenantRequest):
    collector_id: Line | None = None


class UpdateCredentials(AccountRef):
    login: Line | None = Field(default=None, max_length=320)
    password: str = Field(repr=False, max_length=1024)


class AccountView(Contract):
    id: str
    tenant_id: str
    collector_id: str
    collector_name: str = ""
    slot: int
    login: str
    status: AccountStatus
    error_code: CollectionErrorCode | None = None
    message: str
    invoice_count: int = 0
    created_at: datetime
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    next_run_at: datetime | None = None
    pause_reason: str | None = None


class AccountListReply(Contract):
    accounts: list[AccountView]


class RotateKeys(Contract):
    """Re-encrypt every stored credential under the newest key (after reloading the key source)."""


class RotateKeysReply(Contract):
    key_id: str
    rotated: int
    already_current: int
    failed: int
    key_ids: list[str]


class RevealCredentials(Contract):
    tenant_id: str = Tenant
    account_id: str = AnId
    credential_version: int


class RevealedCredentials(Contract):
    login: str
    password: str = Field(repr=False)
    credential_version: int


# --- fleet (operators) ----------------------------------------------------------------------


class FleetRequest(Contract):
    """Operators: every collector of the catalog, how its accounts and its runs are doing."""


class FleetIncident(Contract):
    id: str
    since: datetime
    error_code: CollectionErrorCode | None = None


class FleetCollector(Contract):
    collector_id: str
    name: str = ""
    accounts: int = Field(description="Active accounts")
    ok: int = Field(description="Active accounts whose status is ok")
    ok_share: float | None = Field(description="ok / accounts in %, null without accounts")
    error_codes: dict[str, int] = Field(default_factory=dict, description="Active accounts by current error code")
    incident: FleetIncident | None = Field(default=None, description="The collector's open incident")
    last_success_at: datetime | None = Field(default=None, description="Latest last_success_at of its accounts")
    runs: int = Field(default=0, description="Runs that ended (succeeded or failed) within the window")
    p50_s: float | None = Field(default=None, description="Median run duration (s) within the window")
    p95_s: float | None = Field(default=None, description="95th percentile run duration (s) within the window")


class FleetReply(Contract):
    generated_at: datetime
    window_hours: int
    collectors: list[FleetCollector]


# --- invoices (scraper) ---------------------------------------------------------------------


class ListInvoices(TenantRequest):
    account_id: Line | None = None
    limit: int = Field(default=1000, ge=1, le=10000)


class InvoiceRef(TenantRequest):
    invoice_id: str = AnId


# A downloaded chunk's bytes at most: base64 makes them 4/3 larger, and the reply must stay under
# NATS's max_payload (1 MB by default and in deploy/nats).
INVOICE_CHUNK_BYTES = 512 * 1024


class DownloadInvoice(InvoiceRef):
    """One chunk of an invoice's PDF from ``offset``; pass back the previous reply's ``cursor`` so
    that the scraper resumes where it stopped instead of reading the file from its start again."""

    offset: int = Field(default=0, ge=0)
    cursor: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,64}:[0-9]{1,19}:[0-9]{1,19}$")


class InvoiceChunk(Contract):
    invoice_id: str
    size: int = Field(description="Size of the whole file")
    sha256: str = Field(description="SHA-256 (hex) of the whole file: check what you assembled")
    offset: int
    data: str = Field(description=f"Base64 of at most {INVOICE_CHUNK_BYTES} bytes from offset")
    next_offset: int
    cursor: str | None = Field(default=None, description="For the next request; none after the last chunk")


class InvoiceView(Contract):
    id: str
    tenant_id: str
    account_id: str
    collector_id: str
    number: str
    site: str | None = Field(default=None, description="The site or customer account the document belongs "
                             "to, as the supplier's portal names it; null when the portal shows none")
    issue_date: date
    amount: Decimal
    currency: str
    kind: Literal["invoice", "credit_note"]
    sha256: str
    size: int
    object_key: str
    collected_at: datetime


class InvoiceListReply(Contract):
    invoices: list[InvoiceView]


# --- invoice data (documents, issue 14) -------------------------------------------------------


class ListedValues(Contract):
    """What the portal's list showed for the document (the ``invoice collected`` event)."""

    number: str
    issue_date: date
    amount: Decimal
    currency: str
    kind: Literal["invoice", "credit_note"]


class InvoiceDataView(Contract):
    invoice_id: str
    tenant_id: str
    account_id: str
    collector_id: str
    listed: ListedValues
    source: DataSource = Field(description="Where the data came from; \"none\": the file holds no e-invoice")
    attachment: str | None = Field(default=None, description="The embedded file read, for a PDF")
    data: EInvoice | None = Field(default=None, description="The e-invoice as read (null without one)")
    warnings: list[DataWarning] = Field(default_factory=list,
                                        description="What went wrong or disagrees with the portal's list")
    checks: list[Check] = Field(default_factory=list)
    extracted_at: datetime


# Whatever a page of the export holds, its reply stays well under NATS's max_payload (1 MB).
EXPORT_PAGE_BYTES = 512 * 1024


class ExportInvoiceData(TenantRequest):
    """One page of the accountant's export: rows of the invoices issued from ``from`` to ``to``
    (inclusive; either may be left out), oldest first. Pass back the reply's ``next`` as ``after``."""

    model_config = ConfigDict(populate_by_name=True)

    date_from: date | None = Field(default=None, alias="from")
    date_to: date | None = Field(default=None, alias="to")
    after: str | None = Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}/[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                              description="The previous page's ``next``")


class ExportRow(Contract):
    """One invoice and one VAT rate; amounts are exact decimals as the e-invoice wrote them. An
    invoice without structured data has one row: the portal's amount as ``grand_total``, no VAT."""

    invoice_id: str
    source: DataSource
    number: str
    issue_date: date
    kind: Literal["invoice", "credit_note"]
    seller_name: str | None = None
    seller_siren: str | None = None
    seller_vat_id: str | None = None
    currency: str
    vat_category: str | None = None
    vat_rate: Decimal | None = None
    vat_basis: Decimal | None = None
    vat_amount: Decimal | None = None
    tax_basis: Decimal | None = Field(default=None, description="Invoice total without VAT (BT-109)")
    tax_total: Decimal | None = Field(default=None, description="Invoice VAT total (BT-110)")
    grand_total: Decimal | None = Field(default=None, description="Invoice total with VAT (BT-112), "
                                        "or the portal's amount without structured data")
    warnings: int = Field(default=0, description="How many data warnings the invoice carries")


class ExportReply(Contract):
    rows: list[ExportRow]
    next: str | None = Field(default=None, description="``after`` of the next page; none after the last")


# --- runs and their evidence (scraper, operators: `collectors runs`) ---------------------------

RunStatus = Literal["ok", "failed"]
EvidenceName = Literal["trail.json", "page.html", "screenshot.png", "run.har", "manifest.json"]
EVIDENCE_CHUNK_BYTES = INVOICE_CHUNK_BYTES


class TrailEntry(Contract):
    """One request of a run, as the portal answered it (URLs scrubbed of the password)."""

    at_ms: float = Field(description="When it ended, in ms since the run started")
    method: str
    url: str
    status: int = Field(description="HTTP status; 0: no answer")
    ms: float = Field(description="How long it took (ms): the whole exchange, or a page's time to first byte")
    via: Literal["http", "page"] = Field(description="The page-less client, or the collector's page")
    error: str | None = None


class EvidenceFile(Contract):
    name: EvidenceName
    size: int
    sha256: str


class ListRuns(Contract):
    collector_id: str | None = Field(default=None, pattern=ID_PATTERN)
    status: RunStatus | None = None
    since: datetime | None = Field(default=None, description="Runs started at or after this time")
    limit: int = Field(default=100, ge=1, le=1000)


class RunRef(Contract):
    run_id: str = Field(pattern=ID_PATTERN)


class RunSummary(Contract):
    run_id: str
    job_id: str
    tenant_id: str
    account_id: str
    collector_id: str
    worker_id: str = ""
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status: RunStatus
    error_code: CollectionErrorCode | None = None
    detail: str = ""
    documents: int = Field(description="Documents listed and collected by this run (new or already known)")
    new_documents: int = 0
    evidence: list[EvidenceName] = Field(default_factory=list, description="Files kept in the evidence bucket")
    evidence_expires_at: datetime | None = None


class RunListReply(Contract):
    runs: list[RunSummary]


class RunDetail(RunSummary):
    logins: int = 0
    trail: list[TrailEntry] = Field(default_factory=list)
    trail_dropped: int = Field(default=0, description="Requests past the trail's cap, not listed")
    evidence_files: list[EvidenceFile] = Field(default_factory=list)
    evidence_note: str = Field(default="", description="What was left out of the evidence, and why")


class DownloadEvidence(RunRef):
    """One chunk of one evidence file, as SCRAPER_INVOICE_DOWNLOAD serves an invoice."""

    name: EvidenceName
    offset: int = Field(default=0, ge=0)
    cursor: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,64}:[0-9]{1,19}:[0-9]{1,19}$")


class EvidenceChunk(Contract):
    run_id: str
    name: EvidenceName
    size: int = Field(description="Size of the whole file")
    sha256: str = Field(description="SHA-256 (hex) of the whole file")
    offset: int
    data: str = Field(description=f"Base64 of at most {EVIDENCE_CHUNK_BYTES} bytes from offset")
    next_offset: int
    cursor: str | None = Field(default=None, description="For the next request; none after the last chunk")


# --- notifier -------------------------------------------------------------------------------


class PrefsUpdate(TenantRequest):
    emails: list[Line] | None = None
    webhook_url: Line | None = None
    language: Lang | None = None
    # A new webhook signing secret replaces the old one at once (the old one stops verifying).
    rotate_webhook_secret: bool = False


class Prefs(Contract):
    tenant_id: str
    emails: list[str] = Field(default_factory=list)
    webhook_url: str | None = None
    language: Lang = "fr"
    # Key of the HMAC-SHA256 signature of webhook calls; generated with the first webhook URL.
    webhook_secret: str | None = Field(default=None, repr=False)


DeliveryStatus = Literal["pending", "delivered", "failed"]


class NotificationView(Contract):
    id: str
    tenant_id: str
    kind: str
    channel: str
    subject: str
    body: str
    created_at: datetime
    delivered: bool
    delivered_at: datetime | None = None
    error: str | None = None
    # pending: still being retried; failed: retries exhausted (``error`` says why).
    status: DeliveryStatus | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    recipient: str | None = None
    account_id: str | None = None
    collector_id: str | None = None
    request_id: str | None = None


class NotificationListReply(Contract):
    notifications: list[NotificationView]


# --- requests -------------------------------------------------------------------------------



class CreateRequest(TenantRequest):
    supplier: Line = Field(min_length=1, max_length=200)
    portal_url: Line | None = Field(default=None, max_length=2000)
    comment: Text | None = Field(default=None, max_length=2000)


class ListRequests(TenantRequest):
    """The requests a pharmacy made (the tenant is required: every pharmacy's is ListAllRequests)."""

    status: RequestStatus | None = None


class ListAllRequests(Contract):
    """Operators: every pharmacy's requests."""

    status: RequestStatus | None = None


class SetRequestStatus(Contract):
    request_id: str = AnId
    status: RequestStatus
    collector_id: Line | None = None
    reason: Text | None = Field(default=None, max_length=2000)


class CollectorRequestView(Contract):
    id: str
    supplier: str
    portal_url: str | None = None
    status: RequestStatus
    requesters: list[str]
    votes: int
    collector_id: str | None = None
    reason: str | None = None
    created_at: datetime
    updated_at: datetime


class RequestListReply(Contract):
    requests: list[CollectorRequestView]


# --- dead letters (operators: `collectors dlq`, shared/dead_letters.py) ------------------------------

DeadLetterId = Field(pattern=r"^[a-z]+-[0-9a-f]{16}$", description="<service>-<16 hex digits>")
DEAD_LETTER_PREVIEW_CHARS = 2000


class ListDeadLetters(Contract):
    """The dead letters one service kept, newest failure first; replayed ones only with ``all``."""

    all: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


class DeadLetterRef(Contract):
    id: str = DeadLetterId


class DeadLetterView(Contract):
    """A kept-aside job or event as operators see it: never its payload, only a scrubbed preview."""

    id: str
    service: str
    kind: Literal["job", "event"]
    subject: str
    consumer: str | None = None
    reason: str
    deliveries: int
    times_kept: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: Literal["kept", "replayed", "dropped"]
    replayed_at: datetime | None = None
    replay_msg_id: str | None = None
    size: int
    preview: str


class DeadLetterListReply(Contract):
    dead_letters: list[DeadLetterView]
