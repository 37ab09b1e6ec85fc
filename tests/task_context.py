"""The run a directly executed operator sees in its context: which try of the run it belongs to."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

STARTED = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def dag_run(clear_number: int = 0, start_date: datetime | None = STARTED) -> SimpleNamespace:
    """The fields of the Task SDK's DagRun that `run_try` reads."""
    return SimpleNamespace(clear_number=clear_number, start_date=start_date)


FIRST_TRY = dag_run()
