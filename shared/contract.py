"""The public NATS contract as data: which models travel on which subject (§3).

The AsyncAPI document is generated from this table and the services' own subscribers, so a subject
added without its model here shows up in the contract test.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared import api, events
from shared.subjects import COLLECT_JOBS_PATTERN, SERVICES, Api, Events, EventSubject, dead_letters

# Request model and reply model of every API verb.
API: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    Api.ACCOUNTS_CATALOG: (api.TenantRequest, api.CatalogReply),
    Api.ACCOUNTS_CREATE: (api.CreateAccount, api.AccountView),
    Api.ACCOUNTS_LIST: (api.ListAccounts, api.AccountListReply),
    Api.ACCOUNTS_GET: (api.AccountRef, api.AccountView),
    Api.ACCOUNTS_UPDATE_CREDENTIALS: (api.UpdateCredentials, api.AccountView),
    Api.ACCOUNTS_RETRY: (api.AccountRef, api.AccountView),
    Api.ACCOUNTS_DELETE: (api.AccountRef, None),
    Api.ACCOUNTS_REVEAL_CREDENTIALS: (api.RevealCredentials, api.RevealedCredentials),
    Api.ACCOUNTS_ROTATE_KEYS: (api.RotateKeys, api.RotateKeysReply),
    Api.ACCOUNTS_FLEET: (api.FleetRequest, api.FleetReply),
    Api.SCRAPER_INVOICES_LIST: (api.ListInvoices, api.InvoiceListReply),
    Api.SCRAPER_INVOICE_GET: (api.InvoiceRef, api.InvoiceView),
    Api.SCRAPER_INVOICE_DOWNLOAD: (api.DownloadInvoice, api.InvoiceChunk),
    Api.SCRAPER_RUNS_LIST: (api.ListRuns, api.RunListReply),
    Api.SCRAPER_RUNS_SHOW: (api.RunRef, api.RunDetail),
    Api.SCRAPER_RUNS_EVIDENCE: (api.DownloadEvidence, api.EvidenceChunk),
    Api.NOTIFIER_PREFS_GET: (api.TenantRequest, api.Prefs),
    Api.NOTIFIER_PREFS_SET: (api.PrefsUpdate, api.Prefs),
    Api.NOTIFIER_HISTORY: (api.TenantRequest, api.NotificationListReply),
    Api.REQUESTS_CREATE: (api.CreateRequest, api.CollectorRequestView),
    Api.REQUESTS_LIST: (api.ListRequests, api.RequestListReply),
    Api.REQUESTS_SET_STATUS: (api.SetRequestStatus, api.CollectorRequestView),
    Api.REQUESTS_LIST_ALL: (api.ListAllRequests, api.RequestListReply),
    Api.DOCUMENTS_INVOICE_DATA: (api.InvoiceRef, api.InvoiceDataView),
    Api.DOCUMENTS_EXPORT: (api.ExportInvoiceData, api.ExportReply),
}


# Every service's dead letters (shared/dead_letters.py), operators only.
_DLQ_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "dlq_list": (api.ListDeadLetters, api.DeadLetterListReply),
    "dlq_show": (api.DeadLetterRef, api.DeadLetterView),
    "dlq_replay": (api.DeadLetterRef, api.DeadLetterView),
    "dlq_drop": (api.DeadLetterRef, api.DeadLetterView),
}
API.update({dead_letters(service, verb): models for service in SERVICES for verb, models in _DLQ_MODELS.items()})


def _p(subject: EventSubject, model: type[BaseModel]) -> tuple[str, type[BaseModel]]:
    return subject.pattern, model


# What each service publishes on JetStream.
PUBLISHES: dict[str, list[tuple[str, type[BaseModel]]]] = {
    "accounts": [
        _p(Events.ACCOUNT_CREATED, events.AccountCreated),
        _p(Events.ACCOUNT_CREDENTIALS_UPDATED, events.AccountCredentialsUpdated),
        _p(Events.ACCOUNT_RETRY_REQUESTED, events.AccountRetryRequested),
        _p(Events.ACCOUNT_DELETED, events.AccountDeleted),
        _p(Events.ACCOUNT_STATUS_CHANGED, events.AccountStatusChanged),
    ],
    "scheduler": [
        (COLLECT_JOBS_PATTERN, events.CollectJob),
        _p(Events.SCHEDULE_CHANGED, events.ScheduleChanged),
        _p(Events.INCIDENT_DECLARED, events.IncidentDeclared),
        _p(Events.INCIDENT_RESOLVED, events.IncidentResolved),
        _p(Events.COLLECTION_TIMED_OUT, events.CollectionTimedOut),
    ],
    "scraper": [
        _p(Events.COLLECTION_STARTED, events.CollectionStarted),
        _p(Events.COLLECTION_SUCCEEDED, events.CollectionSucceeded),
        _p(Events.COLLECTION_FAILED, events.CollectionFailed),
        _p(Events.INVOICE_COLLECTED, events.InvoiceCollected),
        _p(Events.COLLECTOR_ANNOUNCED, events.CollectorAnnounced),
    ],
    "notifier": [_p(Events.NOTIFICATION_SENT, events.NotificationSent)],
    "requests": [
        _p(Events.REQUEST_CREATED, events.RequestCreated),
        _p(Events.REQUEST_STATUS_CHANGED, events.RequestStatusChanged),
    ],
    "documents": [_p(Events.INVOICE_DATA_EXTRACTED, events.InvoiceDataExtracted)],
}

EVENT_MODELS: dict[str, type[BaseModel]] = {
    subject: model for published in PUBLISHES.values() for subject, model in published
}
