"""Times as people read them in the sync-health view: UTC to the second, no microseconds, no `+00:00`.

Reports, run ids and the sync state hold ISO timestamps with microseconds; the view shows them in UTC
(the DAG's schedule is UTC) and says so once in its heading. Text that is not a timestamp is left as is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A run id Airflow made: `<run type>__<ISO logical date or trigger time>` (a custom run id does not match).
_RUN_ID = re.compile(r"^(?P<kind>[a-z_]+?)__(?P<when>\d{4}-\d{2}-\d{2}[T ].+)$")
_WINDOW = re.compile(r"^\[(?P<start>[^,]+), (?P<end>[^)]+)\)$")


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from a datetime or ISO text (naive means UTC); None when it is not one."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def readable_time(value: object) -> str:
    """`2026-11-30 02:23:22`, seconds dropped when they are zero; other text unchanged, None as ''."""
    if value is None:
        return ""
    moment = parse_time(value)
    if moment is None:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M" if moment.second == 0 else "%Y-%m-%d %H:%M:%S")


def readable_window(window: str) -> str:
    """`[2026-11-28T09:43:00+00:00, 2026-11-28T10:00:00+00:00)` -> `2026-11-28 09:43 – 10:00`.

    The end keeps its date when the window crosses midnight; text that is no window is left as is.
    """
    match = _WINDOW.match(window or "")
    start, end = (parse_time(match["start"]), parse_time(match["end"])) if match else (None, None)
    if start is None or end is None:
        return window
    end_text = readable_time(end)
    if end.date() == start.date():
        end_text = end_text.split(" ", 1)[1]
    return f"{readable_time(start)} – {end_text}"


def readable_run_id(run_id: str) -> str:
    """`manual__2026-11-30T02:22:52.427930+00:00` -> `manual 2026-11-30 02:22:52`; custom ids unchanged."""
    match = _RUN_ID.match(run_id)
    if not match or parse_time(match["when"]) is None:
        return run_id
    return f"{match['kind']} {readable_time(match['when'])}"


def readable_duration(seconds: float | None) -> str:
    """`145395` -> `1 d 16 h`, `754.2` -> `12 min 34 s`, `3.25` -> `3.2 s`: the two largest units."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds % 1 else f"{seconds:.0f} s"
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    left = round(seconds)
    parts: list[str] = []
    for name, size in units:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    return " ".join(part for part in parts if not part.startswith("0 ")) or "0 s"
