"""Opt-in (deselected by default): the deployment shape on this machine with two Celery workers.

.venv/bin/python -m pytest -m multiworker tests/multiworker -s     (about 5-10 minutes)
"""

from __future__ import annotations

import pytest

from tests.multiworker.proof import HUBSPOT_PER_10S, WORKERS, run_proof

pytestmark = [pytest.mark.multiworker, pytest.mark.integration, pytest.mark.slow]


def test_a_backfill_and_a_scheduled_run_sync_every_window_across_celery_workers(tmp_path) -> None:
    summary = run_proof(tmp_path)
    print("\n".join(summary.lines()))
    assert set(summary.runs.values()) == {"success"}
    assert len(summary.runs) >= 5
    assert summary.failed_tasks == []
    assert summary.retried_tasks == []  # a failure a retry hid counts too: the proof injects no fault
    assert summary.duplicates == {"salesforce_email": 0, "salesforce_link": 0, "hubspot_link": 0}
    assert summary.hubspot["requests"] > 0 and summary.hubspot["429"] == 0
    # The limit bound: the shared pool made calls wait, and the sandbox's own busiest rolling window stayed in it.
    assert None not in summary.pool.values()
    assert sum(stat["waited_acquires"] for stat in summary.pool.values()) > 0
    peaks = summary.hubspot["rate_limits"]
    assert peaks["requests_per_10s"]["limit"] == HUBSPOT_PER_10S
    assert all(peak["peak_offered"] <= peak["limit"] for peak in peaks.values()), peaks
    assert sum(1 for n in summary.workers_used.values() if n) == WORKERS
    assert summary.problems == []
