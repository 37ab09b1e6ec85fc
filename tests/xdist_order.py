"""`--dist loadfile` handing out the heaviest work first, so both xdist workers stay busy to the end.

pytest-xdist gives a worker whole files in the order it collected them (or by test count): the few files that
run real Airflow (minutes each) came last, one worker ran them while the other sat idle. Here the work units go
out by their measured cost, heaviest first, and the light files fill in behind them (longest processing time
first). The DAG-run files, whose tests share no module fixture, go out test by test so their weight spreads
over both workers. A file missing from the table keeps its collected order after the listed ones: the table
only orders work, it never selects or skips any.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling

#: A file's weight: its tests' seconds on one of 2 xdist workers (`pytest -n 2 --dist loadfile --durations=0`, summed
#: per file, 2026-12-07), the files of `airflow dags test` runs scaled by 0.6 for the warm runs measured since
#: (`tests/integration/warm_airflow.py`); refresh it when a file's weight changes a lot. Only the order matters.
FILE_SECONDS: dict[str, float] = {
    "tests/integration/test_dag_resilience.py": 415,
    "tests/integration/test_dag_retry_leases.py": 330,
    "tests/integration/test_dag_identity_deletes.py": 325,
    "tests/integration/test_dag_merges.py": 320,
    "tests/integration/test_dag_sync_state.py": 310,
    "tests/integration/test_health_view.py": 235,
    "tests/integration/test_airflow_ui.py": 180,
    "tests/integration/test_dag_clear.py": 175,
    "tests/integration/test_dag_events.py": 115,
    "tests/integration/test_dag_refusals.py": 105,
    "tests/unit/include/sync_logic/test_reconcile_properties.py": 95,
    "tests/integration/test_dag_operability.py": 80,
    "tests/unit/crm_sync/state/test_concurrency.py": 60,
    "tests/unit/include/sync_logic/test_merge_properties.py": 55,
    "tests/integration/test_dag_sync.py": 55,
    "tests/integration/test_dag_events_convergence.py": 55,
    "tests/integration/test_dag_read_plan.py": 50,
    "tests/integration/test_hooks_hubspot.py": 45,
    "tests/integration/test_dag_real_org.py": 45,
    "tests/unit/crm_sync/state/test_cli.py": 40,
    "tests/integration/test_ratelimit_multiprocess.py": 35,
    "tests/integration/test_extract_windows.py": 35,
    "tests/integration/test_staging_s3.py": 30,
    "tests/integration/test_sandbox_salesforce.py": 25,
}
#: An integration file not in the table yet weighs as a typical one: it goes out before the light unit files.
UNLISTED_INTEGRATION_SECONDS = 60.0

#: Files whose tests are independent (function-scoped fixtures only): each test is a work unit of its own.
PER_TEST: frozenset[str] = frozenset(
    {
        "tests/integration/test_dag_sync_state.py",
        "tests/integration/test_dag_resilience.py",
        "tests/integration/test_dag_merges.py",
        "tests/integration/test_dag_retry_leases.py",
        "tests/integration/test_dag_identity_deletes.py",
        "tests/integration/test_dag_refusals.py",
        "tests/unit/include/sync_logic/test_reconcile_properties.py",
        "tests/integration/test_dag_operability.py",
        "tests/integration/test_dag_read_plan.py",
        "tests/integration/test_dag_sync.py",
        "tests/unit/crm_sync/state/test_concurrency.py",
        "tests/unit/crm_sync/state/test_cli.py",
        "tests/integration/test_dag_events.py",
    }
)


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class HeaviestFirstScheduling(LoadFileScheduling):
    """Work units (a file, or a test of a `PER_TEST` file) in descending order of their estimated seconds.

    Only the queue of units is reordered: the workers' collections stay as collected, since xdist sends a
    worker the positions of its tests in them."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self.ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return nodeid if file_of(nodeid) in PER_TEST else file_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self.ordered:  # the first assignment: xdist has just queued every unit
            order = heaviest_first(list(self.workqueue), self.collection or [])
            self.workqueue = OrderedDict((scope, self.workqueue[scope]) for scope in order)
            self.ordered = True
        super()._assign_work_unit(node)


def heaviest_first(scopes: list[str], nodeids: Sequence[str]) -> list[str]:
    """The work units' scopes, the heaviest first; ties (unlisted files among them) keep their order."""
    tests_per_file = Counter(file_of(nodeid) for nodeid in nodeids)

    def unit_seconds(scope: str) -> float:
        path = file_of(scope)
        unlisted = UNLISTED_INTEGRATION_SECONDS if path.startswith("tests/integration/") else 0.0
        seconds = FILE_SECONDS.get(path, unlisted)
        return seconds / tests_per_file[path] if path in PER_TEST else seconds

    return sorted(scopes, key=lambda scope: -unit_seconds(scope))
