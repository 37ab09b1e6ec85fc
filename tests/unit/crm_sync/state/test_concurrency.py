"""Concurrent writers lose nothing: processes merging different fields of the same pairs, counting one entry.

Real processes (spawned, each with its own engine and connections) against a real PostgreSQL, and the
SQLite file of the local demo. Every merge adds a field name never written before, so an update lost at
any point (a read-modify-write in Python, a whole-document overwrite) leaves a hole in the final snapshot.
"""

import json
import multiprocessing
from collections.abc import Callable

import pandas as pd
import pytest

from crm_sync.state.engine import create_state_engine
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.store import SyncStateStore

pytestmark = pytest.mark.integration

WORKERS = 3
ITERATIONS = 200
PAIRS = 20
CALLS = 150


def _merge_own_fields(url: str, worker: int, start) -> None:
    store = SyncStateStore(create_state_engine(url))
    sf_ids = [f"003{i:04d}" for i in range(PAIRS)]
    start.wait()
    for iteration in range(ITERATIONS):
        fields = json.dumps({f"w{worker}_i{iteration}": f"{worker}:{iteration}", f"w{worker}_last": str(iteration)})
        pairs = pd.DataFrame(
            {"salesforce_id": sf_ids, "hubspot_id": [f"{i}" for i in range(PAIRS)], "field_values": fields}
        )
        store.merge_snapshots(pairs, run_id=f"worker-{worker}")
    store.engine.dispose()


def _count_attempts(url: str, worker: int, start) -> None:
    store = SyncStateStore(create_state_engine(url), RetryPolicy(max_attempts=10_000))
    entry = pd.DataFrame(
        {
            "target": ["hubspot"],
            "source_id": ["003SHARED"],
            "target_id": [None],
            "action": ["update"],
            "data_hash": ["same"],
            "code": [f"E{worker}"],
            "message": [None],
        }
    )
    start.wait()
    for _ in range(CALLS):
        store.record_attempts(entry, run_id=f"worker-{worker}")
    store.engine.dispose()


def _run_workers(target: Callable[..., None], url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    processes = [context.Process(target=target, args=(url, worker, start)) for worker in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
    assert [process.exitcode for process in processes] == [0] * WORKERS


def test_concurrent_merges_of_different_fields_all_land(store, state_url):
    store.merge_snapshots(
        pd.DataFrame(
            {
                "salesforce_id": [f"003{i:04d}" for i in range(PAIRS)],
                "hubspot_id": [f"{i}" for i in range(PAIRS)],
                "field_values": '{"base": "b"}',
            }
        ),
        run_id="seed",
    )
    _run_workers(_merge_own_fields, state_url)
    snapshots = store.read_all_snapshots()
    assert len(snapshots) == PAIRS
    expected = {"base": "b"}
    for worker in range(WORKERS):
        expected[f"w{worker}_last"] = str(ITERATIONS - 1)
        expected.update({f"w{worker}_i{i}": f"{worker}:{i}" for i in range(ITERATIONS)})
    for field_values in snapshots["field_values"]:
        assert json.loads(field_values) == expected


def test_concurrent_attempts_on_one_key_count_every_call(store, state_url):
    _run_workers(_count_attempts, state_url)
    entries = store.entries()
    assert len(entries) == 1
    assert entries["attempts"][0] == WORKERS * CALLS
