"""Records as the REST API returns them: an `attributes` block, dateTimes as 2026-11-28T14:00:00.000+0000,
and relationship fields nested under the relationship name (null when the lookup is empty)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce.schema import OBJECTS, ObjectDef
from sandbox.salesforce.soql import Path


def truncate_ms(when: datetime) -> datetime:
    """The sandbox clock to the millisecond, as the API renders dateTimes (stored values end in .000)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=when.microsecond // 1000 * 1000)


def format_datetime(when: datetime) -> str:
    when = truncate_ms(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def format_value(value: Any) -> Any:
    return format_datetime(value) if isinstance(value, datetime) else value


def attributes(obj_name: str, record_id: str | None, version: str) -> dict[str, str]:
    attrs = {"type": obj_name}
    if record_id:
        attrs["url"] = f"/services/data/v{version}/sobjects/{obj_name}/{record_id}"
    return attrs


def full_record(obj: ObjectDef, row: dict[str, Any], version: str, only: Iterable[str] | None = None) -> dict:
    """GET /sobjects/{type}/{id}: every field (or the requested ones) under canonical names."""
    names = [f.name for f in obj.fields] if only is None else list(only)
    out: dict[str, Any] = {"attributes": attributes(obj.name, row["Id"], version)}
    for name in names:
        out[name] = format_value(row.get(name))
    return out


def query_record(
    obj_name: str,
    row: dict[str, Any],
    paths: list[Path],
    version: str,
    parent: Callable[[dict[str, Any], str], dict[str, Any] | None],
) -> dict:
    """One row of a query result: the selected fields in order, relationships nested."""
    out: dict[str, Any] = {"attributes": attributes(obj_name, row["Id"], version)}
    obj = OBJECTS[obj_name]
    for path in paths:
        if len(path.parts) == 1:
            out[path.parts[0]] = format_value(row.get(path.parts[0]))
            continue
        rel = path.parts[0]
        if rel in out and out[rel] is None:
            continue
        parent_row = parent(row, rel)
        if parent_row is None:
            out[rel] = None
            continue
        nested = out.get(rel)
        if nested is None:
            ref = next(f.reference_to for f in obj.fields if f.relationship_name == rel)
            nested = out[rel] = {"attributes": attributes(ref or rel, parent_row["Id"], version)}
        nested[path.parts[-1]] = format_value(parent_row.get(path.parts[-1]))
    return out


def csv_value(value: Any) -> str:
    """Bulk API 2.0 CSV cell: dateTimes in the same format, booleans lower-case, null as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(format_value(value))
