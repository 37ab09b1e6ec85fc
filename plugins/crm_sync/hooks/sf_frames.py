"""Salesforce records (REST JSON or Bulk API 2.0 CSV) into the staged raw frame shape.

Relationship fields such as `Account.Name` come back nested in REST and as dotted CSV columns in Bulk;
both become one flat column. Timestamps become tz-aware UTC, `IsDeleted` a bool, blanks None.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

DATETIME_FIELDS = frozenset({"SystemModstamp", "LastModifiedDate", "CreatedDate"})
BOOL_FIELDS = frozenset({"IsDeleted"})


def _dig(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def records_to_frame(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> pd.DataFrame:
    """REST query records (with nested relationship objects) as a flat frame with `fields` as columns."""
    rows = [{name: _dig(record, name) for name in fields} for record in records]
    return finish_frame(pd.DataFrame(rows, columns=list(fields)))


def csv_to_frame(text: str, fields: Sequence[str]) -> pd.DataFrame:
    """A Bulk API 2.0 CSV page as a frame; an empty cell is a null in Bulk CSV."""
    if not text.strip():
        return finish_frame(pd.DataFrame(columns=list(fields)))
    frame = pd.read_csv(io.StringIO(text), dtype=object, keep_default_na=False)
    frame = frame.replace({"": None})
    for name in fields:
        if name not in frame.columns:
            frame[name] = None
    return finish_frame(frame[list(fields)])


def finish_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns: UTC datetimes, bool flags; other columns keep pandas' inference."""
    for name in frame.columns:
        if name in DATETIME_FIELDS:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif name in BOOL_FIELDS:
            frame[name] = frame[name].map(_to_bool).astype(bool)
    return frame.reset_index(drop=True)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value) if value is not None else False
