"""HubSpot contacts read: a window through the search API (walked past its 10,000-results cap, see `hs_walker`),
every contact through the list API, look-ups as batch reads of 100, and the account's count.

Every contact is read with its change time and the ids merged into it (how a merge is detected, see
`include.sync_logic.merges`); archived contacts only come from the list API and archived batch reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from crm_sync.hooks.contacts import LookupKey
from crm_sync.hooks.hs_batch import SECONDARY_EMAILS, asked_key
from crm_sync.hooks.hs_session import HubSpotSession
from crm_sync.hooks.hs_walker import PAGE_SIZE, parse_hubspot_ms, to_epoch_ms, walk_window
from crm_sync.ratelimit import SEARCH_KIND
from include.sync_logic.read_plan import pages

if TYPE_CHECKING:
    import pandas as pd

BATCH_SIZE = 100  # batch endpoints take up to 100 inputs
LIST_PAGE_SIZE = 100  # the list endpoint's largest page
ALWAYS_READ = ("lastmodifieddate", "hs_merged_object_ids")


class HubSpotReads(HubSpotSession):
    """The contacts hook's reads (see `ContactsHook` for what each promises)."""

    secondary_emails: ClassVar[str | None] = SECONDARY_EMAILS
    own_id_field = "id"
    email_field = "email"

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        _, data = self._request(
            "search",
            lambda: self._contacts.search_api.do_search(
                public_object_search_request=body, _preload_content=False, _request_timeout=self.request_timeout
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
        walk = walk_window(self._search, to_epoch_ms(start), to_epoch_ms(end), properties, page_size=PAGE_SIZE)
        for chunk in _rechunk(walk, self.chunk_rows):
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
        listed = 0
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_SIZE, "properties": properties, "archived": archived}
            if after:
                kwargs["after"] = after
            get_page = self._contacts.basic_api.get_page
            _, data = self._request(
                "list", partial(get_page, **kwargs, _preload_content=False, _request_timeout=self.request_timeout)
            )
            data = data or {}
            listed += 1
            yield data.get("results") or []
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        self.log.info("HubSpot: listed %s contacts in %d pages", "archived" if archived else "active", listed)

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

        id_property = None if key is LookupKey.OWN_ID else self.lookup_field(key, link_field)
        live = self._batch_read(fields, values, id_property)
        if not include_deleted:
            return live
        archived = self._batch_read(fields, values, id_property, archived=True)
        return pd.concat([live, archived], ignore_index=True)

    def _batch_read(
        self, fields: Sequence[str], keys: Sequence[str], id_property: str | None, *, archived: bool = False
    ) -> pd.DataFrame:
        """Batch reads of 100 keys by `id_property` (None: the HubSpot id); `lookup_key` names the key answered."""
        import pandas as pd

        properties = _with_always(fields)
        asked = _with_always([*properties, SECONDARY_EMAILS]) if id_property == "email" else properties
        unique = list(dict.fromkeys(str(k) for k in keys if k))
        frames, missing = [], 0
        for offset in range(0, len(unique), BATCH_SIZE):
            chunk = unique[offset : offset + BATCH_SIZE]
            body: dict[str, Any] = {"properties": asked, "inputs": [{"id": key} for key in chunk]}
            if id_property:
                body["idProperty"] = id_property
            read = partial(
                self._contacts.batch_api.read,
                batch_read_input_simple_public_object_id=body,
                archived=archived,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            )
            _, data = self._request("batch read", read)
            data = data or {}
            missing += sum(len((e.get("context") or {}).get("ids", [])) for e in data.get("errors") or [])
            results = data.get("results") or []
            frame = objects_to_frame(results, properties)
            frame["lookup_key"] = [asked_key(obj, chunk, id_property) for obj in results]
            frames.append(frame)
        found = "archived " if archived else ""
        self.log.info(
            "HubSpot: batch read %d %skeys by %s, %d not found", len(unique), found, id_property or "id", missing
        )
        if not frames:
            return objects_to_frame([], properties).assign(lookup_key=pd.Series(dtype=object))
        return pd.concat(frames, ignore_index=True)


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


def _rechunk(batches: Iterable[list[dict[str, Any]]], size: int) -> Iterator[list[dict[str, Any]]]:
    """API pages regrouped into chunks of `size` (the last may be shorter), so staged parts are few."""
    buffer: list[dict[str, Any]] = []
    for batch in batches:
        buffer.extend(batch)
        while len(buffer) >= size:
            yield buffer[:size]
            buffer = buffer[size:]
    if buffer:
        yield buffer


def _with_always(properties: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*properties, *ALWAYS_READ]))
