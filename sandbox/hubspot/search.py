"""CRM search: request validation, filter evaluation and ordering, in HubSpot's documented shape.

A filter group picks its candidates from an index where it can (EQ on id/email/unique property, a range
on a date or on hs_object_id) and only then evaluates every filter on those candidates, so the sync's
window query costs O(log n + k), not O(n). Results for one query and store version are cached, so paging
through them does not re-run the query.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.hubspot.errors import validation_error
from sandbox.hubspot.store import DATETIME_PROPS, Contact, ContactStore, email_key, to_ms

MAX_FILTER_GROUPS = 5  # HubSpot changelog, Aug 2024: 5 groups, 10 filters a group, 25 in total
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS_TOTAL = 25
MAX_SORTS = 1
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
RESULT_CAP = 10_000
QUERY_PROPERTIES = ("firstname", "lastname", "email", "phone", "mobilephone", "company")
OPERATORS = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
}  # fmt: skip


@dataclass(frozen=True)
class SearchRequest:
    groups: list[list[dict[str, Any]]]
    sort: tuple[str, bool] | None  # (property, descending)
    query: str | None
    properties: list[str] | None
    limit: int
    after: int

    def cache_key(self) -> str:
        return json.dumps([self.groups, self.sort, self.query], sort_keys=True, default=str)


def parse_request(body: Any, store: ContactStore) -> SearchRequest:
    if not isinstance(body, dict):
        raise validation_error("Search request body must be a JSON object")
    groups = [list(g.get("filters") or []) for g in body.get("filterGroups") or []]
    if len(groups) > MAX_FILTER_GROUPS:
        raise validation_error(f"Too many filter groups ({len(groups)}); the maximum is {MAX_FILTER_GROUPS}")
    if any(len(g) > MAX_FILTERS_PER_GROUP for g in groups):
        raise validation_error(f"A filter group may contain at most {MAX_FILTERS_PER_GROUP} filters")
    if sum(len(g) for g in groups) > MAX_FILTERS_TOTAL:
        raise validation_error(f"A search may contain at most {MAX_FILTERS_TOTAL} filters in total")
    for group in groups:
        for flt in group:
            _check_filter(flt, store)
    sorts = body.get("sorts") or []
    if len(sorts) > MAX_SORTS:
        raise validation_error(f"Too many sorts ({len(sorts)}); the maximum is {MAX_SORTS}")
    sort = _parse_sort(sorts[0], store) if sorts else None
    limit = _int(body.get("limit", DEFAULT_LIMIT), "limit")
    if not 0 < limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    after = _int(body.get("after") or 0, "after")
    if after >= RESULT_CAP:
        raise validation_error(
            f"Search results are limited to {RESULT_CAP} records per query; 'after' {after} is past that "
            "limit. Narrow the query (for example on lastmodifieddate) instead of paging further."
        )
    return SearchRequest(groups, sort, body.get("query") or None, body.get("properties"), limit, after)


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise validation_error(f"{name} must be an integer, got {value!r}") from None


def _check_filter(flt: Any, store: ContactStore) -> None:
    if not isinstance(flt, dict) or "propertyName" not in flt:
        raise validation_error("Each filter needs a propertyName and an operator")
    op = flt.get("operator", "EQ")
    if op not in OPERATORS:
        raise validation_error(f"Unknown operator {op}; use one of {sorted(OPERATORS)}")
    if flt["propertyName"] not in store.properties:
        raise validation_error(f"Property {flt['propertyName']} does not exist", propertyName=flt["propertyName"])
    if op in ("IN", "NOT_IN") and not isinstance(flt.get("values"), list):
        raise validation_error(f"{op} needs a 'values' list")
    if op == "BETWEEN" and ("value" not in flt or "highValue" not in flt):
        raise validation_error("BETWEEN needs 'value' and 'highValue'")
    if op not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN") and "value" not in flt:
        raise validation_error(f"{op} needs a 'value'")


def _parse_sort(sort: Any, store: ContactStore) -> tuple[str, bool]:
    if isinstance(sort, str):
        name, desc = sort.lstrip("-"), sort.startswith("-")
    elif isinstance(sort, dict) and "propertyName" in sort:
        name, desc = sort["propertyName"], str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        raise validation_error(f"Invalid sort {sort!r}")
    if name not in store.properties:
        raise validation_error(f"Property {name} does not exist", propertyName=name)
    return name, desc


# ---- evaluation ----------------------------------------------------------------------------------
def _typed(store: ContactStore, name: str, raw: Any) -> Any:
    """A filter operand in the property's comparable form (ms for dates, numbers, lowercase text)."""
    ptype = store.properties[name]["type"]
    if name == "hs_object_id" or ptype == "number":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise validation_error(f"{raw!r} is not a number for {name}") from None
    if ptype in ("datetime", "date"):
        text = str(raw)
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise validation_error(f"{raw!r} is not a timestamp (epoch ms or ISO 8601) for {name}") from None
    return str(raw).strip().lower()


def _field(store: ContactStore, name: str) -> Callable[[Contact], Any]:
    """A getter returning the record's comparable value, or None when the property is empty."""
    if name == "hs_object_id":
        return lambda c: float(c.id)
    if name in DATETIME_PROPS:
        attr = DATETIME_PROPS[name]
        return lambda c: getattr(c, attr)
    if store.properties[name]["type"] == "number":

        def number(c: Contact) -> float | None:
            try:
                return float(c.props[name])
            except (KeyError, ValueError):
                return None

        return number
    return lambda c: (c.props.get(name) or None) and c.props[name].lower()


def _predicate(store: ContactStore, flt: dict[str, Any]) -> Callable[[Contact], bool]:
    name, op = flt["propertyName"], flt.get("operator", "EQ")
    get = _field(store, name)
    if name == "email" and op in ("EQ", "IN"):
        # An email look-up also finds a contact by a secondary email (hs_additional_emails).
        wanted = {_typed(store, name, v) for v in (flt["values"] if op == "IN" else [flt["value"]])}
        return lambda c: not wanted.isdisjoint(c.emails())
    if op == "HAS_PROPERTY":
        return lambda c: get(c) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda c: get(c) is None
    if op in ("IN", "NOT_IN"):
        values = {_typed(store, name, v) for v in flt["values"]}
        if op == "IN":
            return lambda c: get(c) in values
        return lambda c: get(c) not in values
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(flt["value"]).lower()
        pattern = pattern if "*" in pattern else f"*{pattern}*"
        hit = op == "CONTAINS_TOKEN"
        return lambda c: (get(c) is not None and fnmatch.fnmatchcase(str(get(c)), pattern)) == hit
    low = _typed(store, name, flt["value"])
    if op == "BETWEEN":
        high = _typed(store, name, flt["highValue"])
        return lambda c: (v := get(c)) is not None and low <= v <= high
    compare = {
        "EQ": lambda v: v == low,
        "NEQ": lambda v: v != low,
        "LT": lambda v: v < low,
        "LTE": lambda v: v <= low,
        "GT": lambda v: v > low,
        "GTE": lambda v: v >= low,
    }[op]
    if op == "NEQ":
        return lambda c: (v := get(c)) is None or compare(v)
    return lambda c: (v := get(c)) is not None and compare(v)


def _candidates(store: ContactStore, group: list[dict[str, Any]]) -> Iterable[Contact]:
    """The smallest index slice that can hold the group's matches; a full scan when no filter helps."""
    for flt in group:
        name, op = flt["propertyName"], flt.get("operator", "EQ")
        if op != "EQ":
            continue
        value = str(flt["value"])
        if name == "hs_object_id":
            found = store.find(value)
        elif name == "email":
            found = store.find(email_key(value), "email")
        elif name in store.by_unique:
            found = store.find(value, name)
        else:
            continue
        return [found] if found else []
    best: tuple[int, int, list] | None = None
    for flt in group:
        name, op = flt["propertyName"], flt.get("operator", "EQ")
        span = _range(store, flt) if name in DATETIME_PROPS or name == "hs_object_id" else None
        if span is None:
            continue
        keys = store.active_ids if name == "hs_object_id" else _sorted_index(store, name)
        lo, hi = span
        start = bisect.bisect_left(keys, lo if name == "hs_object_id" else (lo, -1))
        stop = bisect.bisect_right(keys, hi if name == "hs_object_id" else (hi, float("inf")))
        if best is None or stop - start < best[1] - best[0]:
            best = (start, stop, keys)
    if best is None:
        return (store.contacts[i] for i in store.active_ids)
    start, stop, keys = best
    return (store.contacts[k if isinstance(k, int) else k[1]] for k in keys[start:stop])


def _sorted_index(store: ContactStore, name: str) -> list[tuple[int, int]]:
    return store.by_created if DATETIME_PROPS[name] == "created" else store.by_updated


def _range(store: ContactStore, flt: dict[str, Any]) -> tuple[float, float] | None:
    op = flt.get("operator", "EQ")
    inf = float("inf")
    if op not in ("EQ", "LT", "LTE", "GT", "GTE", "BETWEEN"):
        return None
    low = _typed(store, flt["propertyName"], flt["value"])
    return {
        "EQ": (low, low),
        "LT": (-inf, low),
        "LTE": (-inf, low),
        "GT": (low, inf),
        "GTE": (low, inf),
        "BETWEEN": (low, _typed(store, flt["propertyName"], flt.get("highValue", low))),
    }[op]


def _matches_query(contact: Contact, query: str) -> bool:
    return any(query in (contact.props.get(p) or "").lower() for p in QUERY_PROPERTIES)


class SearchEngine:
    """Runs searches over a ContactStore; caches full ordered id lists per (query, store version)."""

    def __init__(self, store: ContactStore, cache_size: int = 32) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[str, int], list[int]] = OrderedDict()
        self._cache_size = cache_size
        self._hidden: set[int] = set()

    def run(self, req: SearchRequest, now_ms: int) -> tuple[list[Contact], int, int | None]:
        """One page: the contacts, the total match count, and the next `after` (None at the end).

        Contacts whose last write is not indexed yet at `now_ms` are left out (the index trails writes).
        """
        self._hidden = self.store.settle_index(now_ms)
        ids = self._ordered_ids(req)
        stop = min(req.after + req.limit, len(ids), RESULT_CAP)
        page = [self.store.contacts[i] for i in ids[req.after : stop]]
        next_after = stop if stop < len(ids) else None
        return page, len(ids), next_after

    def _ordered_ids(self, req: SearchRequest) -> list[int]:
        key = (req.cache_key(), self.store.version)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        ids = self._evaluate(req)
        self._cache[key] = ids
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return ids

    def _evaluate(self, req: SearchRequest) -> list[int]:
        store = self.store
        matched: dict[int, Contact] = {}
        groups = req.groups or [[]]
        for group in groups:
            predicates = [_predicate(store, flt) for flt in group]
            for contact in _candidates(store, group):
                if contact.id in self._hidden:
                    continue
                if contact.id not in matched and all(p(contact) for p in predicates):
                    matched[contact.id] = contact
        contacts = list(matched.values())
        if req.query:
            needle = req.query.strip().lower()
            contacts = [c for c in contacts if _matches_query(c, needle)]
        contacts.sort(key=lambda c: c.id)
        if req.sort:
            name, desc = req.sort
            get = _field(store, name)
            present = [c for c in contacts if get(c) is not None]
            missing = [c for c in contacts if get(c) is None]
            present.sort(key=get, reverse=desc)
            contacts = present + missing
        return [c.id for c in contacts]
