"""HubSpot hook for the contact sync: owns the `hubspot_default` connection and the hubspot-api-client.

Connection (CONTRACT.md): conn type http, password = private app token, host = API base URL (default
https://api.hubapi.com); extras `requests_per_10s` and `search_requests_per_s` size the shared pool.

Every call goes through `_request`: take from the Redis pool (search calls as kind "search", which also
counts against the 10-second limit), send through the generated client with `_preload_content=False`
(raw JSON and the response headers, no model round-trip), feed the X-HubSpot-RateLimit-* headers back,
pause the whole pool on a 429 (the one place a 429's wait is honoured: the next attempt's acquire waits
it out, or defers the task when it is too long), and retry transient failures through the shared base's
single tenacity layer (`hooks/base.py`). The client's own urllib3 retries are off, so each attempt is one
send, counted once. Errors that are not about one record are raised, never split into rejects
(`hs_errors`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import urllib3
from airflow.sdk import BaseHook
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from crm_sync.hooks.base import ContactsHookMixin, parallel_refs
from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.hs_batch import SECONDARY_EMAILS, asked_key, error_result, match_batch
from crm_sync.hooks.hs_errors import HubSpotError, classify, configuration_detail, is_record_level, pool_pause
from crm_sync.hooks.hs_preflight import (
    READ_CONTACTS,
    READ_SCHEMAS,
    TOKEN_INFO_PATH,
    WRITE_CONTACTS,
    WRITE_SCHEMAS,
    link_property_definition,
    missing_property_fix,
    not_unique_fix,
    scope_fix,
)
from crm_sync.hooks.hs_walker import PAGE_SIZE, parse_hubspot_ms, to_epoch_ms, walk_window
from crm_sync.hooks.pools import DEFAULT_REDIS_CONN_ID
from crm_sync.hooks.results import RecordResult, written_without
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.ratelimit import DEFAULT_KIND, SEARCH_KIND, Limit, RateLimitPool, hubspot_limits
from include.sync_logic.read_plan import pages
from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_HOST = "https://api.hubapi.com"
BATCH_SIZE = 100  # batch endpoints take up to 100 inputs
LIST_PAGE_SIZE = 100  # the list endpoint's largest page
# Read with every contact: the change time, and the ids merged into it (how a merge is detected, see merges.py).
_ALWAYS = ("lastmodifieddate", "hs_merged_object_ids")


class HubSpotContactsHook(ContactsHookMixin, BaseHook):
    """Contacts in HubSpot: windowed extracts, look-ups and per-record-result batch writes.

    :param hubspot_conn_id: the HubSpot connection.
    :param retry_policy: backoff for transient failures.
    :param redis_conn_id: the Redis holding the shared rate-limit pool.
    :param max_wait_seconds: longest wait for the pool before `RateLimitWaitTooLong` (None: no cap).
    :param pool: the rate-limit pool, instead of the connection's shared one (tests, benchmarks).
    :param request_timeout: (connect, read) seconds for every request.
    :param chunk_rows: rows per yielded frame when iterating contacts.
    """

    side = Side.HUBSPOT
    secondary_emails: ClassVar[str | None] = SECONDARY_EMAILS
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "http"
    hook_name = "HubSpot (contact sync)"

    def __init__(
        self,
        hubspot_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
        max_wait_seconds: float | None = None,
        pool: RateLimitPool | None = None,
        request_timeout: tuple[float, float] = (10.0, 60.0),
        chunk_rows: int = 5000,
    ) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        self.init_contacts_hook(
            retry_policy=retry_policy, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds, pool=pool
        )
        self.request_timeout = request_timeout
        self.chunk_rows = chunk_rows
        self.search_calls = 0

    # -- connection and client ------------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        return self.hubspot_conn_id

    def pool_limits(self) -> list[Limit]:
        return hubspot_limits(self._extras)

    def probe(self) -> None:
        self._request("list", lambda: self._basic_api.get_page(limit=1, _preload_content=False))

    @property
    def host(self) -> str:
        host = (self._connection.host or "").rstrip("/")
        if not host:
            return DEFAULT_HOST
        if "://" not in host:
            host = f"https://{host}"
        port = self._connection.port
        if port and host.count(":") < 2:
            host = f"{host}:{port}"
        return host

    @cached_property
    def client(self) -> HubSpot:
        token = self._connection.password
        if not token:
            raise ValueError(f"connection {self.hubspot_conn_id}: set the private app token as password")
        options: dict[str, Any] = {}
        ca_bundle = self._extras.get("ca_bundle") or os.environ.get("REQUESTS_CA_BUNDLE")
        if ca_bundle:
            options["ssl_ca_cert"] = ca_bundle
        # urllib3 retries off: every retry must pass through the pool.
        return HubSpot(access_token=token, host=self.host, retry=urllib3.Retry(total=0, redirect=0), **options)

    def get_conn(self) -> HubSpot:
        return self.client

    @cached_property
    def _search_api(self) -> Any:
        return self.client.crm.contacts.search_api

    @cached_property
    def _basic_api(self) -> Any:
        return self.client.crm.contacts.basic_api

    @cached_property
    def _batch_api(self) -> Any:
        return self.client.crm.contacts.batch_api

    @cached_property
    def _properties_api(self) -> Any:
        return self.client.crm.properties.core_api

    # -- the one request path -------------------------------------------------------------------

    def _request(
        self, what: str, send: Callable[[], Any], *, kind: str = DEFAULT_KIND, idempotent: bool = True
    ) -> tuple[int, Any]:
        """(status, parsed JSON body) of one call, throttled, observed and retried when transient: call, classify
        (`hs_errors`), raise."""

        def attempt() -> tuple[int, Any]:
            self.rate_limit_pool.acquire(kind, max_wait_seconds=self.max_wait_seconds)
            self.api_calls += 1
            self.search_calls += kind == SEARCH_KIND
            try:
                response = send()
            except (ApiException, PropertiesApiException, urllib3.exceptions.HTTPError) as exc:
                error = classify(exc, idempotent=idempotent)
                if isinstance(exc, ApiException | PropertiesApiException) and exc.status:
                    self._observe_refusal(exc, error)
                raise error from exc
            self.rate_limit_pool.observe_response(response.status, response.headers)
            data = response.data
            return response.status, json.loads(data) if data else None

        return self.with_retry(what, attempt)

    def _observe_refusal(self, exc: ApiException | PropertiesApiException, error: Exception) -> None:
        """A refusal's rate-limit headers into the pool (a Retry-After pauses it); a 429 that names no wait pauses
        the pool for its limit's window, the one place such a wait is honoured: the next attempt's acquire waits it
        out, or defers the task when it is too long."""
        self.rate_limit_pool.observe_response(int(exc.status), exc.headers or {})
        pause = pool_pause(exc)
        if pause is not None:
            self.rate_limit_pool.pause_for(pause, f"HubSpot {error}")

    # -- preflight ------------------------------------------------------------------------------

    def preflight(self, link_field: str, *, writes: bool) -> list[str]:
        """The token's scopes (writing contacts only when `writes`), then the link property (created when
        missing and the scopes allow)."""
        scopes = {READ_CONTACTS, READ_SCHEMAS, WRITE_CONTACTS} if writes else {READ_CONTACTS, READ_SCHEMAS}
        return [*self.token_scope_problems(scopes), *self.ensure_link_property(link_field)]

    def token_scopes(self) -> set[str]:
        """The private app token's scopes, from HubSpot's token-info call for private app tokens."""
        token = self._connection.password
        rest = self._basic_api.api_client.rest_client  # the client has no method for this call
        _, data = self._request(
            "token info",
            lambda: rest.POST(
                f"{self.host}{TOKEN_INFO_PATH}",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                body={"tokenKey": token},
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
        )
        return set((data or {}).get("scopes") or [])

    def token_scope_problems(self, required: set[str]) -> list[str]:
        """One sentence per required scope the token lacks, naming where to add it ([] when none)."""
        return [scope_fix(scope) for scope in sorted(set(required) - self.token_scopes())]

    def ensure_link_property(self, name: str) -> list[str]:
        """The link property exists with unique values; created when missing and the scopes allow.

        Returns the problems left, each a sentence with the exact fix ([] when the property is usable).
        """
        try:
            _, definition = self._request(
                "property read",
                lambda: self._properties_api.get_by_name(
                    "contacts", name, _preload_content=False, _request_timeout=self.request_timeout
                ),
            )
        except HubSpotError as exc:
            if exc.code == "MISSING_SCOPES":
                return [scope_fix(READ_SCHEMAS)]
            if exc.status != 404:
                raise
            definition = None
        if definition is not None:
            return [] if definition.get("hasUniqueValue") else [not_unique_fix(name)]
        if self.token_scope_problems({WRITE_SCHEMAS}):
            return [missing_property_fix(name)]
        self._request(
            "property create",
            lambda: self._properties_api.create(
                "contacts",
                link_property_definition(name),
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
            idempotent=False,
        )
        self.log.info("HubSpot: created the unique contact property %s (the sync's link)", name)
        return []

    # -- reads ----------------------------------------------------------------------------------

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        _, data = self._request(
            "search",
            lambda: self._search_api.do_search(
                public_object_search_request=body,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
            kind=SEARCH_KIND,
        )
        return data or {}

    def iter_changed_contacts(
        self, fields: Sequence[str], start: datetime, end: datetime, *, include_deleted: bool = False
    ) -> Iterator[pd.DataFrame]:
        """Contacts with lastmodifieddate in [start, end) as frames of up to `chunk_rows`, each contact once.

        Walks past the search API's 10,000-results cap (see `hs_walker`), so any window is read whole.
        The search never returns archived contacts: with `include_deleted`, those archived in the
        window follow (from the list API, `archived` True).
        """
        properties = _with_always(fields)
        calls_before, found = self.search_calls, 0
        pages = walk_window(self._search, to_epoch_ms(start), to_epoch_ms(end), properties, page_size=PAGE_SIZE)
        for chunk in _rechunk(pages, self.chunk_rows):
            found += len(chunk)
            yield objects_to_frame(chunk, properties)
        self.log.info("HubSpot: %d contacts in window, %d search calls", found, self.search_calls - calls_before)
        if include_deleted:
            yield from self._iter_archived(properties, start, end)

    def iter_all_contacts(self, fields: Sequence[str], *, include_deleted: bool = False) -> Iterator[pd.DataFrame]:
        """Every contact via the list API (100 a page) in frames of `chunk_rows`: full resync.

        With `include_deleted` the archived contacts follow (`archived` True).
        """
        properties = _with_always(fields)
        for archived in (False, True) if include_deleted else (False,):
            for chunk in _rechunk(self._list_pages(properties, archived), self.chunk_rows):
                yield objects_to_frame(chunk, properties)

    def _list_pages(self, properties: list[str], archived: bool) -> Iterator[list[dict[str, Any]]]:
        after: str | None = None
        pages = 0
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_SIZE, "properties": properties, "archived": archived}
            if after:
                kwargs["after"] = after
            _, data = self._request(
                "list",
                lambda kw=kwargs: self._basic_api.get_page(
                    **kw, _preload_content=False, _request_timeout=self.request_timeout
                ),
            )
            data = data or {}
            pages += 1
            yield data.get("results") or []
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        self.log.info("HubSpot: listed %s contacts in %d pages", "archived" if archived else "active", pages)

    def _iter_archived(self, properties: list[str], start: datetime, end: datetime) -> Iterator[pd.DataFrame]:
        """Contacts archived in [start, end).

        The list API is the only way to see archived contacts and it cannot filter, so this reads all
        of them; `lastmodifieddate` is set to the archive time (the contact's last change).
        """
        import pandas as pd

        for chunk in _rechunk(self._list_pages(properties, True), self.chunk_rows):
            frame = objects_to_frame(chunk, properties)
            stamps = frame["lastmodifieddate"]
            frame = frame[(stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(end))]
            if len(frame):
                yield frame.reset_index(drop=True)

    def count_contacts(self) -> int:
        """How many active contacts the account holds: the `total` of a one-result search (one call).

        The search index trails writes by seconds, so the newest contacts may be missing from it.
        """
        return int(self._search({"limit": 1, "properties": ["email"]}).get("total") or 0)

    def lookup_calls(
        self, key: LookupKey, values: Sequence[str], fields: Sequence[str], *, link_field: str | None = None
    ) -> int:
        """Batch reads `fetch_contacts` would send for these values (100 a call, whatever the key)."""
        return -(-len({str(value) for value in values if value}) // BATCH_SIZE)  # none to find: no call

    def whole_read_calls(self, contacts: int) -> int:
        """List-API pages of `iter_all_contacts` (active contacts) for this many contacts."""
        return pages(contacts, LIST_PAGE_SIZE)

    def fetch_contacts(
        self,
        key: LookupKey,
        values: Sequence[str],
        fields: Sequence[str],
        *,
        link_field: str | None = None,
        include_deleted: bool = False,
    ) -> pd.DataFrame:
        """Contacts by HubSpot id, by email or by the unique link property holding Salesforce Ids; values
        HubSpot does not know are left out. `lookup_key` holds the value asked: by email HubSpot also finds a
        contact by a secondary email (`hs_additional_emails`), so the returned primary may differ.
        `include_deleted` adds a batch read of archived contacts (`archived` True, `lastmodifieddate` the
        archive time) after the live one: what neither answers was removed for good."""
        import pandas as pd

        id_property = _id_property(key, link_field)
        live = self._batch_read(fields, values, id_property)
        if not include_deleted:
            return live
        archived = self._batch_read(fields, values, id_property, archived=True)
        return pd.concat([live, archived], ignore_index=True)

    def _batch_read(
        self, properties: Sequence[str], keys: Sequence[str], id_property: str | None, *, archived: bool = False
    ) -> pd.DataFrame:
        import pandas as pd

        properties = _with_always(properties)
        asked = _with_always([*properties, SECONDARY_EMAILS]) if id_property == "email" else properties
        unique = list(dict.fromkeys(str(k) for k in keys if k))
        frames, missing = [], 0
        for offset in range(0, len(unique), BATCH_SIZE):
            chunk = unique[offset : offset + BATCH_SIZE]
            body: dict[str, Any] = {"properties": asked, "inputs": [{"id": key} for key in chunk]}
            if id_property:
                body["idProperty"] = id_property
            _, data = self._request(
                "batch read",
                lambda b=body: self._batch_api.read(
                    batch_read_input_simple_public_object_id=b,
                    archived=archived,
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                ),
            )
            data = data or {}
            missing += sum(len((e.get("context") or {}).get("ids", [])) for e in data.get("errors") or [])
            results = data.get("results") or []
            frame = objects_to_frame(results, properties)
            frame["lookup_key"] = [asked_key(obj, chunk, id_property) for obj in results]
            frames.append(frame)
        self.log.info(
            "HubSpot: batch read %d %skeys by %s, %d not found",
            len(unique),
            "archived " if archived else "",
            id_property or "id",
            missing,
        )
        if not frames:
            return objects_to_frame([], properties).assign(lookup_key=pd.Series(dtype=object))
        return pd.concat(frames, ignore_index=True)

    # -- writes ---------------------------------------------------------------------------------

    def merge_contacts(self, primary_id: str, merged_id: str) -> str:
        """Merge `merged_id` into `primary_id` (`POST .../contacts/merge`); returns the id HubSpot answers, a new
        record's since HubSpot's merge change. Never resent once it may have been applied: a second merge of the
        same ids is refused (both now read as the new record)."""
        body = {"primaryObjectId": str(primary_id), "objectIdToMerge": str(merged_id)}
        _, data = self._request(
            "merge",
            lambda: self._basic_api.merge(
                public_merge_input=body, _preload_content=False, _request_timeout=self.request_timeout
            ),
            idempotent=False,
        )
        return str((data or {})["id"])

    def write_contacts(
        self,
        action: Action,
        records: Sequence[ContactWrite],
        refs: Sequence[str],
        *,
        link_field: str,
        bulk: bool = False,
    ) -> list[RecordResult]:
        """Batches of 100: creates upsert on the unique property `link_field` (a retry creates no duplicate),
        updates and deletes (archives) name their HubSpot id. HubSpot has no bulk API."""
        if bulk:
            raise ValueError("HubSpot has no bulk API: write in batches")
        refs = parallel_refs(records, refs)
        if not records:
            return []
        match action:
            case Action.CREATE:
                return self._upsert(records, refs, link_field)
            case Action.UPDATE:
                ids = [str(record.target_id) for record in records]
                inputs = [{"id": cid, "properties": dict(r.fields)} for cid, r in zip(ids, records, strict=True)]
                return self._write("update", inputs, refs, ids, "id", drop_refused=True)
            case Action.DELETE:
                return self._archive([str(record.target_id) for record in records], refs)
        raise ValueError(f"HubSpot: cannot write {action!r}")

    def _upsert(self, records: Sequence[ContactWrite], refs: list[str], link_field: str) -> list[RecordResult]:
        """Batch upsert by the unique property `link_field` (HubSpot refuses one without unique values for the
        whole call); `created` tells new from updated, a taken email links its unlinked holder."""
        keys = [str(record.fields.get(link_field) or "") for record in records]
        if not all(keys):
            raise ValueError(f"upsert: every record needs a value of {link_field}")
        inputs = [
            {"idProperty": link_field, "id": key, "properties": dict(record.fields)}
            for key, record in zip(keys, records, strict=True)
        ]
        results = self._write("upsert", inputs, refs, list(keys), link_field)
        if link_field != "email":
            self._link_taken_emails(inputs, results, link_field)
        return results

    def _link_taken_emails(self, inputs: list[dict[str, Any]], results: list[RecordResult], link: str) -> None:
        """An upsert refused because another contact holds its email (409, either shape) links that contact
        instead, when it has the same normalised email and no link yet: its link property is set, nothing else
        (its values meet the source's in the next run's merge). The result then names it as `existing_id`. Two
        inputs naming one contact: only the first may link it."""
        taken: dict[int, str] = {}
        for i, result in enumerate(results):
            email = (inputs[i]["properties"].get("email") or "").strip()
            if not result.ok and result.existing_id and email and result.existing_id not in taken.values():
                taken[i] = result.existing_id
        if not taken:
            return
        found = self._batch_read(["email", link], list(taken.values()), None)
        holders = {str(row["id"]): row for row in found.to_dict("records")}
        linkable = [
            i
            for i, existing in taken.items()
            if existing in holders
            and _same_email(holders[existing].get("email"), inputs[i]["properties"].get("email"))
            and _blank(holders[existing].get(link))
        ]
        if not linkable:
            return
        linked = self._write(
            "update",
            [{"id": taken[i], "properties": {link: inputs[i]["id"]}} for i in linkable],
            [results[i].ref for i in linkable],
            [taken[i] for i in linkable],
            "id",
        )
        for i, outcome in zip(linkable, linked, strict=True):
            if outcome.ok:
                results[i] = RecordResult(
                    ref=results[i].ref,
                    target_id=taken[i],
                    ok=True,
                    existing_id=taken[i],
                    message=f"linked to existing contact {taken[i]} (same email, no link); values not written",
                )
        done = sum(outcome.ok for outcome in linked)
        self.log.info("HubSpot upsert: %d of %d taken emails linked to their unlinked contact", done, len(taken))

    def _archive(self, ids: list[str], refs: list[str]) -> list[RecordResult]:
        """Batch archive by id (HubSpot answers 204 for the batch, also for unknown ids)."""

        def archive(part: slice) -> list[RecordResult]:
            body = {"inputs": [{"id": cid} for cid in ids[part]]}
            self._request(
                "batch archive",
                lambda: self._batch_api.archive(
                    batch_input_simple_public_object_id=body,
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                ),
            )
            return [
                RecordResult(ref=ref, target_id=cid, ok=True) for ref, cid in zip(refs[part], ids[part], strict=True)
            ]

        return self.write_in_batches("archive", len(ids), BATCH_SIZE, archive)

    def _write(
        self,
        kind: str,
        inputs: list[dict[str, Any]],
        refs: list[str],
        keys: list[str | None],
        key_of_result: str,
        *,
        drop_refused: bool = False,
    ) -> list[RecordResult]:
        """Batches of 100. `drop_refused` (updates: the contact exists): an input refused for values of properties
        it carries is sent once more without them, so its other properties are written and the refusal stays on
        its result (as reconcile rejects a refused value alone; a create is refused whole)."""

        def write(part: slice) -> list[RecordResult]:
            batch = inputs[part]
            results = self._write_batch(kind, batch, refs[part], keys[part], key_of_result)
            again = [
                (i, dropped)
                for i, result in enumerate(results)
                if drop_refused and (dropped := _droppable(result, batch[i]))
            ]
            if again:
                self.log.info("HubSpot %s: %d inputs sent again without their refused properties", kind, len(again))
                retried = self._write_batch(
                    kind,
                    [_without(batch[i], dropped) for i, dropped in again],
                    [results[i].ref for i, _ in again],
                    [keys[part][i] for i, _ in again],
                    key_of_result,
                )
                for (i, _), result in zip(again, retried, strict=True):
                    results[i] = written_without(result, results[i])
            return results

        return self.write_in_batches(kind, len(inputs), BATCH_SIZE, write)

    def _write_batch(
        self,
        kind: str,
        inputs: list[dict[str, Any]],
        refs: list[str],
        keys: list[str | None],
        key_of_result: str,
    ) -> list[RecordResult]:
        """One batch call. A batch refused whole for a record-level error (HubSpot may reject all inputs for
        one bad value or conflict) is split until it names the inputs that caused it; any other error is
        about the call, not its records, and is raised (see `hs_errors`)."""
        body = {"inputs": [{**item, "objectWriteTraceId": str(i)} for i, item in enumerate(inputs)]}
        try:
            _, data = self._request(f"batch {kind}", lambda: self._send_batch(kind, body))
        except HubSpotError as exc:
            if not exc.record_level:
                raise
            if len(inputs) == 1:
                error = {"category": exc.code, "message": exc.message}
                target = keys[0] if key_of_result == "id" else None
                return [error_result(refs[0], error, target_id=target)]
            # HubSpot rejects the whole batch for one bad input (nothing is applied): halve to find it.
            mid = len(inputs) // 2
            self.log.info("HubSpot batch %s of %d rejected (%s); splitting", kind, len(inputs), exc.code)
            return self._write_batch(kind, inputs[:mid], refs[:mid], keys[:mid], key_of_result) + self._write_batch(
                kind, inputs[mid:], refs[mid:], keys[mid:], key_of_result
            )
        results = match_batch(refs, keys, key_of_result, data)
        for error in (data or {}).get("errors") or []:
            if not is_record_level(error.get("category"), error.get("message")):
                category, message = error.get("category"), error.get("message")
                raise HubSpotError(207, category, message, detail=configuration_detail(category, message, error))
        unmatched = [i for i, r in enumerate(results) if r.error_code == "UNMATCHED"]
        if len(unmatched) > 1:
            # Several errors HubSpot did not tie to inputs: send those inputs one by one to tell them apart.
            for i in unmatched:
                (results[i],) = self._write_batch(kind, [inputs[i]], [refs[i]], [keys[i]], key_of_result)
        return results

    def _send_batch(self, kind: str, body: dict[str, Any]) -> Any:
        api = self._batch_api
        options = {"_preload_content": False, "_request_timeout": self.request_timeout}
        if kind == "update":
            return api.update(batch_input_simple_public_object_batch_input=body, **options)
        return api.upsert(batch_input_simple_public_object_batch_input_upsert=body, **options)


def objects_to_frame(objects: Sequence[Mapping[str, Any]], properties: Sequence[str]) -> pd.DataFrame:
    """HubSpot objects as the staged raw frame: id, the properties, lastmodifieddate (UTC), archived."""
    import pandas as pd

    columns = ["id", *[p for p in properties if p not in ("id", "archived")], "archived"]
    rows = []
    for obj in objects:
        props = obj.get("properties") or {}
        row = {name: props.get(name) for name in properties}
        row["id"] = str(obj["id"])
        row["archived"] = bool(obj.get("archived", False))
        if obj.get("archivedAt"):
            row["lastmodifieddate"] = obj["archivedAt"]
        elif not row.get("lastmodifieddate"):
            row["lastmodifieddate"] = obj.get("updatedAt")
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    frame["lastmodifieddate"] = pd.to_datetime(frame["lastmodifieddate"].map(parse_hubspot_ms), unit="ms", utc=True)
    frame["archived"] = frame["archived"].astype(bool)
    return frame


def _rechunk(pages: Iterable[list[dict[str, Any]]], size: int) -> Iterator[list[dict[str, Any]]]:
    """API pages regrouped into chunks of `size` (the last may be shorter), so staged parts are few."""
    buffer: list[dict[str, Any]] = []
    for page in pages:
        buffer.extend(page)
        while len(buffer) >= size:
            yield buffer[:size]
            buffer = buffer[size:]
    if buffer:
        yield buffer


def _droppable(result: RecordResult, item: Mapping[str, Any]) -> set[str]:
    """The properties to leave out when sending `item` again: all its refusal names, when it carries them all and
    others besides (an input left with nothing to write is refused whole)."""
    named = set((result.refused_fields or "").split(",")) - {""}
    if result.ok or not named or not named < set(item.get("properties") or {}):
        return set()
    return named


def _without(item: Mapping[str, Any], dropped: set[str]) -> dict[str, Any]:
    return {**item, "properties": {k: v for k, v in (item.get("properties") or {}).items() if k not in dropped}}


def _blank(value: Any) -> bool:
    """None, NaN (a frame's missing value) or only white space."""
    return value is None or value != value or not str(value).strip()


def _same_email(left: Any, right: Any) -> bool:
    """Equal after trimming and lower-casing (the mapping's email normalisation)."""
    return not _blank(left) and str(left).strip().lower() == str(right or "").strip().lower()


def _id_property(key: LookupKey, link_field: str | None) -> str | None:
    """The batch read's idProperty for a look-up by `key`: none (the HubSpot id), email, or the link property."""
    if key is LookupKey.COUNTERPART_ID:
        if not link_field:
            raise ValueError("a look-up by counterpart id needs the link property")
        return link_field
    return None if key is LookupKey.OWN_ID else "email"


def _with_always(properties: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*properties, *_ALWAYS]))
