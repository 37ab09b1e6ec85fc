"""The event bench's bookkeeping: calls split around the windowed echo run, the table rows, and which windowed
phases fit before a finishing time."""

from __future__ import annotations

from datetime import UTC, datetime

from benchmarks.bench_events import Calls, Edit, Phase, plan_windowed, windowed_end

EDITS_RUN = Calls(
    {"salesforce": 6, "hubspot": 5},
    {"salesforce": {"GET query": 3, "PATCH record": 60, "PATCH collection": 3}, "hubspot": {"POST search": 5}},
)
WITH_ECHO_RUN = Calls(
    {"salesforce": 9, "hubspot": 9},
    {
        "salesforce": {"GET query": 5, "PATCH record": 60, "PATCH collection": 3, "GET describe": 1},
        "hubspot": {"POST search": 7, "POST batch/read": 2},
    },
)


def edits(count: int, latency: float) -> list[Edit]:
    return [Edit("salesforce", f"003{n}", str(n), "v", 100.0, 100.0 + latency) for n in range(count)]


def test_the_echo_run_is_what_was_asked_after_the_edits_run() -> None:
    echo = WITH_ECHO_RUN.since(EDITS_RUN)
    assert echo.per_crm == {"salesforce": 3, "hubspot": 4}
    assert echo.endpoints == {
        "salesforce": {"GET query": 2, "GET describe": 1},
        "hubspot": {"POST search": 2, "POST batch/read": 2},
    }
    assert echo.text() == "7 (hubspot 4, salesforce 3)"


def test_a_windowed_phase_with_its_echo_run_shows_both_costs_per_change() -> None:
    phase = Phase(
        "windowed", 1.0, edits(10, 600.0), WITH_ECHO_RUN, 2, 900.0, [2.0, 4.0], WITH_ECHO_RUN.since(EDITS_RUN)
    )
    without, with_echo = phase.rows()
    assert without.split(" | ")[5:9] == ["11 (hubspot 5, salesforce 6)", "left out", "1.100", "1"]
    assert with_echo.split(" | ")[5:9] == [
        "18 (hubspot 9, salesforce 9)",
        "7 (hubspot 4, salesforce 3) in 1 run",
        "1.800",
        "2",
    ]
    assert with_echo.startswith("| windowed 1/s | 10 of 10 | 600.0 |") and with_echo.endswith("| 3.0 / 4.0 |")


def test_unsynced_edits_show_as_such() -> None:
    never = [Edit("hubspot", "1", "003", "v", 100.0)]
    (row,) = Phase("events", 5.0, never, EDITS_RUN, 1, 60.0, []).rows()
    assert row.startswith("| events 5/s | 0 of 1 | - | - | - |") and row.endswith("| - |")


def test_a_stream_without_room_in_this_window_goes_to_the_next() -> None:
    roomy, tight = datetime(2026, 12, 7, 3, 50, tzinfo=UTC), datetime(2026, 12, 7, 3, 57, 30, tzinfo=UTC)
    assert windowed_end(roomy, 120, echo=False) == datetime(2026, 12, 7, 4, 4, tzinfo=UTC)
    assert windowed_end(roomy, 120, echo=True) == datetime(2026, 12, 7, 4, 19, tzinfo=UTC)
    assert windowed_end(tight, 120, echo=False) == datetime(2026, 12, 7, 4, 19, tzinfo=UTC)


def test_phases_that_would_end_too_late_lose_their_echo_run_then_themselves() -> None:
    notes: list[str] = []
    soon = datetime.now(UTC)
    assert plan_windowed(1.0, True, 120, None, notes) is True
    assert plan_windowed(1.0, True, 120, soon.replace(year=soon.year + 1), notes) is True
    assert plan_windowed(5.0, True, 120, soon, notes) is None
    assert [note.split(":")[0] for note in notes] == ["windowed 5/s", "windowed 5/s"]
    assert "echo run was not waited for" in notes[0] and "left out" in notes[1]
