"""The event bench's bookkeeping: calls between two counts (the edits' own left out), the table row, and which
windowed phases fit before a finishing time."""

from __future__ import annotations

from datetime import UTC, datetime

from benchmarks.bench_events import Calls, Count, Edit, Phase, plan_windowed, steady_end, windowed_end

BEFORE = Count(
    {"salesforce": {"GET query": 3, "PATCH record": 60}, "hubspot": {"POST search": 5, "PATCH contact": 40}},
    {"salesforce": 60, "hubspot": 40},
)
AFTER = Count(
    {
        "salesforce": {"GET query": 5, "PATCH record": 70, "GET describe": 1},
        "hubspot": {"POST search": 7, "PATCH contact": 49, "POST batch/read": 2},
    },
    {"salesforce": 70, "hubspot": 49},
)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, second, tzinfo=UTC)


def test_calls_between_two_counts_leave_the_edits_out() -> None:
    calls = Calls.between(BEFORE, AFTER)
    assert calls.per_crm == {"salesforce": 3, "hubspot": 4}
    assert calls.endpoints == {
        "salesforce": {"GET query": 2, "PATCH record": 10, "GET describe": 1},
        "hubspot": {"POST search": 2, "PATCH contact": 9, "POST batch/read": 2},
    }
    assert calls.text() == "7 (hubspot 4, salesforce 3)"


def test_a_row_gives_latency_percentiles_and_calls_per_synced_change() -> None:
    edits = [Edit("salesforce", f"003{n}", str(n), "v", 100.0, 100.0 + 10 * n) for n in range(1, 11)]
    edits.append(Edit("hubspot", "1", "003", "never", 100.0))
    row = Phase("events 1/s", edits, Calls.between(BEFORE, AFTER), 2, 60.0, [2.0, 4.0], "in the phase").row()
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:6] == ["events 1/s", "10 of 11", "55.0", "95.5", "100.0", "7 (hubspot 4, salesforce 3)"]
    assert cells[6:] == ["in the phase", "0.700", "2", "3.0 / 4.0"]


def test_a_short_stream_without_room_in_this_window_goes_to_the_next() -> None:
    assert windowed_end(at(3, 50), 120) == at(4, 4)
    assert windowed_end(at(3, 57, 30), 120) == at(4, 19)
    assert steady_end(at(3, 50)) == at(4, 19)


def test_short_phases_follow_the_steady_one_while_there_is_time() -> None:
    assert plan_windowed(at(3, 50), True, [5.0], 120, None) == (True, [5.0])
    assert plan_windowed(at(3, 50), True, [5.0], 120, at(4, 34)) == (True, [5.0])  # 4:00-4:15 + run, 4:15-4:30 + run
    assert plan_windowed(at(3, 50), True, [5.0, 2.0], 120, at(4, 34)) == (True, [5.0])
    assert plan_windowed(at(3, 50), True, [5.0], 120, at(4, 30)) == (True, [])
    assert plan_windowed(at(4, 5), True, [5.0], 120, at(4, 30)) == (False, [5.0])  # 4:15-4:30 + run is too late
    assert plan_windowed(at(4, 28), True, [5.0], 120, at(4, 34)) == (False, [])
