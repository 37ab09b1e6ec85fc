"""The scheduled bench's arithmetic: operator intervals from Airflow 3 JSON task logs, and their union."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench_scheduled import covered_seconds, operator_interval


def _log(path: Path, events: list[tuple[str, str, str]]) -> Path:
    path.write_text("\n".join(json.dumps({"timestamp": t, "event": e, "logger": lg}) for t, e, lg in events) + "\n")
    return path


def test_the_operator_runs_from_the_end_of_pre_execute_to_post_execute(tmp_path: Path) -> None:
    log = _log(
        tmp_path / "attempt=1.log",
        [
            ("2026-11-30T10:00:00.000000Z", "::group::Pre Execute", "task"),
            ("2026-11-30T10:00:01.500000Z", "::endgroup::", "task"),
            ("2026-11-30T10:00:02.000000Z", "::group::Decisions", "task"),
            ("2026-11-30T10:00:03.000000Z", "::endgroup::", "task"),
            ("2026-11-30T10:00:04.000000Z", "::group::Post Execute", "other.logger"),
            ("2026-11-30T10:00:05.250000Z", "::group::Post Execute", "task"),
        ],
    )
    start, end = operator_interval(log)
    assert end - start == 3.75


def test_a_task_that_never_reached_post_execute_has_no_interval(tmp_path: Path) -> None:
    log = _log(tmp_path / "attempt=1.log", [("2026-11-30T10:00:01Z", "::endgroup::", "task")])
    (tmp_path / "noise.log").write_text("not json\n")
    assert operator_interval(log) is None
    assert operator_interval(tmp_path / "noise.log") is None


def test_overlapping_intervals_count_once_and_gaps_not_at_all() -> None:
    assert covered_seconds([(0, 10), (5, 12), (20, 25), (21, 22)]) == 17
    assert covered_seconds([]) == 0
