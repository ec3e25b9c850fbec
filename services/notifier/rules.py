"""When a pharmacy is told about one of its accounts (§8): pure decisions over what is remembered of it.

Vocabulary:

- a *breakdown* is a run of statuses between two ``ok``: the account is not collecting normally;
- within it, a *problem* is what is wrong now: ``user_fixable`` (``action_required``), ``transient``
  (``retrying``) or ``incident`` (``maintenance``, told per tenant by the incident rules instead);
- each problem has *stages*, times after its start when the sweep owes a notice: for a transient
  failure the first alert (24 h) then reminders, for a user-fixable one the reminders only (its
  alert goes out at once).

Every notice has a ``key`` unique per tenant: recording it twice is a no-op, so redelivered events,
two replicas sweeping at once, or a crash between recording and remembering never repeat an alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.events import AccountStatus, AccountStatusChanged


class Problem(StrEnum):
    USER_FIXABLE = "user_fixable"
    TRANSIENT = "transient"
    INCIDENT = "incident"


class Kind(StrEnum):
    """What a notification is about; also the name of its template."""

    ACTION_REQUIRED = "action_required"
    ACTION_REQUIRED_REMINDER = "action_required_reminder"
    TRANSIENT_FAILURE = "transient_failure"
    TRANSIENT_FAILURE_REMINDER = "transient_failure_reminder"
    RECOVERED = "recovered"
    INCIDENT_DECLARED = "incident_declared"
    INCIDENT_RESOLVED = "incident_resolved"
    REQUEST_AVAILABLE = "request_available"
    REQUEST_REJECTED = "request_rejected"


@dataclass(frozen=True)
class Stage:
    name: str
    after: timedelta


@dataclass(frozen=True)
class Policy:
    transient_after: timedelta = timedelta(hours=24)
    reminders: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=7))

    def stages(self, problem: Problem | None) -> tuple[Stage, ...]:
        reminders = tuple(Stage(f"reminder_{_label(d)}", d) for d in self.reminders)
        if problem is Problem.USER_FIXABLE:
            return reminders
        if problem is Problem.TRANSIENT:
            return (Stage(f"alert_{_label(self.transient_after)}", self.transient_after), *reminders)
        return ()


def _label(delay: timedelta) -> str:
    hours = delay.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{int(hours // 24)}d"
    return f"{hours:g}h"


@dataclass(frozen=True)
class Notice:
    kind: Kind
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountState:
    tenant_id: str
    account_id: str
    collector_id: str
    collector_name: str = ""
    login: str = ""
    status: str | None = None
    error_code: str | None = None
    event_at: datetime | None = None
    breakdown_id: str | None = None
    problem: Problem | None = None
    episode_id: str | None = None
    since: datetime | None = None
    next_stage: int = 0
    # Whether the current problem has been told (reminders and the 24 h alert depend on it).
    notified: bool = False
    # Whether the pharmacy was told of something during this breakdown: its end is worth a notice.
    owes_recovery: bool = False
    incident_id: str | None = None

    @property
    def collector(self) -> str:
        return self.collector_name or self.collector_id

    def due_at(self, policy: Policy) -> datetime | None:
        stages = policy.stages(self.problem)
        if self.since is None or self.next_stage >= len(stages):
            return None
        return self.since + stages[self.next_stage].after

    def to_doc(self, policy: Policy) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["problem"] = self.problem.value if self.problem else None
        doc["due_at"] = self.due_at(policy)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AccountState:
        values = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        if values.get("problem"):
            values["problem"] = Problem(values["problem"])
        return cls(**values)


def _base(state: AccountState | None, evt: AccountStatusChanged) -> AccountState:
    state = state or AccountState(tenant_id=evt.tenant_id, account_id=evt.account_id,
                                  collector_id=evt.collector_id)
    return replace(state, collector_id=evt.collector_id,
                   collector_name=evt.collector_name or state.collector_name,
                   login=evt.login or state.login, status=evt.status.value,
                   error_code=evt.error_code.value if evt.error_code else None, event_at=evt.occurred_at)


def _params(state: AccountState, **more: Any) -> dict[str, Any]:
    return {"code": state.error_code, "login": state.login, "collector": state.collector,
            "account_id": state.account_id, "collector_id": state.collector_id, **more}


def is_stale(state: AccountState | None, evt: AccountStatusChanged) -> bool:
    """An event older than the last one applied (a nacked event redelivered late) changes nothing."""
    return state is not None and state.event_at is not None and evt.occurred_at < state.event_at


def apply_status(state: AccountState | None, evt: AccountStatusChanged) -> tuple[AccountState | None, list[Notice]]:
    """The state after a status change, and what to tell at once. ``None``: forget the account."""
    if evt.status is AccountStatus.DELETED:
        return None, []
    new = _base(state, evt)
    if evt.status is AccountStatus.OK:
        notices = []
        if new.owes_recovery and new.breakdown_id:
            notices.append(Notice(Kind.RECOVERED, f"recovered:{new.account_id}:{new.breakdown_id}",
                                  _params(new)))
        return replace(new, breakdown_id=None, problem=None, episode_id=None, since=None, next_stage=0,
                       notified=False, owes_recovery=False, incident_id=None), notices
    if evt.status in (AccountStatus.PENDING, AccountStatus.COLLECTING):
        if evt.status is AccountStatus.PENDING and new.problem is Problem.USER_FIXABLE:
            # New credentials: the pharmacist acted, so no more reminders; the breakdown (and the
            # recovery notice it owes) goes on until the account is ok.
            return replace(new, problem=None, episode_id=None, since=None, next_stage=0, notified=False), []
        return new, []
    breakdown = new.breakdown_id or evt.event_id
    new = replace(new, breakdown_id=breakdown)
    if evt.status is AccountStatus.ACTION_REQUIRED:
        # One alert per (credentials, error) within a breakdown: a retry that fails the same way is
        # not a new alert, new credentials that fail again are.
        episode = f"action_required:{new.account_id}:{breakdown}:{evt.credential_version}:{new.error_code}"
        if evt.previous_status is AccountStatus.ACTION_REQUIRED and new.problem is Problem.USER_FIXABLE:
            return new, []
        if new.problem is Problem.USER_FIXABLE and new.episode_id == episode:
            return new, []
        new = replace(new, problem=Problem.USER_FIXABLE, episode_id=episode, since=evt.occurred_at,
                      next_stage=0, notified=True, owes_recovery=True, incident_id=None)
        return new, [Notice(Kind.ACTION_REQUIRED, episode, _params(new))]
    if evt.status is AccountStatus.RETRYING:
        if new.problem is Problem.TRANSIENT:
            return new, []
        return replace(new, problem=Problem.TRANSIENT, episode_id=f"transient:{new.account_id}:{evt.event_id}",
                       since=evt.occurred_at, next_stage=0, notified=False, incident_id=None), []
    if evt.status is AccountStatus.MAINTENANCE:
        if new.problem is Problem.INCIDENT:
            return new, []
        return replace(new, problem=Problem.INCIDENT, episode_id=f"incident:{new.account_id}:{evt.event_id}",
                       since=evt.occurred_at, next_stage=0, notified=False), []
    return new, []


def enter_incident(state: AccountState | None, tenant_id: str, account_id: str, collector_id: str,
                   incident_id: str, at: datetime) -> AccountState:
    """An account held by a supplier-wide incident: the incident notices replace its own."""
    state = state or AccountState(tenant_id=tenant_id, account_id=account_id, collector_id=collector_id)
    return replace(state, breakdown_id=state.breakdown_id or f"incident:{incident_id}",
                   problem=Problem.INCIDENT, episode_id=f"incident:{incident_id}",
                   since=state.since if state.problem is Problem.INCIDENT else at, next_stage=0,
                   notified=True, owes_recovery=False, incident_id=incident_id)


def _days(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds() // 86400))


def due_notice(state: AccountState, now: datetime, policy: Policy) -> tuple[AccountState, Notice | None]:
    """What the periodic sweep owes for an open problem at ``now``.

    Stages missed while the sweep was down are not told one by one: only the latest due is.
    """
    stages = policy.stages(state.problem)
    if state.since is None or state.episode_id is None:
        return state, None
    due = [i for i in range(state.next_stage, len(stages)) if state.since + stages[i].after <= now]
    if not due:
        return state, None
    index = due[-1]
    stage = stages[index]
    if state.problem is Problem.USER_FIXABLE:
        kind = Kind.ACTION_REQUIRED_REMINDER
    else:
        kind = Kind.TRANSIENT_FAILURE_REMINDER if state.notified else Kind.TRANSIENT_FAILURE
    hours = int((now - state.since).total_seconds() // 3600)
    notice = Notice(kind, f"{stage.name}:{state.episode_id}",
                    _params(state, days=_days(state.since, now), hours=hours, since=state.since))
    return replace(state, next_stage=index + 1, notified=True, owes_recovery=True), notice
