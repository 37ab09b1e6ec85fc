"""Concurrent writers lose nothing: processes merging different fields of the same pairs, counting one entry;
processes taking and settling due queue entries never hold one at the same time.

Real processes (spawned, each with its own engine and connections) against a real PostgreSQL, and the
SQLite file of the local demo. Every merge adds a field name never written before, so an update lost at
any point (a read-modify-write in Python, a whole-document overwrite) leaves a hole in the final snapshot.
"""

import itertools
import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from crm_sync.state.engine import create_state_engine
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.schema import pair_snapshots
from crm_sync.state.store import SyncStateStore

pytestmark = pytest.mark.integration

WORKERS = 3
ITERATIONS = 200
PAIRS = 20
CALLS = 150
ENTRIES = 30
CLAIM_ROUNDS = 40


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


def _entries(source_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "target": "hubspot",
            "source_id": source_ids,
            "target_id": None,
            "action": "update",
            "data_hash": "same",
            "code": "TIMEOUT",
            "message": None,
        }
    )


# Due again 0.6 ms after each attempt, never parked: entries pass from run to run as fast as runs settle.
FAST_RETRIES = RetryPolicy(base_minutes=1e-5, factor=1, cap_minutes=1e-5, max_attempts=10_000)


def _claim_and_settle(url: str, worker: int, start, spans_file: str) -> None:
    """Rounds of a run: take the due entries, then record an attempt for each (the settle), timing the hold."""
    store = SyncStateStore(create_state_engine(url), FAST_RETRIES)
    spans = []
    start.wait()
    for round_ in range(CLAIM_ROUNDS):
        run_id = f"worker-{worker}-{round_}"
        claimed = list(store.claim_due(run_id=run_id, run_try="0")["source_id"])
        taken = time.time()  # after the claim committed: the lease is held from here ...
        time.sleep(0.002)
        settling = time.time()  # ... to at least here, before the settle starts
        if claimed:
            store.record_attempts(_entries(claimed), run_id=run_id, run_try="0")
        spans.extend((source_id, taken, settling, run_id) for source_id in claimed)
    Path(spans_file).write_text(json.dumps(spans))
    store.engine.dispose()


def _run_workers(target: Callable[..., None], url: str, *args: object) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    processes = [
        context.Process(target=target, args=(url, worker, start, *(arg.format(worker=worker) for arg in args)))
        for worker in range(WORKERS)
    ]
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


def test_concurrent_runs_never_hold_one_entry_at_once_and_count_every_settled_try(store, state_url, tmp_path):
    store = SyncStateStore(store.engine, FAST_RETRIES)
    source_ids = [f"003{i:04d}" for i in range(ENTRIES)]
    store.record_attempts(_entries(source_ids), run_id="seed")
    store.release()  # all due, 0 attempts
    _run_workers(_claim_and_settle, state_url, str(tmp_path / "spans-{worker}.json"))
    spans = [span for worker in range(WORKERS) for span in json.loads((tmp_path / f"spans-{worker}.json").read_text())]
    by_entry: dict[str, list[tuple[float, float, str]]] = {}
    for source_id, taken, settling, run_id in spans:
        by_entry.setdefault(source_id, []).append((taken, settling, run_id))
    assert len({run_id for *_, run_id in spans}) > WORKERS, "the workers took turns too little to prove anything"
    for source_id, holds in by_entry.items():
        holds.sort()
        overlapping = [(a[2], b[2]) for a, b in itertools.pairwise(holds) if b[0] < a[1]]
        assert not overlapping, (source_id, overlapping)
    attempts = dict(zip(store.entries()["source_id"], store.entries()["attempts"], strict=True))
    assert attempts == {source_id: len(by_entry.get(source_id, [])) for source_id in source_ids}


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)  # SQLite writers take turns: no such race
def test_a_pair_linked_elsewhere_while_merging_is_merged_again_not_refused(store, state_url, caplog):
    """Another writer links hubspot_id 7 to another contact and commits while this merge waits on its row: the
    upsert's hubspot_id key refuses the row (PostgreSQL arbitrates only salesforce_id), the batch runs again, its
    relink delete now sees the other pair and the given pair lands."""
    other = create_state_engine(state_url)
    with other.connect() as conn:
        transaction = conn.begin()
        conn.execute(
            pair_snapshots.insert().values(
                salesforce_id="003OTHER", hubspot_id="7", field_values="{}", synced_at=datetime.now(UTC), run_id="other"
            )
        )
        merging = threading.Thread(
            target=store.merge_snapshots,
            args=(pd.DataFrame({"salesforce_id": ["003MINE"], "hubspot_id": ["7"], "field_values": '{"a": "1"}'}),),
            kwargs={"run_id": "mine"},
        )
        with caplog.at_level(logging.WARNING, logger="crm_sync.state.store"):
            merging.start()
            time.sleep(1.0)  # the merge's insert now waits on the uncommitted pair's hubspot_id
            transaction.commit()
            merging.join(timeout=30)
    other.dispose()
    snapshots = store.read_all_snapshots()
    assert list(zip(snapshots["salesforce_id"], snapshots["hubspot_id"], strict=True)) == [("003MINE", "7")]
    assert "merging the batch again" in caplog.text
