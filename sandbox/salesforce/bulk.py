"""Bulk API 2.0: ingest jobs (insert, update, upsert on an external id, delete) and query jobs.

An ingest job is processed when the client PATCHes it to UploadComplete (the PATCH answers state
UploadComplete). With `processing_seconds` at 0 the next GET shows JobComplete; otherwise the job is
InProgress for that long (real time) and is processed when a GET finds it due, as Salesforce's
queue makes clients poll (Bulk API 2.0 Developer Guide, "Job States"). A query job runs when it is
created. Result CSVs use Salesforce's columns: sf__Id, sf__Created (successes), sf__Id, sf__Error
("CODE:message:fields --") for failures. CSV cells follow Bulk API rules: on update/upsert an empty
cell leaves the field alone and #N/A sets it to null. One CSV upload per job; a second is refused.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.salesforce import render, soql
from sandbox.salesforce.ids import JOB_PREFIX, IdFactory
from sandbox.salesforce.schema import OBJECT_INFOS, ObjectDef, object_def
from sandbox.salesforce.store import EXTERNAL_ID, Store
from sandbox.salesforce.validation import RecordError, RecordFailed

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


class BulkError(Exception):
    """A request the Bulk API refuses as a whole (HTTP status + errorCode + message)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass
class Job:
    id: str
    kind: str  # ingest / query
    operation: str
    object: str
    created: datetime
    version: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id_field: str | None = None
    state: str = "Open"
    modstamp: datetime | None = None
    upload: str | None = None
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    header: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    query: str | None = None
    result_rows: list[list[str]] = field(default_factory=list)
    due: float | None = None  # monotonic time at which a queued ingest job is processed

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": "005SB0000000001AAA",
            "createdDate": render.format_datetime(self.created),
            "systemModstamp": render.format_datetime(self.modstamp or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.kind == "ingest":
            out["externalIdFieldName"] = self.external_id_field
            out["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
            out["jobType"] = "V2Ingest"
        else:
            out["jobType"] = "V2Query"
        if self.state != "Open":
            out.update(
                numberRecordsProcessed=self.processed,
                retries=0,
                totalProcessingTime=0,
                apiActiveProcessingTime=0,
                apexProcessingTime=0,
            )
            if self.kind == "ingest":
                out["numberRecordsFailed"] = self.failed
            if self.error_message:
                out["errorMessage"] = self.error_message
        return out


def _csv_text(rows: list[list[str]], delimiter: str, line_ending: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return buffer.getvalue()


def _error_text(errors: list[RecordError]) -> str:
    return " ".join(f"{e.status_code}:{e.message}:{','.join(e.fields)} --" for e in errors)


class BulkJobs:
    def __init__(self, store: Store, ids: IdFactory, processing_seconds: float = 0.0) -> None:
        self.store = store
        self.ids = ids
        self.processing_seconds = processing_seconds
        self.jobs: dict[str, Job] = {}

    def reset(self) -> None:
        self.jobs.clear()

    def get(self, kind: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def list(self, kind: str) -> dict[str, Any]:
        records = [job.info() for job in self.jobs.values() if job.kind == kind]
        return {"done": True, "records": records, "nextRecordsUrl": None}

    # ---- ingest -----------------------------------------------------------------------------------
    def create_ingest(self, body: dict[str, Any], version: str, now: datetime) -> Job:
        operation = body.get("operation")
        obj = object_def(str(body.get("object") or ""))
        if operation not in INGEST_OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid job operation: {operation}")
        if obj is None:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}")
        if (body.get("contentType") or "CSV") != "CSV":
            raise BulkError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            fdef = obj.field(str(external or ""))
            if fdef is None or not (fdef.external_id or fdef.name == "Id"):
                raise BulkError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {external} is not an "
                    f"External ID or indexed field for {obj.name}",
                )
            external = fdef.name
        job = Job(
            id=self.ids.new(JOB_PREFIX),
            kind="ingest",
            operation=operation,
            object=obj.name,
            created=now,
            version=version,
            column_delimiter=body.get("columnDelimiter") or "COMMA",
            line_ending=body.get("lineEnding") or "LF",
            external_id_field=external if operation == "upsert" else None,
        )
        if job.column_delimiter not in DELIMITERS or job.line_ending not in LINE_ENDINGS:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding")
        self.jobs[job.id] = job
        return job

    def upload(self, job_id: str, data: bytes) -> None:
        job = self.get("ingest", job_id)
        if job.state != "Open" or job.upload is not None:
            raise BulkError(409, "INVALIDJOBSTATE", f"Job {job.id} is not open for uploads or already has data")
        job.upload = data.decode("utf-8-sig")

    def set_state(self, kind: str, job_id: str, state: str | None, now: datetime) -> dict[str, Any]:
        """Apply a state change; return the job info to answer with (state as of the change)."""
        job = self.get(kind, job_id)
        job.modstamp = now
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise BulkError(409, "INVALIDJOBSTATE", f"Job {job.id} is already {job.state}")
            job.state = "Aborted"
            return job.info()
        if kind != "ingest" or state != "UploadComplete":
            raise BulkError(400, "INVALIDJOBSTATE", f"Invalid state change to {state}")
        if job.state != "Open":
            raise BulkError(409, "INVALIDJOBSTATE", f"Job {job.id} is not Open")
        job.state = "UploadComplete"
        info = job.info()
        if self.processing_seconds > 0:
            job.due = time.monotonic() + self.processing_seconds
        else:
            self._process(job, now)
        return info

    def settle(self, now: datetime) -> None:
        """Move queued ingest jobs on: InProgress until due, then processed (JobComplete or Failed)."""
        for job in self.jobs.values():
            if job.due is None or job.state not in ("UploadComplete", "InProgress"):
                continue
            if time.monotonic() >= job.due:
                job.due = None
                self._process(job, now)
            else:
                job.state = "InProgress"

    def _process(self, job: Job, now: datetime) -> None:
        if not job.upload:
            job.state, job.error_message = "Failed", "InvalidBatch : No data was uploaded for this job"
            return
        reader = csv.reader(
            io.StringIO(job.upload, newline=""), delimiter=DELIMITERS[job.column_delimiter], strict=False
        )
        rows = list(reader)
        header, data = rows[0], [r for r in rows[1:] if r]
        obj = object_def(job.object)
        assert obj is not None
        problem = self._header_problem(obj, job, header)
        if problem:
            job.state, job.error_message = "Failed", problem
            job.unprocessed = [header, *data]
            return
        job.header = header
        for row in data:
            values = dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
            try:
                record_id, created = self._apply(obj, job, values, now)
                job.successes.append([record_id, "true" if created else "false", *row])
            except RecordFailed as failed:
                job.failures.append(["", _error_text(failed.errors), *row])
                job.failed += 1
            job.processed += 1
        job.state = "JobComplete"

    @staticmethod
    def _header_problem(obj: ObjectDef, job: Job, header: list[str]) -> str | None:
        if not header or header == [""]:
            return "InvalidBatch : Failed to parse CSV header"
        for name in header:
            if obj.field(name) is None:
                return f"InvalidBatch : Field name not found : {name}"
        lowered = [h.lower() for h in header]
        if job.operation in ("delete", "hardDelete") and lowered != ["id"]:
            return "InvalidBatch : The 'delete' batch must contain only ids"
        if job.operation == "update" and "id" not in lowered:
            return "InvalidBatch : Field name not found : Id"
        if job.operation == "upsert" and (job.external_id_field or "").lower() not in lowered:
            return f"InvalidBatch : Field name not found : {job.external_id_field}"
        return None

    def _apply(self, obj: ObjectDef, job: Job, values: dict[str, str], now: datetime) -> tuple[str, bool]:
        def cells(skip: tuple[str, ...] = ()) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, cell in values.items():
                if name.lower() in skip:
                    continue
                if cell == "#N/A":
                    out[name] = None
                elif cell != "" or job.operation == "insert":
                    out[name] = cell or None
            return out

        record_id = next((v for k, v in values.items() if k.lower() == "id"), "")
        if job.operation == "insert":
            return self.store.create(obj, cells(), now), True
        if job.operation == "update":
            return self.store.update(obj, record_id, cells(("id",)), now), False
        if job.operation in ("delete", "hardDelete"):
            return self.store.delete(obj, record_id, now), False
        key = next(v for k, v in values.items() if k.lower() == (job.external_id_field or "").lower())
        if job.external_id_field == EXTERNAL_ID and key:
            return self.store.upsert(key, cells(), now)
        if job.external_id_field == "Id" and key:
            return self.store.update(obj, key, cells(("id",)), now), False
        if not key:
            return self.store.create(obj, cells(("id",)), now), True
        raise RecordFailed([RecordError("INVALID_FIELD", f"Upsert on {job.external_id_field} is not supported")])

    def ingest_results(self, job_id: str, which: str) -> str:
        job = self.get("ingest", job_id)
        if job.state in ("UploadComplete", "InProgress"):
            raise BulkError(400, "INVALIDJOBSTATE", f"Job {job.id} is not complete")
        delimiter, ending = DELIMITERS[job.column_delimiter], LINE_ENDINGS[job.line_ending]
        which = which.lower()
        if which == "successfulresults":
            rows = [["sf__Id", "sf__Created", *job.header], *job.successes] if job.header else []
        elif which == "failedresults":
            rows = [["sf__Id", "sf__Error", *job.header], *job.failures] if job.header else []
        else:
            rows = job.unprocessed
        return _csv_text(rows, delimiter, ending)

    # ---- query ------------------------------------------------------------------------------------
    def create_query(self, body: dict[str, Any], version: str, now: datetime) -> dict[str, Any]:
        """Create and run a query job; answer with state UploadComplete as Salesforce does."""
        operation = body.get("operation") or "query"
        if operation not in ("query", "queryAll"):
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid job operation: {operation}")
        text = str(body.get("query") or "")
        try:
            query = soql.parse(text, OBJECT_INFOS)
        except soql.SoqlError as exc:
            raise BulkError(400, exc.error_code, exc.message) from exc
        job = Job(
            id=self.ids.new(JOB_PREFIX),
            kind="query",
            operation=operation,
            object=query.sobject,
            created=now,
            version=version,
            column_delimiter=body.get("columnDelimiter") or "COMMA",
            line_ending=body.get("lineEnding") or "LF",
            query=text,
        )
        if job.column_delimiter not in DELIMITERS or job.line_ending not in LINE_ENDINGS:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding")
        rows = self.store.run_query(query, include_deleted=operation == "queryAll", now=now)
        job.header = [p.dotted for p in query.fields]
        job.result_rows = [
            [render.csv_value(soql.resolve_value(row, p, self.store.parent)) for p in query.fields] for row in rows
        ]
        job.processed = len(rows)
        info = job.info()
        job.state = "JobComplete"
        self.jobs[job.id] = job
        return {**info, "state": "UploadComplete"}

    def query_results(self, job_id: str, locator: str | None, max_records: int | None) -> tuple[str, int, str]:
        """CSV text, record count, and the next locator ("null" at the end)."""
        job = self.get("query", job_id)
        if job.state != "JobComplete":
            raise BulkError(400, "INVALIDJOBSTATE", f"Job {job.id} is not complete")
        start = 0
        if locator and locator != "null":
            try:
                start = int(base64.b64decode(locator.encode()).decode())
            except ValueError as exc:
                raise BulkError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}") from exc
        size = max_records if max_records and max_records > 0 else 50000
        page = job.result_rows[start : start + size]
        end = start + len(page)
        next_locator = base64.b64encode(str(end).encode()).decode() if end < len(job.result_rows) else "null"
        text = _csv_text([job.header, *page], DELIMITERS[job.column_delimiter], LINE_ENDINGS[job.line_ending])
        return text, len(page), next_locator

    def delete(self, kind: str, job_id: str) -> None:
        self.get(kind, job_id)
        del self.jobs[job_id]
