"""Salesforce hook for the contact sync: owns the connection, the token and the simple-salesforce client.

It subclasses the provider's `SalesforceHook` (same conn type and connection id) but authenticates
itself, because simple-salesforce only logs in to `*.salesforce.com`: the token comes from
`{login_url}/services/oauth2/token` (see `sf_auth`) and the client is built from the instance URL and
access token, on a requests session that carries the shared rate-limit adapter. TLS is always verified;
a private CA is trusted through REQUESTS_CA_BUNDLE.

Every request runs through `_call`, under the shared base's tenacity policy, the only retry layer (the
rate-limit adapter never resends): transient failures (429, 5xx, timeouts, dropped connections) are
retried with backoff, an expired session (401 INVALID_SESSION_ID) is re-authenticated once, and
permanent errors pass through untouched. Reads are paged one request at a time so a retry resumes at
the failed page instead of restarting the stream; a Bulk API job is created once and then polled and
read by its id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote_plus, urlsplit

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce import Salesforce
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import SalesforceExpiredSession
from simple_salesforce.util import exception_handler

from crm_sync.hooks import soql
from crm_sync.hooks.base import ContactsHookMixin, parallel_refs
from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.pools import DEFAULT_REDIS_CONN_ID
from crm_sync.hooks.refusals import salesforce_refusal
from crm_sync.hooks.results import RecordResult, written_without
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.sf_auth import SalesforceCredentials, fetch_token
from crm_sync.hooks.sf_bulk import DONE_STATES, BulkJobFailed, ingest_csv, job_results, poll_intervals
from crm_sync.hooks.sf_errors import SalesforceApiError, classify, classify_answer
from crm_sync.hooks.sf_frames import csv_to_frame, records_to_frame
from crm_sync.hooks.sf_preflight import link_field_problems
from crm_sync.ratelimit import Limit, RateLimitedAdapter, RateLimitPool, salesforce_limits
from include.sync_logic.read_plan import pages
from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

COLLECTION_SIZE = 200  # sObject Collections accept up to 200 records a request
COMPOSITE_QUERIES = 5  # a composite request holds up to 25 subrequests, at most 5 of them queries
DUPLICATE_RULE_HEADER = "Sforce-Duplicate-Rule-Header"  # REST API 52.0+; Bulk API jobs ignore it
WriteOperation = Literal["upsert", "update", "delete"]


class SalesforceContactsHook(ContactsHookMixin, SalesforceHook):
    """Contacts in Salesforce: windowed extracts, counterpart look-ups and per-record-result writes.

    :param salesforce_conn_id: a `salesforce` connection (see CONTRACT.md for the flows and extras).
    :param chunk_rows: rows per yielded frame when iterating a window.
    :param bulk_threshold: above this many matching contacts a window is read with a Bulk API 2.0
        query job; defaults to the connection extra `bulk_threshold`, else 10,000.
    :param retry_policy: backoff for transient failures.
    :param bulk_poll_seconds: first wait before polling a Bulk API job (later waits grow).
    :param bulk_timeout_seconds: how long to poll a Bulk API job before giving up on it.
    :param request_timeout: (connect, read) seconds for every request.
    :param redis_conn_id: the Redis holding the shared rate-limit pool.
    :param max_wait_seconds: longest wait for the pool before `RateLimitWaitTooLong` (None: no cap).
    :param pool: the rate-limit pool, instead of the connection's shared one (tests, benchmarks).
    """

    hook_name = "Salesforce (contact sync)"
    side = Side.SALESFORCE

    def __init__(
        self,
        salesforce_conn_id: str = SalesforceHook.default_conn_name,
        *,
        chunk_rows: int = 5000,
        bulk_threshold: int | None = None,
        retry_policy: RetryPolicy | None = None,
        bulk_poll_seconds: float = 1.0,
        bulk_timeout_seconds: float = 3600.0,
        request_timeout: tuple[float, float] = (10.0, 120.0),
        redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
        max_wait_seconds: float | None = None,
        pool: RateLimitPool | None = None,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id)
        self.init_contacts_hook(
            retry_policy=retry_policy, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds, pool=pool
        )
        self.chunk_rows = chunk_rows
        self._bulk_threshold = bulk_threshold
        self.bulk_poll_seconds = bulk_poll_seconds
        self.bulk_timeout_seconds = bulk_timeout_seconds
        self.request_timeout = request_timeout
        self.reauthentications = 0

    # -- what the shared base needs ---------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        return self.conn_id

    def pool_limits(self) -> list[Limit]:
        """The org's daily API budget (see `salesforce_limits` for the extras)."""
        return salesforce_limits(self._extras)

    def probe(self) -> None:
        self._call("limits", lambda sf: sf.limits())

    def api_stats(self) -> dict[str, int | float]:
        """The shared counters and the sessions renewed after INVALID_SESSION_ID."""
        return {**super().api_stats(), "salesforce_reauthentications": self.reauthentications}

    # -- connection, token, client -------------------------------------------------------------

    @cached_property
    def _credentials(self) -> SalesforceCredentials:
        connection = self._connection
        return SalesforceCredentials.from_connection(connection.login, connection.password, self._extras)

    @property
    def api_version(self) -> str:
        return str(self._extras.get("version") or DEFAULT_API_VERSION)

    @property
    def duplicate_rule_header(self) -> dict[str, str]:
        """The REST writes' Sforce-Duplicate-Rule-Header from the connection extra `duplicate_rule_allow_save`
        (default false, as Salesforce's: an alert-only duplicate rule then blocks the save)."""
        allow = str(self._extras.get("duplicate_rule_allow_save", "false")).strip().lower() in ("true", "1", "yes")
        return {DUPLICATE_RULE_HEADER: f"allowSave={'true' if allow else 'false'}"}

    @property
    def bulk_threshold(self) -> int:
        if self._bulk_threshold is not None:
            return self._bulk_threshold
        return int(self._extras.get("bulk_threshold") or 10_000)

    @cached_property
    def http_session(self) -> requests.Session:
        """The one session every Salesforce request uses (token, REST, Bulk): the throttling point."""
        session = requests.Session()
        session.mount("https://", self._http_adapter())
        session.hooks["response"].append(self._on_response)
        return session

    def _http_adapter(self) -> RateLimitedAdapter:
        return RateLimitedAdapter(
            self.rate_limit_pool, max_wait_seconds=self.max_wait_seconds, timeout=self.request_timeout
        )

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count every answer; raise a transient one here, where its Retry-After is still at hand (the exception
        simple-salesforce makes of it carries no headers)."""
        self.api_calls += 1
        error = classify_answer(response.status_code, response.headers)
        if error is not None:
            response.close()
            raise error

    @cached_property
    def conn(self) -> Salesforce:  # type: ignore[override]
        """The client on a fresh token (no retry here: `get_conn` and every method go through `_call`)."""
        token = fetch_token(self.http_session, self._credentials, timeout=self.request_timeout[1])
        self.log.info("Salesforce: authenticated (%s flow)", self._credentials.flow)
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            version=self.api_version,
            session=self.http_session,
        )

    def get_conn(self) -> Salesforce:
        """The authenticated simple-salesforce client (the token request retried when transient)."""
        return self._call("login", lambda sf: sf)

    def _reauthenticate(self) -> None:
        self.__dict__.pop("conn", None)
        self.reauthentications += 1
        self.log.info("Salesforce: session expired, re-authenticating")
        _ = self.conn

    # -- the one request path -------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run `fn(client)` under the retry policy: call, classify (`sf_errors`), raise."""

        def attempt() -> T:
            try:
                return self._in_session(fn)
            except Exception as exc:
                error = classify(exc)
                if error is None:
                    raise
                # A permanent error leaves simple-salesforce's text behind: it holds the URL and the echoed query.
                raise error from (exc if isinstance(error, TransientError) else None)

        return self.with_retry(what, attempt)

    def _in_session(self, fn: Callable[[Salesforce], T]) -> T:
        """`fn(client)`, once more on a new session when the session expired (one that expires again at once is
        transient: the retry logs in anew)."""
        try:
            return fn(self.conn)
        except SalesforceExpiredSession:
            self._reauthenticate()
            return fn(self.conn)

    def preflight(self, link_field: str, *, writes: bool) -> list[str]:
        """The link field's problems (the same for a dry run: its reads look up by it)."""
        return self.link_field_problems(link_field)

    def link_field_problems(self, field: str) -> list[str]:
        """Why Contact `field` cannot hold the link (missing, not External ID, not Unique, not editable),
        each with the fix in Setup; empty when it can. One describe call: cheap enough for a preflight."""
        (field,) = soql.check_fields([field])
        described = self._call("describe", lambda sf: sf.Contact.describe())
        problems = link_field_problems(described.get("fields", []), field)
        self.log.info("Salesforce: link field %s: %d problems", field, len(problems))
        return problems

    # -- reads ----------------------------------------------------------------------------------

    def iter_changed_contacts(
        self,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        include_deleted: bool = False,
        use_bulk: bool | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Contacts with SystemModstamp in [start, end) as frames of at most `chunk_rows` rows.

        Columns are `fields` (relationship fields flattened, timestamps UTC, IsDeleted bool).
        `include_deleted` reads the recycle bin too (queryAll). By default the window is read over
        REST unless the first page's totalSize (the whole query's count) is above `bulk_threshold`,
        then with a Bulk API 2.0 query job; `use_bulk` forces one or the other.
        """
        fields = soql.check_fields(fields)
        if use_bulk:
            yield from self._iter_bulk(soql.select_contacts_unordered(fields, start, end), fields, include_deleted)
            return
        query = soql.select_contacts(fields, start, end)
        first = self._call("query", lambda sf: sf.query(query, include_deleted=include_deleted))
        expected = int(first.get("totalSize", 0))
        if use_bulk is None and expected > self.bulk_threshold:
            self.log.info("Salesforce: %d contacts in window, above %d: Bulk API query", expected, self.bulk_threshold)
            yield from self._iter_bulk(soql.select_contacts_unordered(fields, start, end), fields, include_deleted)
            return
        self.log.info("Salesforce: %d contacts in window, REST query", expected)
        yield from self._iter_rest(first, fields)

    def iter_all_contacts(self, fields: Sequence[str], *, include_deleted: bool = False) -> Iterator[pd.DataFrame]:
        """Every contact (with the recycle bin when `include_deleted`), by Bulk API 2.0 query: full resync."""
        fields = soql.check_fields(fields)
        yield from self._iter_bulk(soql.select_contacts_unordered(fields), fields, include_deleted)

    def _iter_rest(self, page: dict[str, Any], fields: list[str]) -> Iterator[pd.DataFrame]:
        """Pages after the first via nextRecordsUrl, each its own retried request; frames of chunk_rows."""
        buffer: list[dict[str, Any]] = []
        pages = 1
        while True:
            buffer.extend(page["records"])
            while len(buffer) >= self.chunk_rows:
                yield records_to_frame(buffer[: self.chunk_rows], fields)
                buffer = buffer[self.chunk_rows :]
            if page.get("done", True):
                break
            next_url = page["nextRecordsUrl"]
            page = self._call("query_more", lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True))
            pages += 1
        if buffer:
            yield records_to_frame(buffer, fields)
        self.log.info("Salesforce: query read in %d pages", pages)

    def _iter_bulk(self, query: str, fields: list[str], include_deleted: bool) -> Iterator[pd.DataFrame]:
        """A Bulk API 2.0 query job; result pages fetched by locator, each its own retried request."""
        operation = Operation.query_all if include_deleted else Operation.query
        job = self._call("bulk query job", lambda sf: _bulk_client(sf).create_job(operation, query))
        job_id = job["id"]
        self.log.info("Salesforce: bulk query job %s created", job_id)
        self._wait_for_job(job_id, is_query=True)
        locator = ""
        while True:
            result = self._call(
                "bulk query results",
                lambda sf, loc=locator: _bulk_client(sf).get_query_results(job_id, loc, self.chunk_rows),
            )
            yield csv_to_frame(result["records"], fields)
            locator = result["locator"]
            if not locator:
                break

    def count_contacts(self) -> int:
        """How many contacts the org holds (recycle bin excluded): one `SELECT COUNT()` query."""
        return int(self._call("count", lambda sf: sf.query(soql.count_contacts()))["totalSize"])

    def merged_contacts(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Contacts merged away in [start, end): `Id`, `MasterRecordId`, `SystemModstamp` of the deleted rows that
        name a master (queryAll, the query Salesforce's SOAP guide gives; one call, more only past 2,000 rows)."""
        import pandas as pd

        fields = ["Id", "MasterRecordId", "SystemModstamp"]
        query = f"SELECT {', '.join(fields)} FROM Contact{soql.window_where(start, end)}"
        query += " AND IsDeleted = true AND MasterRecordId != null"
        first = self._call("query", lambda sf: sf.query(query, include_deleted=True))
        frames = list(self._iter_rest(first, fields))
        return pd.concat(frames, ignore_index=True) if frames else records_to_frame([], fields)

    def lookup_calls(
        self, key: LookupKey, values: Sequence[str], fields: Sequence[str], *, link_field: str | None = None
    ) -> int:
        """The composite calls `fetch_contacts` would send for these values (each IN query answers in one page)."""
        column = _lookup_column(key, link_field)
        queries = sum(1 for _ in soql.chunk_in_queries(soql.check_fields(fields), column, [str(v) for v in values]))
        return pages(queries, COMPOSITE_QUERIES)

    def whole_read_calls(self, contacts: int) -> int:
        """Calls of `iter_all_contacts` for this many contacts: the job, a status poll, the result pages."""
        return 2 + pages(contacts, self.chunk_rows)

    def fetch_contacts(
        self,
        key: LookupKey,
        values: Sequence[str],
        fields: Sequence[str],
        *,
        link_field: str | None = None,
        include_deleted: bool = False,
    ) -> pd.DataFrame:
        """Contacts by Id, by email (Salesforce compares emails case-insensitively) or by the link field holding
        HubSpot ids; unknown values are left out. `include_deleted` reads the recycle bin too (queryAll)."""
        return self._fetch_in(fields, _lookup_column(key, link_field), values, include_deleted)

    def _fetch_in(
        self, fields: Sequence[str], column: str, values: Sequence[str], include_deleted: bool
    ) -> pd.DataFrame:
        import pandas as pd

        fields = soql.check_fields(fields)
        queries = list(soql.chunk_in_queries(fields, column, [str(v) for v in values if v is not None]))
        frames = []
        for start in range(0, len(queries), COMPOSITE_QUERIES):
            group = queries[start : start + COMPOSITE_QUERIES]
            answers = self._call("query", lambda sf, g=group: _composite_queries(sf, g, include_deleted))
            for first in answers:
                frames.extend(self._iter_rest(first, fields))
        self.log.info(
            "Salesforce: fetched %d contacts by %s in %d IN queries, %d composite calls",
            sum(map(len, frames)),
            column,
            len(queries),
            pages(len(queries), COMPOSITE_QUERIES),
        )
        if not frames:
            return records_to_frame([], fields)
        return pd.concat(frames, ignore_index=True)

    # -- writes: sObject Collections ------------------------------------------------------------

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

    def _update(self, records: Sequence[Mapping[str, Any]], refs: list[str]) -> list[RecordResult]:
        """Update by Id (each record carries `Id`)."""
        return self._collections(
            "update",
            records,
            refs,
            lambda sf, body: sf.restful(
                "composite/sobjects", method="PATCH", json=body, headers=self.duplicate_rule_header
            ),
            drop_refused=True,
        )

    def _upsert(self, records: Sequence[Mapping[str, Any]], refs: list[str], link_field: str) -> list[RecordResult]:
        """Upsert by the external id `link_field`."""
        path = f"composite/sobjects/Contact/{link_field}"
        return self._collections(
            "upsert",
            records,
            refs,
            lambda sf, body: sf.restful(path, method="PATCH", json=body, headers=self.duplicate_rule_header),
        )

    def _delete(self, ids: Sequence[str], refs: list[str]) -> list[RecordResult]:
        """Delete by Id (to the recycle bin), 200 ids a request."""

        def write(part: slice) -> list[RecordResult]:
            params = {"ids": ",".join(ids[part]), "allOrNone": "false"}
            response = self._call("delete", lambda sf: sf.restful("composite/sobjects", method="DELETE", params=params))
            return _collection_results(response or [], refs[part], "delete")

        return self.write_in_batches("delete", len(ids), COLLECTION_SIZE, write)

    def _collections(
        self,
        what: str,
        records: Sequence[Mapping[str, Any]],
        refs: list[str],
        send: Callable[[Salesforce, dict[str, Any]], Any],
        *,
        drop_refused: bool = False,
    ) -> list[RecordResult]:
        """Collections of up to 200 records. `drop_refused` (updates: the record exists): a record refused for
        values of fields it carries is sent once more without them, so its other fields are written and the
        refusal stays on its result (as reconcile rejects a refused value alone; a create is refused whole)."""

        def send_part(part: Sequence[Mapping[str, Any]], part_refs: Sequence[str]) -> list[RecordResult]:
            body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, **record} for record in part]}
            response = self._call(what, lambda sf: send(sf, body))
            return _collection_results(response or [], part_refs, what)

        def write(part: slice) -> list[RecordResult]:
            results = send_part(records[part], refs[part])
            again = [
                (index, {k: v for k, v in record.items() if k not in dropped})
                for index, (record, result) in enumerate(zip(records[part], results, strict=True))
                if drop_refused and (dropped := _droppable(result, record))
            ]
            if again:
                self.log.info("Salesforce %s: %d records sent again without their refused fields", what, len(again))
                retried = send_part([record for _, record in again], [results[i].ref for i, _ in again])
                for (index, _), result in zip(again, retried, strict=True):
                    results[index] = written_without(result, results[index])
            return results

        return self.write_in_batches(what, len(records), COLLECTION_SIZE, write)

    # -- writes: Bulk API 2.0 ingest --------------------------------------------------------------

    def _bulk_write(
        self, operation: WriteOperation, records: Sequence[Mapping[str, Any]], refs: list[str], external_id_field: str
    ) -> list[RecordResult]:
        """A Bulk API 2.0 ingest job (upsert on the external id, update or delete by Id) for large loads.

        Results come from the job's successfulResults / failedResults / unprocessedrecords, matched
        back to the inputs by their key (the external id for upsert, else Id).
        """
        key = external_id_field if operation == "upsert" else "Id"
        by_key = {str(record.get(key)): ref for record, ref in zip(records, refs, strict=True)}
        if len(by_key) != len(records):
            raise ValueError(f"bulk {operation}: every record needs a distinct {key}")
        data = ingest_csv(operation, records)

        # A job that was never closed is never processed, so creating and uploading again is harmless;
        # from the close on, every step reads the same job by id.
        job = self._call(
            f"bulk {operation} job",
            lambda sf: _bulk_client(sf).create_job(
                Operation(operation), external_id_field=external_id_field if operation == "upsert" else None
            ),
        )
        job_id = job["id"]
        self.log.info("Salesforce: bulk %s job %s created for %d records", operation, job_id, len(records))
        self._call("bulk upload", lambda sf: _bulk_client(sf).upload_job_data(job_id, data))
        self._close_job(job_id)
        self._wait_for_job(job_id, is_query=False)

        def fetch(kind: str) -> str:
            return self._call(f"bulk {kind}", lambda sf: _bulk_client(sf).get_ingest_results(job_id, kind))

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
            for ref in refs
            if ref not in seen
        )
        self.log_results(f"bulk {operation} job {job_id}", results)
        return results

    def _close_job(self, job_id: str) -> None:
        """PATCH UploadComplete; when a resent close is refused because the first one landed, go on."""
        try:
            self._call("bulk close", lambda sf: _bulk_client(sf).close_job(job_id))
        except SalesforceApiError:
            state = self._call("bulk poll", lambda sf: _bulk_client(sf).get_job(job_id, False))["state"]
            if state == "Open":
                raise
            self.log.info("Salesforce: bulk job %s already closed (%s)", job_id, state)

    def _wait_for_job(self, job_id: str, *, is_query: bool) -> None:
        """Poll the job by id until it is done, waits growing from `bulk_poll_seconds`; each poll is one
        retried request through the pool, so a 5xx or an expired session costs a poll, not the job."""
        waited, polls = 0.0, 0
        for wait in poll_intervals(self.bulk_poll_seconds):
            time.sleep(wait)
            waited += wait
            polls += 1
            info = self._call("bulk poll", lambda sf: _bulk_client(sf).get_job(job_id, is_query))
            state = info["state"]
            if state in DONE_STATES:
                break
            if waited > self.bulk_timeout_seconds:
                raise TimeoutError(f"Salesforce bulk job {job_id} still {state} after {waited:.0f}s")
        self.log.info("Salesforce: bulk job %s %s after %d polls (%.1fs)", job_id, state, polls, waited)
        if state != "JobComplete":
            raise BulkJobFailed(job_id, state, info.get("errorMessage"))


def _lookup_column(key: LookupKey, link_field: str | None) -> str:
    """The Contact field a look-up by `key` matches: Id, Email, or the link field holding HubSpot ids."""
    if key is LookupKey.COUNTERPART_ID:
        if not link_field:
            raise ValueError("a look-up by counterpart id needs the link field")
        return link_field
    return "Id" if key is LookupKey.OWN_ID else "Email"


def _composite_queries(sf: Salesforce, queries: Sequence[str], include_deleted: bool) -> list[dict[str, Any]]:
    """Up to 5 SOQL queries in one composite request, one call against the API budget (REST API guide:
    Composite); the first page of each, in order. A failed query raises as simple-salesforce would for it."""
    resource = "queryAll" if include_deleted else "query"
    path = f"{urlsplit(sf.base_url).path}{resource}/?q="
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "GET", "url": path + quote_plus(text), "referenceId": f"q{i}"} for i, text in enumerate(queries)
        ],
    }
    answers = (sf.restful("composite", method="POST", json=body) or {})["compositeResponse"]
    for answer in answers:
        if int(answer["httpStatusCode"]) >= 300:
            exception_handler(_subresponse(answer), resource)
    return [answer["body"] for answer in answers]


def _subresponse(answer: Mapping[str, Any]) -> requests.Response:
    """A failed subrequest as the HTTP response simple-salesforce's `exception_handler` reads (status, body, URL),
    so it raises the same error class a request of its own would have."""
    response = requests.Response()
    response.status_code = int(answer["httpStatusCode"])
    response._content = json.dumps(answer["body"]).encode()
    response.url = f"composite {answer['referenceId']}"
    return response


def _bulk_client(sf: Salesforce) -> _Bulk2Client:
    """simple-salesforce's Bulk API 2.0 client for Contact: one request per method, no hidden retries."""
    return sf.bulk2.Contact._client


def _collection_results(response: Sequence[Mapping[str, Any]], refs: Sequence[str], what: str) -> list[RecordResult]:
    """sObject Collections answer one item per input, in input order."""
    if len(response) != len(refs):
        raise ValueError(f"{what}: {len(response)} results for {len(refs)} records")
    results = []
    for item, ref in zip(response, refs, strict=True):
        ok = bool(item.get("success"))
        if ok:
            created = bool(item.get("created", False))
            results.append(RecordResult(ref=ref, target_id=item.get("id"), ok=True, created=created))
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


def _droppable(result: RecordResult, record: Mapping[str, Any]) -> set[str]:
    """The fields to leave out when sending `record` again: every field its refusal names, when the record carries
    them all and others besides Id (a validation rule may name a field the record did not send; a record left
    with nothing to write is refused whole)."""
    named = {name.lower() for name in (result.refused_fields or "").split(",") if name}
    sent = {name.lower() for name in record} - {"id"}
    if result.ok or not named or not named < sent:
        return set()
    return {name for name in record if name.lower() in named}
