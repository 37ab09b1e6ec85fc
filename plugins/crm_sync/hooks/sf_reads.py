"""Salesforce contacts read: a window over REST (a Bulk API 2.0 query above the size threshold), the whole org
by Bulk API query, look-ups as IN queries five to a composite call, the org's count and its merged-away rows.

Reads are paged one request at a time, so a retry resumes at the failed page instead of restarting the stream;
a Bulk API query job is created once, then polled and read by its id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.util import exception_handler

from crm_sync.hooks import soql
from crm_sync.hooks.contacts import LookupKey
from crm_sync.hooks.sf_frames import csv_to_frame, records_to_frame
from crm_sync.hooks.sf_session import SalesforceSession, bulk_client
from include.sync_logic.read_plan import pages

if TYPE_CHECKING:
    import pandas as pd

COMPOSITE_QUERIES = 5  # a composite request holds up to 25 subrequests, at most 5 of them queries


class SalesforceReads(SalesforceSession):
    """The contacts hook's reads (see `ContactsHook` for what each promises)."""

    own_id_field = "Id"
    email_field = "Email"

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
        read = 1
        while True:
            buffer.extend(page["records"])
            while len(buffer) >= self.chunk_rows:
                yield records_to_frame(buffer[: self.chunk_rows], fields)
                buffer = buffer[self.chunk_rows :]
            if page.get("done", True):
                break
            page = self._call("query_more", partial(_query_more, page["nextRecordsUrl"]))
            read += 1
        if buffer:
            yield records_to_frame(buffer, fields)
        self.log.info("Salesforce: query read in %d pages", read)

    def _iter_bulk(self, query: str, fields: list[str], include_deleted: bool) -> Iterator[pd.DataFrame]:
        """A Bulk API 2.0 query job; result pages fetched by locator, each its own retried request."""
        operation = Operation.query_all if include_deleted else Operation.query
        job = self._call("bulk query job", lambda sf: bulk_client(sf).create_job(operation, query))
        job_id = job["id"]
        self.log.info("Salesforce: bulk query job %s created", job_id)
        self._wait_for_job(job_id, is_query=True)
        locator = ""
        while True:
            result = self._call("bulk query results", partial(_query_results, job_id, locator, self.chunk_rows))
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
        column = self.lookup_field(key, link_field)
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
        import pandas as pd

        fields = soql.check_fields(fields)
        column = self.lookup_field(key, link_field)
        queries = list(soql.chunk_in_queries(fields, column, [str(v) for v in values if v is not None]))
        frames: list[pd.DataFrame] = []
        for start in range(0, len(queries), COMPOSITE_QUERIES):
            group = queries[start : start + COMPOSITE_QUERIES]
            answers = self._call("query", partial(_composite_queries, queries=group, include_deleted=include_deleted))
            for first in answers:
                frames.extend(self._iter_rest(first, fields))
        self.log.info(
            "Salesforce: fetched %d contacts by %s in %d IN queries, %d composite calls",
            sum(len(frame) for frame in frames),
            column,
            len(queries),
            pages(len(queries), COMPOSITE_QUERIES),
        )
        if not frames:
            return records_to_frame([], fields)
        return pd.concat(frames, ignore_index=True)


def _query_more(next_url: str, sf: Salesforce) -> dict[str, Any]:
    page: dict[str, Any] = sf.query_more(next_url, identifier_is_url=True)
    return page


def _query_results(job_id: str, locator: str, rows: int, sf: Salesforce) -> dict[str, Any]:
    """One page of a Bulk API query job's results, from `locator` ("" for the first)."""
    return dict(bulk_client(sf).get_query_results(job_id, locator, rows))


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
