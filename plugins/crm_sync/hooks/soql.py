"""SOQL for the contact sync, built with simple-salesforce's `format_soql` (values escaped, never pasted).

Field names cannot be quoted in SOQL, so they are checked against the API-name grammar instead; values
(timestamps, ids, emails) always go through `format_soql`. IN lists are cut so each query stays well
under the REST URI limit (16,384 bytes for URI plus headers; Salesforce's help article 000386264) and
each string under the 4,000-character WHERE-clause limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from urllib.parse import quote_plus

from simple_salesforce.format import format_soql, quote_soql_value

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
MAX_STRING_CHARS = 4000
# Budget for the URL-encoded query text; leaves room for the path, Authorization and other headers.
DEFAULT_MAX_QUERY_BYTES = 8000
DEFAULT_MAX_IN_VALUES = 500


def check_fields(fields: Sequence[str]) -> list[str]:
    """Field API names, deduplicated in order; anything that is not a plain (dotted) name is refused."""
    out: list[str] = []
    for name in fields:
        if not _FIELD.match(name):
            raise ValueError(f"not a Salesforce field API name: {name!r}")
        if name not in out:
            out.append(name)
    return out


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("window bounds must be timezone-aware")


def window_where(start: datetime | None, end: datetime | None) -> str:
    """`SystemModstamp` in [start, end); an empty string for a full read."""
    if start is None and end is None:
        return ""
    if start is None or end is None:
        raise ValueError("give both window bounds or neither")
    _require_aware(start, end)
    if start.microsecond or end.microsecond:
        # SOQL datetime literals have whole seconds; a silent truncation would shift the window.
        raise ValueError("window bounds must be whole seconds")
    return format_soql(" WHERE SystemModstamp >= {} AND SystemModstamp < {}", start, end)


def select_contacts(fields: Sequence[str], start: datetime | None = None, end: datetime | None = None) -> str:
    """Contacts changed in the window, oldest change first (Id breaks ties) so pages are stable."""
    columns = ", ".join(check_fields(fields))
    return f"SELECT {columns} FROM Contact{window_where(start, end)} ORDER BY SystemModstamp, Id"


def select_contacts_unordered(fields: Sequence[str], start: datetime | None = None, end: datetime | None = None) -> str:
    """The same selection without ORDER BY: Bulk API 2.0 query jobs do not guarantee order anyway."""
    columns = ", ".join(check_fields(fields))
    return f"SELECT {columns} FROM Contact{window_where(start, end)}"


def count_contacts() -> str:
    """The org's contact count: `totalSize` of a `COUNT()` query, which returns no records."""
    return "SELECT COUNT() FROM Contact"


def select_where_in(fields: Sequence[str], column: str, values: Sequence[str]) -> str:
    """`SELECT fields FROM Contact WHERE column IN (values)`, values quoted and escaped."""
    columns = ", ".join(check_fields(fields))
    (column,) = check_fields([column])
    return f"SELECT {columns} FROM Contact WHERE {column} IN " + format_soql("{}", list(values))


def chunk_in_queries(
    fields: Sequence[str],
    column: str,
    values: Sequence[str],
    *,
    max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
    max_values: int = DEFAULT_MAX_IN_VALUES,
) -> Iterator[str]:
    """IN queries over `values` (deduplicated, blanks dropped), each within the byte and count budgets."""
    base = len(quote_plus(select_where_in(fields, column, ["x"]))) - len(quote_plus("'x'"))
    chunk: list[str] = []
    size = base
    seen: set[str] = set()
    for value in values:
        if value is None or value == "" or value in seen:
            continue
        seen.add(value)
        if len(value) > MAX_STRING_CHARS:
            raise ValueError(f"a value of {len(value)} characters exceeds SOQL's {MAX_STRING_CHARS}-character limit")
        cost = len(quote_plus(quote_soql_value(value))) + len(quote_plus(","))
        if chunk and (size + cost > max_query_bytes or len(chunk) >= max_values):
            yield select_where_in(fields, column, chunk)
            chunk, size = [], base
        if base + cost > max_query_bytes:
            raise ValueError("one value alone exceeds the query size budget")
        chunk.append(value)
        size += cost
    if chunk:
        yield select_where_in(fields, column, chunk)
