"""Salesforce contacts written, a result per record: sObject Collections of 200 (upsert on the link field, update
and delete by Id), or one Bulk API 2.0 ingest job for large loads.

Every write is idempotent, so any request may be sent again: a create is an upsert on the link (a retry finds the
contact it made), and a Bulk API job is created once, then uploaded, closed, polled and read by its id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation

from crm_sync.hooks import soql
from crm_sync.hooks.base import parallel_refs
from crm_sync.hooks.contacts import ContactWrite
from crm_sync.hooks.refusals import salesforce_refusal
from crm_sync.hooks.results import RecordResult
from crm_sync.hooks.sf_bulk import ingest_csv, job_results
from crm_sync.hooks.sf_errors import SalesforceApiError
from crm_sync.hooks.sf_reads import SalesforceReads
from crm_sync.hooks.sf_session import bulk_client
from include.sync_logic.sides import Action

COLLECTION_SIZE = 200  # sObject Collections accept up to 200 records a request
WriteOperation = Literal["upsert", "update", "delete"]
Row = Mapping[str, Any]  # one record as Salesforce takes it: field API names and values


class SalesforceWrites(SalesforceReads):
    """The contacts hook's writes (see `ContactsHook.write_contacts`)."""

    def write_contacts(
        self,
        action: Action,
        records: Sequence[ContactWrite],
        refs: Sequence[str],
        *,
        link_field: str,
        bulk: bool = False,
    ) -> list[RecordResult]:
        """Creates upsert on `link_field` (a retried request creates no duplicates), updates and deletes name
        their Id; sObject Collections of 200, or one Bulk API 2.0 ingest job when `bulk`."""
        refs = parallel_refs(records, refs)
        if not records:
            return []
        (link_field,) = soql.check_fields([link_field])
        match action:
            case Action.CREATE:
                rows = [dict(record.fields) for record in records]
                return (
                    self._bulk_write("upsert", rows, refs, link_field) if bulk else self._upsert(rows, refs, link_field)
                )
            case Action.UPDATE:
                rows = [{"Id": str(record.target_id), **record.fields} for record in records]
                return self._bulk_write("update", rows, refs, link_field) if bulk else self._update(rows, refs)
            case Action.DELETE:
                ids = [str(record.target_id) for record in records]
                if bulk:
                    return self._bulk_write("delete", [{"Id": cid} for cid in ids], refs, link_field)
                return self._delete(ids, refs)
        raise ValueError(f"Salesforce: cannot write {action!r}")

    # -- sObject Collections ----------------------------------------------------------------------

    def _upsert(self, rows: Sequence[Row], refs: list[str], link_field: str) -> list[RecordResult]:
        path = f"composite/sobjects/Contact/{link_field}"
        return self._collections(
            "upsert",
            rows,
            refs,
            lambda sf, body: sf.restful(path, method="PATCH", json=body, headers=self.duplicate_rule_header),
        )

    def _update(self, rows: Sequence[Row], refs: list[str]) -> list[RecordResult]:
        """Update by Id; a record refused for values of fields it carries is sent again without them."""
        return self._collections(
            "update",
            rows,
            refs,
            lambda sf, body: sf.restful(
                "composite/sobjects", method="PATCH", json=body, headers=self.duplicate_rule_header
            ),
            drop_refused=True,
        )

    def _delete(self, ids: Sequence[str], refs: list[str]) -> list[RecordResult]:
        """Delete by Id (to the recycle bin), 200 ids a request."""

        def write(part: slice) -> list[RecordResult]:
            params = {"ids": ",".join(ids[part]), "allOrNone": "false"}
            response = self._call("delete", lambda sf: sf.restful("composite/sobjects", method="DELETE", params=params))
            return collection_results(response or [], refs[part], "delete")

        return self.write_in_batches("delete", len(ids), COLLECTION_SIZE, write)

    def _collections(
        self,
        what: str,
        rows: Sequence[Row],
        refs: list[str],
        send: Callable[[Salesforce, dict[str, Any]], Any],
        *,
        drop_refused: bool = False,
    ) -> list[RecordResult]:
        """Collections of up to 200 records; `drop_refused`: see `resend_without_refused`."""

        def send_part(part: Sequence[Row], part_refs: Sequence[str]) -> list[RecordResult]:
            body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, **row} for row in part]}
            return collection_results(self._call(what, lambda sf: send(sf, body)) or [], part_refs, what)

        def write(part: slice) -> list[RecordResult]:
            results = send_part(rows[part], refs[part])
            if not drop_refused:
                return results
            part_refs = refs[part]
            return self.resend_without_refused(
                what,
                rows[part],
                results,
                _without_refused,
                lambda positions, again: send_part(again, [part_refs[i] for i in positions]),
            )

        return self.write_in_batches(what, len(rows), COLLECTION_SIZE, write)

    # -- Bulk API 2.0 ingest ------------------------------------------------------------------------

    def _bulk_write(
        self, operation: WriteOperation, rows: Sequence[Row], refs: list[str], external_id_field: str
    ) -> list[RecordResult]:
        """A Bulk API 2.0 ingest job (upsert on the external id, update or delete by Id) for large loads.

        Results come from the job's successfulResults / failedResults / unprocessedrecords, matched
        back to the inputs by their key (the external id for upsert, else Id).
        """
        key = external_id_field if operation == "upsert" else "Id"
        by_key = {str(row.get(key)): ref for row, ref in zip(rows, refs, strict=True)}
        if len(by_key) != len(rows):
            raise ValueError(f"bulk {operation}: every record needs a distinct {key}")
        data = ingest_csv(operation, rows)
        # A job that was never closed is never processed, so creating and uploading again is harmless;
        # from the close on, every step reads the same job by id.
        job = self._call(
            f"bulk {operation} job",
            lambda sf: bulk_client(sf).create_job(
                Operation(operation), external_id_field=external_id_field if operation == "upsert" else None
            ),
        )
        job_id = job["id"]
        self.log.info("Salesforce: bulk %s job %s created for %d records", operation, job_id, len(rows))
        self._call("bulk upload", lambda sf: bulk_client(sf).upload_job_data(job_id, data))
        self._close_job(job_id)
        self._wait_for_job(job_id, is_query=False)
        results = self._job_results(job_id, operation, key, by_key)
        self.log_results(f"bulk {operation} job {job_id}", results)
        return results

    def _close_job(self, job_id: str) -> None:
        """PATCH UploadComplete; when a resent close is refused because the first one landed, go on."""
        try:
            self._call("bulk close", lambda sf: bulk_client(sf).close_job(job_id))
        except SalesforceApiError:
            state = self._call("bulk poll", lambda sf: bulk_client(sf).get_job(job_id, False))["state"]
            if state == "Open":
                raise
            self.log.info("Salesforce: bulk job %s already closed (%s)", job_id, state)

    def _job_results(self, job_id: str, operation: str, key: str, by_key: dict[str, str]) -> list[RecordResult]:
        """A result per input from the finished job's three result sets; an input none names is reported so."""

        def fetch(kind: str) -> str:
            return str(self._call(f"bulk {kind}", lambda sf: bulk_client(sf).get_ingest_results(job_id, kind)))

        results = job_results(
            job_id,
            operation,
            key,
            by_key,
            fetch("successfulResults"),
            fetch("failedResults"),
            fetch("unprocessedrecords"),
        )
        seen = {result.ref for result in results}
        results.extend(
            RecordResult(ref=ref, target_id=None, ok=False, error_code="NO_RESULT", message="absent from job results")
            for ref in by_key.values()
            if ref not in seen
        )
        return results


def collection_results(response: Sequence[Mapping[str, Any]], refs: Sequence[str], what: str) -> list[RecordResult]:
    """sObject Collections answer one item per input, in input order."""
    if len(response) != len(refs):
        raise ValueError(f"{what}: {len(response)} results for {len(refs)} records")
    results = []
    for item, ref in zip(response, refs, strict=True):
        if item.get("success"):
            results.append(RecordResult(ref=ref, target_id=item.get("id"), ok=True, created=bool(item.get("created"))))
            continue
        refusal = salesforce_refusal(item.get("errors") or [])
        results.append(
            RecordResult(
                ref=ref,
                target_id=item.get("id"),
                ok=False,
                error_code=refusal.code,
                message=refusal.message or None,
                permanent=refusal.permanent,
                refused_fields=",".join(refusal.fields) or None,
            )
        )
    return results


def _without_refused(result: RecordResult, row: Row) -> Row | None:
    """`row` without every field its refusal names, when it carries them all and others besides Id (a validation
    rule may name a field the record did not send; a record left with nothing to write is refused whole)."""
    named = {name.lower() for name in (result.refused_fields or "").split(",") if name}
    sent = {name.lower() for name in row} - {"id"}
    if result.ok or not named or not named < sent:
        return None
    return {name: value for name, value in row.items() if name.lower() not in named}
