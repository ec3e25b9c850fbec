"""The scraper's run index: one document per run (one attempt of a collect job) in its ``runs``
collection, with the run's trail and the names of its evidence files (``services.scraper.evidence``).
Operators read it through ``collectors runs list / show / evidence``."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.js.errors import NotFoundError, ObjectNotFoundError
from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING

from services.scraper.evidence import (
    Evidence,
    EvidenceManifest,
    EvidencePolicy,
    EvidenceStore,
    build_evidence,
    describe,
    expires_at,
    password_scrubber,
    scrubbed_trail,
)
from services.scraper.runner import RunReport
from shared import api
from shared.errors import CollectionErrorCode, NotFound, ValidationFailed
from shared.events import CollectJob, utcnow
from shared.logging import get_logger

log = get_logger("collectors.scraper.runs")


class RunRecord(BaseModel):
    """A run as the index keeps it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    run_id: str = Field(alias="_id")
    job_id: str
    tenant_id: str
    account_id: str
    collector_id: str
    worker_id: str = ""
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status: api.RunStatus
    error_code: CollectionErrorCode | None = None
    detail: str = ""
    documents: int = 0
    new_documents: int = 0
    logins: int = 0
    trail: list[api.TrailEntry] = Field(default_factory=list)
    trail_dropped: int = 0
    evidence_files: list[api.EvidenceFile] = Field(default_factory=list)
    evidence_expires_at: datetime | None = None
    evidence_note: str = ""

    def summary(self) -> api.RunSummary:
        fields = self.model_dump(include=set(api.RunSummary.model_fields) - {"evidence"})
        return api.RunSummary(**fields, evidence=[f.name for f in self.evidence_files])

    def detail_view(self) -> api.RunDetail:
        fields = self.model_dump(include=set(api.RunDetail.model_fields) - {"evidence"})
        return api.RunDetail(**fields, evidence=[f.name for f in self.evidence_files])


class RunIndex:
    def __init__(self, db: Any) -> None:
        self.runs = db["runs"]

    async def create_indexes(self) -> None:
        await self.runs.create_index([("started_at", DESCENDING)])
        await self.runs.create_index([("collector_id", ASCENDING), ("started_at", DESCENDING)])

    async def record(self, run: RunRecord) -> None:
        # Keyed by run id: a retried write of the same run replaces it.
        doc = run.model_dump(by_alias=True, mode="python")
        doc["trail"] = [t.model_dump() for t in run.trail]
        doc["evidence_files"] = [f.model_dump() for f in run.evidence_files]
        doc["error_code"] = run.error_code.value if run.error_code is not None else None
        await self.runs.replace_one({"_id": run.run_id}, doc, upsert=True)

    async def list(self, req: api.ListRuns) -> list[RunRecord]:
        query: dict[str, Any] = {}
        if req.collector_id:
            query["collector_id"] = req.collector_id
        if req.status:
            query["status"] = req.status
        if req.since is not None:
            query["started_at"] = {"$gte": req.since}
        cursor = self.runs.find(query, {"trail": 0}).sort([("started_at", DESCENDING)]).limit(req.limit)
        return [RunRecord.model_validate(d) async for d in cursor]

    async def get(self, run_id: str) -> RunRecord | None:
        doc = await self.runs.find_one({"_id": run_id})
        return None if doc is None else RunRecord.model_validate(doc)


# --- keeping a run, and the operators' use cases ------------------------------------------------


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    job: CollectJob
    worker_id: str
    started_at: datetime
    report: RunReport
    detail: str  # the outcome's detail, already redacted


class RunKeeper:
    """Records each run in the index and, for a failed (or sampled) one, its evidence in the bucket.
    Never fails the job: evidence that cannot be kept is logged and said in the run's note."""

    def __init__(self, index: RunIndex, evidence: Callable[[], EvidenceStore], policy: EvidencePolicy) -> None:
        self.index = index
        self.evidence = evidence
        self.policy = policy

    async def keep(self, run: FinishedRun, page_har: Path | None, password: str) -> None:
        report, job = run.report, run.job
        failed = report.outcome is not None
        finished_at = utcnow()
        record = RunRecord(
            run_id=run.run_id, job_id=job.job_id, tenant_id=job.tenant_id, account_id=job.account_id,
            collector_id=job.collector_id, worker_id=run.worker_id, started_at=run.started_at,
            finished_at=finished_at, duration_ms=int((finished_at - run.started_at).total_seconds() * 1000),
            status="failed" if failed else "ok", error_code=report.outcome.code if report.outcome else None,
            detail=run.detail, documents=len(report.collected), new_documents=report.new_documents,
            logins=report.logins, trail_dropped=report.recorder.dropped)
        try:
            if failed or self.policy.keep_success(job.collector_id):
                evidence = await asyncio.to_thread(build_evidence, report.recorder, page_har, password,
                                                   self.policy.max_bytes)
                record.trail = evidence.trail
                await self._store(record, evidence)
            else:
                record.trail = scrubbed_trail(report.recorder.trail, password_scrubber(password))
        except Exception:
            log.warning("run_evidence_not_kept", run_id=run.run_id, exc_info=True)
            record.evidence_files, record.evidence_expires_at = [], None
            record.evidence_note = "the evidence could not be kept (see the scraper's log)"
            record.trail = scrubbed_trail(report.recorder.trail, password_scrubber(password))
        try:
            await self.index.record(record)
        except Exception:
            log.warning("run_not_indexed", run_id=run.run_id, exc_info=True)

    async def _store(self, record: RunRecord, evidence: Evidence) -> None:
        expires = expires_at(record.finished_at, self.policy)
        files = describe(evidence.files)
        manifest = EvidenceManifest(
            run_id=record.run_id, collector_id=record.collector_id, status=record.status,
            error_code=record.error_code.value if record.error_code else None, page_url=evidence.page_url,
            files=files, har_entries=evidence.har_entries, har_bodies_dropped=evidence.har_bodies_dropped,
            note=evidence.note, expires_at=expires)
        everything = {**evidence.files, "manifest.json": manifest.model_dump_json(indent=1).encode()}
        await self.evidence().put(record.run_id, everything)
        record.evidence_files = describe(everything)
        record.evidence_expires_at = expires
        record.evidence_note = evidence.note


class RunsApi:
    """Operators' views of the runs (OPERATOR_API): list, show, a file of a run's evidence."""

    def __init__(self, index: RunIndex, evidence: Callable[[], EvidenceStore]) -> None:
        self.index = index
        self.evidence = evidence

    async def list_runs(self, req: api.ListRuns) -> api.RunListReply:
        return api.RunListReply(runs=[r.summary() for r in await self.index.list(req)])

    async def _run(self, run_id: str) -> RunRecord:
        run = await self.index.get(run_id)
        if run is None:
            raise NotFound("Run not found.", field="run_id")
        return run

    async def show_run(self, req: api.RunRef) -> api.RunDetail:
        return (await self._run(req.run_id)).detail_view()

    async def download_evidence(self, req: api.DownloadEvidence) -> api.EvidenceChunk:
        run = await self._run(req.run_id)
        described = next((f for f in run.evidence_files if f.name == req.name), None)
        if described is None:
            raise NotFound(f"This run kept no {req.name}.", field="name")
        try:
            part = await self.evidence().read(run.run_id, req.name, req.offset, req.cursor,
                                              api.EVIDENCE_CHUNK_BYTES)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="offset") from exc
        except (ObjectNotFoundError, NotFoundError) as exc:
            expired = run.evidence_expires_at is not None and run.evidence_expires_at <= utcnow()
            raise NotFound("The run's evidence expired." if expired else "The run's evidence is missing.",
                           field="name") from exc
        return api.EvidenceChunk(run_id=run.run_id, name=req.name, size=part.size, sha256=described.sha256,
                                 offset=req.offset, data=base64.b64encode(part.data).decode(),
                                 next_offset=part.next_offset, cursor=part.cursor)
