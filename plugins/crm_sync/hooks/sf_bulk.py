"""Bulk API 2.0 ingest pieces that need no connection: the CSV a job uploads, the poll schedule, and the
per-record results read back by job id.

A job is created once; upload, close, every poll and every result download are separate requests, so
a failure while polling retries that poll on the same job instead of sending the rows again as a
second job (Bulk API 2.0 Developer Guide: "Upload Complete", "Job States", "Get Job Successful /
Failed / Unprocessed Record Results").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from crm_sync.hooks.refusals import salesforce_bulk_refusal
from crm_sync.hooks.results import RecordResult

BULK_NULL = "#N/A"  # Bulk API CSV: an empty cell leaves a field alone, #N/A sets it to null
DONE_STATES = ("JobComplete", "Failed", "Aborted")


class BulkJobFailed(Exception):
    """The job ended Failed or Aborted: nothing per record to report, the whole batch must be retried."""

    def __init__(self, job_id: str, state: str, message: str | None) -> None:
        super().__init__(f"Salesforce bulk job {job_id} ended {state}: {message or 'no errorMessage'}")
        self.job_id = job_id
        self.state = state


def ingest_csv(operation: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The job's CSV: delete jobs carry only Id; None becomes #N/A (set to null), absent cells stay empty."""
    if operation == "delete":
        rows: list[dict[str, Any]] = [{"Id": str(record["Id"])} for record in records]
    else:
        rows = [{name: BULK_NULL if value is None else value for name, value in record.items()} for record in records]
    header = list(dict.fromkeys(name for row in rows for name in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def poll_intervals(first: float, *, factor: float = 1.5, cap: float = 30.0) -> Iterator[float]:
    """Waits between job polls: `first`, then growing by `factor` up to `cap` seconds."""
    wait = max(first, 0.01)
    while True:
        yield wait
        wait = min(cap, wait * factor)


def job_results(
    job_id: str,
    operation: str,
    key: str,
    by_key: Mapping[str, str],
    successful: str,
    failed: str,
    unprocessed: str,
) -> list[RecordResult]:
    """Per-record results from the three result CSVs, matched to the caller's refs by `key`."""
    results: list[RecordResult] = []
    for row in _rows(successful):
        results.append(
            RecordResult(
                ref=by_key.get(row.get(key) or row.get("sf__Id", ""), row.get("sf__Id", "")),
                target_id=row.get("sf__Id") or None,
                ok=True,
                created=(row.get("sf__Created", "").lower() == "true"),
            )
        )
    for row in _rows(failed):
        code, _, message = (row.get("sf__Error") or "").partition(":")
        results.append(
            RecordResult(
                ref=by_key.get(row.get(key, ""), row.get(key, "")),
                target_id=row.get("sf__Id") or None,
                ok=False,
                error_code=code or "UNKNOWN",
                message=message.strip() or None,
                permanent=salesforce_bulk_refusal(code),
            )
        )
    for row in _rows(unprocessed):
        results.append(
            RecordResult(
                ref=by_key.get(row.get(key, ""), row.get(key, "")),
                target_id=None,
                ok=False,
                error_code="UNPROCESSED",
                message=f"not processed by bulk {operation} job {job_id}",
            )
        )
    return results


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
