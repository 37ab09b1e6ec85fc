"""Walk HubSpot's contact search over one [start, end) window of lastmodifieddate, however large.

HubSpot's search accepts one sort per request and serves at most 10,000 results per query (paging past
that is a 400), so a plain `after`-paged query cannot read a big window. This walker pages by keys
instead of offsets: every request is a first page, anchored on the last timestamp seen:

1. `lastmodifieddate >= start AND < end`, sorted by lastmodifieddate, 200 a page.
2. When a full page ends on timestamp T, the next request asks for the rest: `lastmodifieddate > T AND
   < end` OR `lastmodifieddate = T AND hs_object_id NOT_IN (the page's contacts at T)` (two filter
   groups). Batch writes give 100 contacts one timestamp, so pages often end inside such a group; the
   exclusion reads none of them twice. HubSpot documents no cap on NOT_IN values, so the walker keeps
   the list at 100 (a batch's size); a longer tail is re-read instead (`lastmodifieddate >= T`,
   duplicates dropped by id).
3. When a full page holds nothing but T (a bulk edit gave more than a page of contacts one timestamp),
   T is finished by id: `lastmodifieddate = T AND hs_object_id > last id`, sorted by hs_object_id,
   until a short page; then the walk continues with `lastmodifieddate > T`.

A page ends the walk when it is short or when its query's `total` shows it held every match, so a
window that fills its last page exactly costs no empty request. Each step moves the anchor forward, so
the walk ends; no query ever pages, so the 10,000 cap is never reached, and contacts that leave the
window mid-walk cannot shift a page boundary over a neighbour.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

SearchFn = Callable[[dict[str, Any]], dict[str, Any]]
PAGE_SIZE = 200  # the search API's largest page
MAX_EXCLUDED = 100  # ids in one NOT_IN filter (the walker's own bound: HubSpot documents none)


def to_epoch_ms(moment: datetime) -> int:
    """Exact milliseconds since the epoch (no float rounding) for a tz-aware datetime (pendulum too)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def parse_hubspot_ms(value: str | int | None) -> int | None:
    """HubSpot datetimes arrive as ISO-8601 strings (search, batch) or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    return to_epoch_ms(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _filter(prop: str, op: str, value: int | str) -> dict[str, str]:
    return {"propertyName": prop, "operator": op, "value": str(value)}


def _request(groups: list[list[dict[str, Any]]], sort: str, properties: Sequence[str], limit: int) -> dict[str, Any]:
    """A first-page search: filter groups (OR of ANDs), one ascending sort."""
    return {
        "filterGroups": [{"filters": filters} for filters in groups],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
    }


def range_request(lower_op: str, lower_ms: int, end_ms: int, properties: Sequence[str], limit: int) -> dict[str, Any]:
    window = [_filter("lastmodifieddate", lower_op, lower_ms), _filter("lastmodifieddate", "LT", end_ms)]
    return _request([window], "lastmodifieddate", properties, limit)


def rest_request(
    at_ms: int, seen_at: Sequence[str], end_ms: int, properties: Sequence[str], limit: int
) -> dict[str, Any]:
    """After a page that ended at `at_ms`: the later contacts, and those at `at_ms` not on that page."""
    later = [_filter("lastmodifieddate", "GT", at_ms), _filter("lastmodifieddate", "LT", end_ms)]
    unseen: list[dict[str, Any]] = [
        _filter("lastmodifieddate", "EQ", at_ms),
        {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": list(seen_at)},
    ]
    return _request([later, unseen], "lastmodifieddate", properties, limit)


def tie_request(at_ms: int, after_id: int | None, properties: Sequence[str], limit: int) -> dict[str, Any]:
    filters = [_filter("lastmodifieddate", "EQ", at_ms)]
    if after_id is not None:
        filters.append(_filter("hs_object_id", "GT", after_id))
    return _request([filters], "hs_object_id", properties, limit)


def _complete(response: dict[str, Any], results: list[dict[str, Any]], page_size: int) -> bool:
    """Whether this answer held every match of its query: a short page, or `total` no more than the page."""
    return len(results) < page_size or int(response.get("total", len(results) + 1)) <= len(results)


def walk_window(
    search: SearchFn,
    start_ms: int,
    end_ms: int,
    properties: Sequence[str],
    *,
    page_size: int = PAGE_SIZE,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of search results (contacts not seen before in this walk) for [start_ms, end_ms)."""
    properties = list(dict.fromkeys([*properties, "lastmodifieddate", "hs_object_id"]))
    seen: set[str] = set()

    def fresh(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [r for r in results if str(r["id"]) not in seen]
        seen.update(str(r["id"]) for r in out)
        return out

    request = range_request("GTE", start_ms, end_ms, properties, page_size)
    while True:
        response = search(request)
        results = response.get("results", [])
        page = fresh(results)
        if page:
            yield page
        if _complete(response, results, page_size):
            return
        stamps = [parse_hubspot_ms(r["properties"].get("lastmodifieddate")) for r in results]
        last = stamps[-1]
        if last is None:
            raise ValueError("search result without lastmodifieddate")
        if stamps[0] != last:
            at_last = [str(r["id"]) for r, stamp in zip(results, stamps, strict=True) if stamp == last]
            if len(at_last) <= MAX_EXCLUDED:
                request = rest_request(last, at_last, end_ms, properties, page_size)
            else:
                request = range_request("GTE", last, end_ms, properties, page_size)
            continue
        # A whole page shares one timestamp: finish it in id order, then move past it.
        after_id: int | None = None
        while True:
            response = search(tie_request(last, after_id, properties, page_size))
            tied = response.get("results", [])
            page = fresh(tied)
            if page:
                yield page
            if _complete(response, tied, page_size):
                break
            after_id = int(tied[-1]["id"])
        request = range_request("GT", last, end_ms, properties, page_size)
