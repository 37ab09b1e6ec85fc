"""The Salesforce sandbox HTTP app: OAuth token endpoint, REST query/queryAll, sObject CRUD and
upsert, sObject Collections, Bulk API 2.0, /limits, with Salesforce's status codes and error bodies.

Every REST call needs a Bearer token from /services/oauth2/token, counts against the daily budget
(403 REQUEST_LIMIT_EXCEEDED "TotalRequests Limit exceeded." once spent) and answers with
`Sforce-Limit-Info: api-usage=N/MAX`. A fault-injected burst answers what Salesforce answers when its
concurrent-request limit trips: 403 REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn Limit exceeded."
(Salesforce has no 429), so clients can tell a transient burst from the spent daily budget by message.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.core import App, Clock, Request, Response, parse_iso
from sandbox.salesforce import render, soql
from sandbox.salesforce.auth import ApiBudget, Credentials, OAuthError, Sessions
from sandbox.salesforce.bulk import BulkError, BulkJobs
from sandbox.salesforce.ids import QUERY_LOCATOR_PREFIX, IdFactory
from sandbox.salesforce.recycle import ReplicationError, earliest_available, replication_window
from sandbox.salesforce.schema import CONTACT, OBJECT_INFOS, OBJECTS, ObjectDef, object_def
from sandbox.salesforce.store import Store
from sandbox.salesforce.validation import DUPLICATE_HEADER, RecordError, RecordFailed, header_allows_save

log = logging.getLogger(__name__)

API = r"/services/data/v(?P<version>\d+\.\d)"
MIN_VERSION, MAX_VERSION = 31.0, 66.0
COLLECTION_LIMIT = 200
COMPOSITE_LIMIT, COMPOSITE_QUERY_LIMIT = 25, 5  # subrequests a composite call, of which queries
COMPOSITE_QUERY = re.compile(API + r"/(?P<kind>query|queryAll)/?$")
OPEN_CURSORS = 10  # Salesforce keeps at most 10 open query cursors per user; older ones are dropped
MIN_BATCH, MAX_BATCH = 200, 2000
ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
NOT_FOUND_BODY = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


class ApiFailure(Exception):
    """Abort a handler with a Salesforce error response."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.response = Response(status, [{"message": message, "errorCode": error_code, "fields": fields or []}])


@dataclass
class Cursor:
    sobject: str
    ids: list[str]
    paths: list[soql.Path]
    batch: int
    kind: str


def _errors_response(errors: list[RecordError]) -> Response:
    """Single-record REST failure: 404 for missing/deleted rows, else 400 with every error."""
    first = errors[0]
    if first.status_code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID") and first.fields in ([], ["Id"]):
        return Response(404, NOT_FOUND_BODY)
    if first.status_code == "ENTITY_IS_DELETED":
        return Response(404, [first.as_rest()])
    return Response(400, [e.as_rest() for e in errors])


class SalesforceApp(App):
    name = "salesforce"

    def __init__(
        self,
        clock: Clock | None = None,
        daily_api_limit: int = 100_000,
        page_size: int = 2000,
        consumer_key: str = "sandbox-consumer-key",
        consumer_secret: str = "sandbox-consumer-secret",
        username: str = "integration@sandbox.example.com",
        password: str = "sandbox-password",
        jwt_certificate: bytes | None = None,
        login_host: str | None = None,
        bulk_processing_seconds: float = 0.0,
    ) -> None:
        super().__init__(clock)
        self.page_size = max(MIN_BATCH, min(MAX_BATCH, page_size))
        self.sessions = Sessions(Credentials(consumer_key, consumer_secret, username, password, jwt_certificate))
        #: The address that plays login.salesforce.com (a generic login host, not the org's My Domain),
        #: and the My Domain URL its tokens point to (set once the My Domain listener is bound).
        self.login_host = login_host
        self.my_domain_url: str | None = None
        self.budget = ApiBudget(daily_api_limit)
        self.ids = IdFactory()
        self.store = Store(self.ids)
        self.bulk = BulkJobs(self.store, self.ids, bulk_processing_seconds)
        self.poll_faults: deque[int] = deque()  # statuses the next ingest job-info GETs answer with
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._register_routes()
        self.admin_route("POST", "api-usage", self._admin_api_usage)
        self.admin_route("POST", "bulk", self._admin_bulk)
        self.admin_route("POST", "merge", self._admin_merge)
        self.admin_route("POST", "undelete", self._admin_undelete)
        self.admin_route("GET", "rules", lambda req: self.store.rules.settings())
        self.admin_route("POST", "rules", lambda req: self.store.rules.configure(req.json() or {}))

    # ---- plumbing -------------------------------------------------------------------------------
    def now(self) -> datetime:
        return render.truncate_ms(self.clock.now())

    def _register_routes(self) -> None:
        def r(method: str, pattern: str, handler: Any) -> None:
            self.route(method, pattern, self._guard(handler))

        r("POST", r"/services/oauth2/token", self.token)
        r("GET", r"/services/data/?", self.versions)
        r("GET", API + r"/?", self.resources)
        r("GET", API + r"/limits/?", self.limits)
        r("GET", API + r"/(?P<kind>query|queryAll)/?", self.query)
        r("GET", API + r"/(?P<kind>query|queryAll)/(?P<locator>01g[A-Za-z0-9]+-\d+)/?", self.query_more)
        r("GET", API + r"/sobjects/?", self.describe_global)
        r("GET", API + r"/sobjects/(?P<sobject>\w+)/describe/?", self.describe)
        r("GET", API + r"/sobjects/(?P<sobject>\w+)/?", self.sobject_info)
        r("POST", API + r"/sobjects/(?P<sobject>\w+)/?", self.create)
        r("GET", API + r"/sobjects/(?P<sobject>\w+)/deleted/?", self.get_deleted)
        r("GET", API + r"/sobjects/(?P<sobject>\w+)/(?P<record_id>[^/]+)/?", self.retrieve)
        r("PATCH", API + r"/sobjects/(?P<sobject>\w+)/(?P<record_id>[^/]+)/?", self.update)
        r("DELETE", API + r"/sobjects/(?P<sobject>\w+)/(?P<record_id>[^/]+)/?", self.delete)
        r("GET", API + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?", self.retrieve_by_external)
        r("PATCH", API + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?", self.upsert)
        r("POST", API + r"/composite/sobjects/?", self.collection_create)
        r("PATCH", API + r"/composite/sobjects/?", self.collection_update)
        r("DELETE", API + r"/composite/sobjects/?", self.collection_delete)
        r("GET", API + r"/composite/sobjects/(?P<sobject>\w+)/?", self.collection_retrieve)
        r("POST", API + r"/composite/?", self.composite)
        r("PATCH", API + r"/composite/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/?", self.collection_upsert)
        r("POST", API + r"/jobs/(?P<kind>ingest|query)/?", self.job_create)
        r("GET", API + r"/jobs/(?P<kind>ingest|query)/?", self.job_list)
        r("GET", API + r"/jobs/(?P<kind>ingest|query)/(?P<job_id>750\w+)/?", self.job_info)
        r("PATCH", API + r"/jobs/(?P<kind>ingest|query)/(?P<job_id>750\w+)/?", self.job_state)
        r("DELETE", API + r"/jobs/(?P<kind>ingest|query)/(?P<job_id>750\w+)/?", self.job_delete)
        r("PUT", API + r"/jobs/ingest/(?P<job_id>750\w+)/batches/?", self.job_upload)
        r(
            "GET",
            API + r"/jobs/ingest/(?P<job_id>750\w+)/(?P<which>(?i:successfulResults|failedResults|"
            r"unprocessedRecords))/?",
            self.job_ingest_results,
        )
        r("GET", API + r"/jobs/query/(?P<job_id>750\w+)/results/?", self.job_query_results)

    @staticmethod
    def _guard(handler: Any) -> Any:
        """Turn the errors a handler raises into Salesforce-shaped responses."""

        def guarded(request: Request, **kwargs: str) -> Response:
            version = kwargs.get("version")
            if version is not None and not MIN_VERSION <= float(version) <= MAX_VERSION:
                return Response(404, NOT_FOUND_BODY)
            try:
                return handler(request, **kwargs)
            except ApiFailure as failure:
                return failure.response
            except BulkError as exc:
                return Response(exc.status, [{"errorCode": exc.error_code, "message": exc.message}])
            except soql.SoqlError as exc:
                return Response(400, [{"message": exc.message, "errorCode": exc.error_code}])

        return guarded

    def before_request(self, req: Request, endpoint: str) -> Response | None:
        if not req.path.startswith("/services/data/v"):
            return None
        if not self.sessions.valid(req.headers.get("authorization")):
            return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        now = self.now()
        if self.budget.exhausted(now):
            log.info("salesforce sandbox: daily API budget spent (%d)", self.budget.maximum)
            return Response(403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        self.budget.count(now)
        self.store.purge_recycle_bin(now)  # rows past the Recycle Bin's 15 days are gone before any read
        return None

    def after_request(self, req: Request, resp: Response) -> Response:
        if req.path.startswith("/services/data/v"):
            resp.headers["Sforce-Limit-Info"] = f"api-usage={self.budget.used(self.now())}/{self.budget.maximum}"
        return resp

    def not_found_response(self, req: Request) -> Response:
        return Response(404, NOT_FOUND_BODY)

    def rate_limited_response(self, req: Request) -> Response:
        return Response(
            403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        )

    def server_error_response(self, req: Request, status: int) -> Response:
        if status == 503:
            return Response(
                503,
                [
                    {
                        "message": "Server temporarily unavailable. Please try again later.",
                        "errorCode": "SERVER_UNAVAILABLE",
                    }
                ],
            )
        return Response(
            status,
            [
                {
                    "message": "An unexpected error occurred. Please include this ErrorId if you "
                    "contact support: 1640595153-3177 (-1355516398)",
                    "errorCode": "UNKNOWN_EXCEPTION",
                }
            ],
        )

    def expire_sessions(self) -> None:
        self.sessions.expire_all()

    def reset(self) -> None:
        self.ids = IdFactory()
        self.store = Store(self.ids)
        self.bulk = BulkJobs(self.store, self.ids, self.bulk.processing_seconds)
        self.poll_faults.clear()
        self.cursors.clear()
        self.budget.reset()

    def seed(self, payload: Any) -> dict[str, Any]:
        """Admin seeding: Contacts shaped {Email, FirstName, LastName, Phone, MobilePhone, Title,
        AccountName, HubSpot_Contact_Id__c?, LastModifiedDate?/SystemModstamp?/CreatedDate?}; a list,
        or {"contacts": [...]}. Records Salesforce would refuse are reported, not stored."""
        records = payload.get("contacts", payload.get("records")) if isinstance(payload, dict) else payload
        if not isinstance(records, list):
            raise ValueError("seed expects a list of contacts or {'contacts': [...]}")
        now = self.now()
        ids: list[str | None] = []
        rejected: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                ids.append(self.store.seed_contact(dict(record), now))
            except RecordFailed as failed:
                ids.append(None)
                rejected.append({"index": index, "errors": [e.as_result() for e in failed.errors]})
        log.info("salesforce sandbox: seeded %d contacts, %d rejected", len(records) - len(rejected), len(rejected))
        return {"created": len(records) - len(rejected), "ids": ids, "rejected": rejected}

    def records(self, ids: set[str] | None = None) -> dict[str, Any]:
        version = f"{MAX_VERSION:.1f}"
        tables = {name: self.store.rows[name] for name in OBJECTS}
        rows = {
            name: list(table.values()) if ids is None else [table[i] for i in ids if i in table]
            for name, table in tables.items()
        }
        return {
            name.lower() + "s": [render.full_record(OBJECTS[name], row, version) for row in rows[name]] for name in rows
        }

    def age_records(self, by: timedelta) -> int:
        return self.store.age(by)

    def _admin_api_usage(self, req: Request) -> dict[str, int]:
        body = req.json() or {}
        if "max" in body:
            self.budget.maximum = int(body["max"])
        if "used" in body:
            self.budget.set_used(int(body["used"]), self.now())
        if "others" in body:
            self.budget.others = int(body["others"])
        return {"used": self.budget.used(self.now()), "max": self.budget.maximum}

    def _admin_bulk(self, req: Request) -> dict[str, Any]:
        """`{"processing_seconds": s}`: how long ingest jobs stay queued; `{"poll_faults": [503, 401]}`:
        what the next ingest job-info GETs answer (401 also expires every session, as a timed-out one)."""
        body = req.json() or {}
        if "processing_seconds" in body:
            self.bulk.processing_seconds = float(body["processing_seconds"])
        if "poll_faults" in body:
            self.poll_faults = deque(int(status) for status in body["poll_faults"])
        return {"processing_seconds": self.bulk.processing_seconds, "poll_faults": list(self.poll_faults)}

    @staticmethod
    def _body(req: Request) -> Any:
        try:
            return req.json()
        except ValueError as exc:
            raise ApiFailure(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}") from exc

    @staticmethod
    def _object(sobject: str) -> ObjectDef:
        obj = object_def(sobject)
        if obj is None:
            raise ApiFailure(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    # ---- OAuth, versions, limits ------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        host = req.headers.get("host", "127.0.0.1")
        generic = self.login_host is not None and host.rpartition(":")[0] == self.login_host
        instance_url = (self.my_domain_url if generic else None) or f"https://{host}"
        try:
            body = self.sessions.issue(
                req.body, req.headers.get("authorization"), instance_url, self.now(), generic_host=generic
            )
        except OAuthError as exc:
            log.info("salesforce sandbox: token refused (%s)", exc.error)
            return Response(400, {"error": exc.error, "error_description": exc.description})
        return Response(200, body)

    def versions(self, req: Request) -> Response:
        return Response(
            200,
            [
                {"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
                for v in ("58.0", "59.0", "60.0", "61.0", "62.0")
            ],
        )

    def resources(self, req: Request, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ("limits", "query", "queryAll", "sobjects", "composite", "jobs")
        return Response(200, {name: f"{base}/{name}" for name in names})

    def limits(self, req: Request, version: str) -> Response:
        used = self.budget.used(self.now())
        return Response(
            200,
            {
                "DailyApiRequests": {"Max": self.budget.maximum, "Remaining": max(0, self.budget.maximum - used)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            },
        )

    # ---- query ------------------------------------------------------------------------------------
    def query(self, req: Request, version: str, kind: str) -> Response:
        return self._run_query(req.arg("q"), kind, self._batch(req), version)

    def _run_query(self, text: str | None, kind: str, batch: int, version: str) -> Response:
        if text is None:
            raise ApiFailure(400, "MALFORMED_QUERY", "SOQL statements cannot be empty or null")
        parsed = soql.parse(text, OBJECT_INFOS)
        rows = self.store.run_query(parsed, include_deleted=kind == "queryAll", now=self.now())
        if parsed.count:
            return Response(200, {"totalSize": len(rows), "done": True, "records": []})
        cursor = Cursor(parsed.sobject, [row["Id"] for row in rows], parsed.fields, batch, kind)
        return self._page(cursor, None, 0, version)

    def composite(self, req: Request, version: str) -> Response:
        """POST composite with query subrequests: one call against the budget, each subrequest answered with
        its own status and body, in order; a failed one does not stop the rest (allOrNone false, the default).

        Salesforce allows 25 subrequests, at most 5 of them queries; the sandbox models the query and queryAll
        subrequests only (the sync's reads) and refuses any other with a 400 that names it."""
        body = self._body(req)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not 0 < len(subrequests) <= COMPOSITE_LIMIT:
            raise ApiFailure(400, "JSON_PARSER_ERROR", f"compositeRequest must hold 1 to {COMPOSITE_LIMIT} subrequests")
        if body.get("allOrNone"):
            raise ApiFailure(400, "INVALID_INPUT", "the sandbox models composite calls with allOrNone false only")
        parsed = []
        for sub in subrequests:
            url = urlsplit(str(sub.get("url") or "")) if isinstance(sub, dict) else None
            match = COMPOSITE_QUERY.match(url.path) if url else None
            if match is None or str(sub.get("method", "")).upper() != "GET" or not sub.get("referenceId"):
                raise ApiFailure(400, "INVALID_INPUT", "the sandbox models GET query and queryAll subrequests only")
            parsed.append((sub["referenceId"], match, parse_qs(url.query).get("q", [None])[0]))
        if len(parsed) > COMPOSITE_QUERY_LIMIT:
            raise ApiFailure(400, "INVALID_INPUT", f"a composite call may hold at most {COMPOSITE_QUERY_LIMIT} queries")
        answers = []
        for reference, match, text in parsed:
            run = self._guard(lambda _req, version, kind, q=text: self._run_query(q, kind, self.page_size, version))
            answer = run(req, version=match["version"], kind=match["kind"])
            answers.append(
                {"body": answer.body, "httpHeaders": {}, "httpStatusCode": answer.status, "referenceId": reference}
            )
        return Response(200, {"compositeResponse": answers})

    def query_more(self, req: Request, version: str, kind: str, locator: str) -> Response:
        key, _, offset = locator.rpartition("-")
        cursor = self.cursors.get(key)
        if cursor is None:
            raise ApiFailure(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self.cursors.move_to_end(key)
        return self._page(cursor, key, int(offset), version)

    def _batch(self, req: Request) -> int:
        options = req.headers.get("sforce-query-options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
        if not match:
            return self.page_size
        return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))

    def _page(self, cursor: Cursor, key: str | None, offset: int, version: str) -> Response:
        table = self.store.rows[cursor.sobject]
        ids = cursor.ids[offset : offset + cursor.batch]
        records = [
            render.query_record(cursor.sobject, table[i], cursor.paths, version, self.store.parent)
            for i in ids
            if i in table
        ]
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": True, "records": records}
        end = offset + len(ids)
        if end < len(cursor.ids):
            if key is None:
                key = self.ids.new(QUERY_LOCATOR_PREFIX)
                self.cursors[key] = cursor
                while len(self.cursors) > OPEN_CURSORS:
                    self.cursors.popitem(last=False)
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.kind}/{key}-{end}"
        elif key is not None:
            self.cursors.pop(key, None)
        return Response(200, body)

    # ---- describe ---------------------------------------------------------------------------------
    def describe_global(self, req: Request, version: str) -> Response:
        return Response(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": COLLECTION_LIMIT,
                "sobjects": [self._object_summary(obj, version) for obj in OBJECTS.values()],
            },
        )

    @staticmethod
    def _object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{obj.name}"
        return {
            "name": obj.name,
            "label": obj.label,
            "keyPrefix": obj.key_prefix,
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }

    def sobject_info(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._object(sobject)
        return Response(200, {"objectDescribe": self._object_summary(obj, version), "recentItems": []})

    def describe(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._object(sobject)
        return Response(200, {**self._object_summary(obj, version), "fields": [f.describe() for f in obj.fields]})

    # ---- Get Deleted, merge, undelete ---------------------------------------------------------------
    def get_deleted(self, req: Request, version: str, sobject: str) -> Response:
        """`GET sobjects/{type}/deleted/?start=&end=`: the deletions in a span still on record (rules in
        `recycle.py`). One API call, like any other REST call."""
        obj = self._object(sobject)
        bounds = [req.arg("start"), req.arg("end")]
        if not all(bounds):
            raise ApiFailure(400, "MISSING_ARGUMENT", "start and end are required")
        now = self.now()
        try:
            start, latest = replication_window(parse_iso(str(bounds[0])), parse_iso(str(bounds[1])), now)
            found = self.store.deleted_between(obj, start, latest)
        except ValueError:
            raise ApiFailure(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 dateTimes") from None
        except ReplicationError as exc:
            raise ApiFailure(400, exc.error_code, exc.message) from None
        except RecordFailed as failed:
            raise ApiFailure(400, failed.errors[0].status_code, failed.errors[0].message) from None
        body = {
            "deletedRecords": [{"id": i, "deletedDate": render.format_datetime(stamp)} for stamp, i in found],
            "earliestDateAvailable": render.format_datetime(earliest_available(now)),
            "latestDateCovered": render.format_datetime(latest),
        }
        return Response(200, body)

    def _admin_merge(self, req: Request) -> dict[str, Any]:
        """Admin `POST merge`, standing in for SOAP `merge()` / Apex `merge` (REST has none): `{"masterRecord":
        {"Id": master, <fields to set>}, "recordToMergeIds": [one or two ids]}` answers a MergeResult."""
        body = req.json() or {}
        master = body.get("masterRecord")
        losers = body.get("recordToMergeIds")
        if not isinstance(master, dict) or not master.get("Id") or not isinstance(losers, list):
            raise ValueError("merge takes {'masterRecord': {'Id': ..., fields...}, 'recordToMergeIds': [...]}")
        if (master.get("attributes") or {}).get("type", "Contact") != "Contact":
            raise ValueError("the sandbox merges Contacts only")
        if not 1 <= len(losers) <= 2 or len(set(losers)) != len(losers) or master["Id"] in losers:
            raise ValueError("recordToMergeIds takes one or two ids other than the master's (3 records at most)")
        values = {k: v for k, v in master.items() if k not in ("Id", "attributes")}
        result = {"id": master["Id"], "success": True, "errors": [], "mergedRecordIds": [], "updatedRelatedIds": []}
        try:
            result["mergedRecordIds"] = self.store.merge(master["Id"], [str(i) for i in losers], values, self.now())
        except RecordFailed as failed:
            return {**result, "success": False, "errors": [e.as_result() for e in failed.errors]}
        log.info("salesforce sandbox: merged %s into %s", result["mergedRecordIds"], master["Id"])
        return result

    def _admin_undelete(self, req: Request) -> list[dict[str, Any]]:
        """Admin `POST undelete` `{"ids": [...]}`, standing in for SOAP/Apex `undelete`: UndeleteResults."""
        ids = (req.json() or {}).get("ids")
        if not isinstance(ids, list):
            raise ValueError("undelete takes {'ids': [...]}")
        now = self.now()
        self.store.purge_recycle_bin(now)
        results = []
        for record_id in map(str, ids):
            obj = next((o for o in OBJECTS.values() if record_id.startswith(o.key_prefix)), CONTACT)
            try:
                results.append({"id": self.store.undelete(obj, record_id, now), "success": True, "errors": []})
            except RecordFailed as failed:
                results.append({"id": record_id, "success": False, "errors": [e.as_result() for e in failed.errors]})
        return results

    # ---- single records ---------------------------------------------------------------------------
    def create(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._object(sobject)
        body = self._body(req)
        if not isinstance(body, dict):
            raise ApiFailure(400, "JSON_PARSER_ERROR", "Expected a JSON object for the record")
        try:
            record_id = self.store.create(obj, body, self.now(), allow_save=_allow_save(req))
        except RecordFailed as failed:
            return _errors_response(failed.errors)
        return Response(201, {"id": record_id, "success": True, "errors": []})

    def retrieve(self, req: Request, version: str, sobject: str, record_id: str) -> Response:
        obj = self._object(sobject)
        row = self.store.get(obj, record_id)
        if row is None or row["IsDeleted"]:
            return Response(404, NOT_FOUND_BODY)
        return Response(200, render.full_record(obj, row, version, self._field_list(obj, req)))

    @staticmethod
    def _field_list(obj: ObjectDef, req: Request) -> list[str] | None:
        wanted = req.arg("fields")
        if not wanted:
            return None
        names = []
        for name in (n.strip() for n in wanted.split(",") if n.strip()):
            fdef = obj.field(name)
            if fdef is None:
                raise ApiFailure(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            names.append(fdef.name)
        return names

    def update(self, req: Request, version: str, sobject: str, record_id: str) -> Response:
        obj = self._object(sobject)
        body = self._body(req)
        if not isinstance(body, dict):
            raise ApiFailure(400, "JSON_PARSER_ERROR", "Expected a JSON object for the record")
        try:
            self.store.update(obj, record_id, body, self.now(), allow_save=_allow_save(req))
        except RecordFailed as failed:
            return _errors_response(failed.errors)
        return Response(204)

    def delete(self, req: Request, version: str, sobject: str, record_id: str) -> Response:
        obj = self._object(sobject)
        try:
            self.store.delete(obj, record_id, self.now())
        except RecordFailed as failed:
            return _errors_response(failed.errors)
        return Response(204)

    def _external_field(self, obj: ObjectDef, name: str, status: int) -> str:
        fdef = obj.field(name)
        if obj is not CONTACT or fdef is None or not fdef.external_id:
            if status == 404:
                raise ApiFailure(
                    404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}"
                )
            raise ApiFailure(
                400,
                "INVALID_FIELD",
                f"Field name provided, {name} is not an External ID or indexed field for {obj.name}",
            )
        return fdef.name

    def retrieve_by_external(self, req: Request, version: str, sobject: str, field: str, value: str) -> Response:
        obj = self._object(sobject)
        self._external_field(obj, field, 404)
        row = self.store.by_external_id(unquote(value))
        if row is None or row["IsDeleted"]:
            return Response(404, NOT_FOUND_BODY)
        return Response(200, render.full_record(obj, row, version, self._field_list(obj, req)))

    def upsert(self, req: Request, version: str, sobject: str, field: str, value: str) -> Response:
        obj = self._object(sobject)
        self._external_field(obj, field, 404)
        body = self._body(req)
        if not isinstance(body, dict):
            raise ApiFailure(400, "JSON_PARSER_ERROR", "Expected a JSON object for the record")
        try:
            record_id, created = self.store.upsert(unquote(value), body, self.now(), allow_save=_allow_save(req))
        except RecordFailed as failed:
            return _errors_response(failed.errors)
        if created:
            return Response(201, {"id": record_id, "success": True, "errors": [], "created": True})
        if float(version) < 46.0:  # before API 46.0 an upsert that updated answered 204 No Content
            return Response(204)
        return Response(200, {"id": record_id, "success": True, "errors": [], "created": False})

    # ---- sObject Collections ----------------------------------------------------------------------
    def _collection_records(self, req: Request) -> tuple[list[Any], bool]:
        body = self._body(req)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiFailure(400, "JSON_PARSER_ERROR", "Expected a JSON object with a records array")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise ApiFailure(
                400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
            )
        return records, bool(body.get("allOrNone", False))

    def _run_collection(self, items: list[Any], all_or_none: bool, action: Any) -> Response:
        """Apply `action(item) -> result dict` to each item; with allOrNone, undo all on any failure."""
        results: list[dict[str, Any]] = []
        with self.store.all_or_none() as undo:
            for item in items:
                try:
                    results.append(action(item))
                except RecordFailed as failed:
                    result: dict[str, Any] = {"success": False, "errors": [e.as_result() for e in failed.errors]}
                    item_id = _item_id(item)
                    if item_id:
                        result = {"id": item_id, **result}
                    results.append(result)
            if all_or_none and not all(r["success"] for r in results):
                self.store.rollback(undo)
                results = [
                    result if not result["success"] else _rolled_back(item)
                    for item, result in zip(items, results, strict=True)
                ]
        return Response(200, results)

    def _typed(self, record: Any) -> tuple[ObjectDef, dict[str, Any]]:
        if not isinstance(record, dict):
            raise RecordFailed([RecordError("JSON_PARSER_ERROR", "Expected a JSON object for the record")])
        sobject = (record.get("attributes") or {}).get("type")
        obj = object_def(sobject) if sobject else None
        if obj is None:
            raise RecordFailed([RecordError("INVALID_TYPE", "Must send a concrete entity type.")])
        return obj, record

    def collection_create(self, req: Request, version: str) -> Response:
        records, all_or_none = self._collection_records(req)
        now = self.now()

        def create(record: Any) -> dict[str, Any]:
            obj, values = self._typed(record)
            if any(k.lower() == "id" for k in values):
                raise RecordFailed([RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])])
            record_id = self.store.create(obj, values, now, allow_save=_allow_save(req))
            return {"id": record_id, "success": True, "errors": []}

        return self._run_collection(records, all_or_none, create)

    def collection_update(self, req: Request, version: str) -> Response:
        records, all_or_none = self._collection_records(req)
        now = self.now()

        def update(record: Any) -> dict[str, Any]:
            obj, values = self._typed(record)
            record_id = _item_id(values)
            if not record_id:
                raise RecordFailed([RecordError("MISSING_ARGUMENT", "Id not specified in an update call")])
            body = {k: v for k, v in values.items() if k.lower() != "id"}
            record_id = self.store.update(obj, record_id, body, now, allow_save=_allow_save(req))
            return {"id": record_id, "success": True, "errors": []}

        return self._run_collection(records, all_or_none, update)

    def collection_upsert(self, req: Request, version: str, sobject: str, field: str) -> Response:
        obj = self._object(sobject)
        name = self._external_field(obj, field, 400)
        records, all_or_none = self._collection_records(req)
        now = self.now()

        def upsert(record: Any) -> dict[str, Any]:
            _, values = self._typed(record)
            key = next((v for k, v in values.items() if k.lower() == name.lower()), None)
            if key in (None, ""):
                raise RecordFailed([RecordError("MISSING_ARGUMENT", f"{name} not specified")])
            record_id, created = self.store.upsert(str(key), values, now, allow_save=_allow_save(req))
            return {"id": record_id, "success": True, "errors": [], "created": created}

        return self._run_collection(records, all_or_none, upsert)

    def collection_delete(self, req: Request, version: str) -> Response:
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        if not ids:
            raise ApiFailure(400, "MISSING_ARGUMENT", "The ids parameter is required")
        if len(ids) > COLLECTION_LIMIT:
            raise ApiFailure(
                400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
            )
        all_or_none = (req.arg("allOrNone") or "false").lower() == "true"
        now = self.now()

        def delete(record_id: str) -> dict[str, Any]:
            obj = next((o for o in OBJECTS.values() if record_id.startswith(o.key_prefix)), CONTACT)
            return {"id": self.store.delete(obj, record_id, now), "success": True, "errors": []}

        return self._run_collection(ids, all_or_none, delete)

    def collection_retrieve(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._object(sobject)
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        names = self._field_list(obj, req)
        if not ids or names is None:
            raise ApiFailure(400, "MISSING_ARGUMENT", "The ids and fields parameters are required")
        out = []
        for record_id in ids:
            row = self.store.get(obj, record_id)
            out.append(None if row is None or row["IsDeleted"] else render.full_record(obj, row, version, names))
        return Response(200, out)

    # ---- Bulk API 2.0 -----------------------------------------------------------------------------
    def job_create(self, req: Request, version: str, kind: str) -> Response:
        body = self._body(req)
        if not isinstance(body, dict):
            raise ApiFailure(400, "JSON_PARSER_ERROR", "Expected a JSON object describing the job")
        if kind == "ingest":
            return Response(200, self.bulk.create_ingest(body, version, self.now()).info())
        return Response(200, self.bulk.create_query(body, version, self.now()))

    def job_list(self, req: Request, version: str, kind: str) -> Response:
        self.bulk.settle(self.now())
        return Response(200, self.bulk.list(kind))

    def job_info(self, req: Request, version: str, kind: str, job_id: str) -> Response:
        if kind == "ingest" and self.poll_faults:
            status = self.poll_faults.popleft()
            if status == 401:
                self.sessions.expire_all()
                return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            return self.server_error_response(req, status)
        self.bulk.settle(self.now())
        return Response(200, self.bulk.get(kind, job_id).info())

    def job_state(self, req: Request, version: str, kind: str, job_id: str) -> Response:
        body = self._body(req) or {}
        info = self.bulk.set_state(kind, job_id, body.get("state"), self.now())
        job = self.bulk.jobs[job_id]
        log.info(
            "salesforce sandbox: bulk %s job %s -> %s (%d processed, %d failed)",
            kind,
            job_id,
            job.state,
            job.processed,
            job.failed,
        )
        return Response(200, info)

    def job_delete(self, req: Request, version: str, kind: str, job_id: str) -> Response:
        self.bulk.delete(kind, job_id)
        return Response(204)

    def job_upload(self, req: Request, version: str, job_id: str) -> Response:
        self.bulk.upload(job_id, req.body)
        return Response(201)

    def job_ingest_results(self, req: Request, version: str, job_id: str, which: str) -> Response:
        self.bulk.settle(self.now())
        text = self.bulk.ingest_results(job_id, which)
        return Response(200, text.encode(), {"Content-Type": "text/csv"})

    def job_query_results(self, req: Request, version: str, job_id: str) -> Response:
        max_records = req.arg("maxRecords")
        text, count, locator = self.bulk.query_results(
            job_id, req.arg("locator"), int(max_records) if max_records and max_records.isdigit() else None
        )
        headers = {"Content-Type": "text/csv", "Sforce-NumberOfRecords": str(count), "Sforce-Locator": locator}
        return Response(200, text.encode(), headers)


def _allow_save(req: Request) -> bool:
    """The REST write's Sforce-Duplicate-Rule-Header allowSave (false when absent, as documented)."""
    return header_allows_save(req.headers.get(DUPLICATE_HEADER.lower()))  # headers arrive lower-cased


def _item_id(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        value = item.get("id", item.get("Id"))
        return str(value) if value else None
    return None


def _rolled_back(item: Any) -> dict[str, Any]:
    item_id = _item_id(item)
    result: dict[str, Any] = {"success": False, "errors": [ROLLED_BACK.as_result()]}
    return {"id": item_id, **result} if item_id else result
