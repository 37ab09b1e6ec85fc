"""Retry-queue leases on SQLite and PostgreSQL: a run takes the due entries it writes, settles or hands them
back; a cleared run takes back its own; an expired lease counts the lost try; permanent refusals park at once;
tables of an earlier release gain the lease columns."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from crm_sync.state.policy import RetryPolicy
from crm_sync.state.schema import retry_queue
from crm_sync.state.store import QUEUE_COLUMNS, SyncStateStore
from tests.unit.crm_sync.state.test_store_queue import entry, failed, keys, with_policy

LEASE = timedelta(minutes=120)


def due_now(store: SyncStateStore, *source_ids: str, target: str = "hubspot") -> None:
    """Entries with one attempt, due at once (as if their backoff had passed)."""
    store.record_attempts(failed(*source_ids, target=target), run_id="seed")
    store.release(source_ids=source_ids)


def claimed_ids(frame: pd.DataFrame) -> list[str]:
    return list(frame["source_id"])


def test_a_run_takes_the_due_entries_and_a_concurrent_run_finds_none(store):
    due_now(store, "003A", "003B")
    before = datetime.now(UTC)
    first = store.claim_due(run_id="backfill__1", run_try="0")
    assert claimed_ids(first) == ["003A", "003B"]
    assert list(first.columns) == QUEUE_COLUMNS
    row = entry(store, "003A")
    assert (row["lease_run_id"], row["lease_try"]) == ("backfill__1", "0")
    assert row["next_attempt_at"] == row["lease_expires_at"] >= before + LEASE
    assert row["attempts"] == 0  # taking is not trying: settle counts
    assert store.claim_due(run_id="scheduled__2", run_try="0").empty
    assert store.due().empty


def test_only_the_targets_asked_for_are_taken(store):
    due_now(store, "003A", target="hubspot")
    due_now(store, "7001", target="salesforce")
    assert claimed_ids(store.claim_due(run_id="r1", run_try="0", targets=["salesforce"])) == ["7001"]
    assert claimed_ids(store.claim_due(run_id="r2", run_try="0")) == ["003A"]
    with pytest.raises(ValueError, match="target must be one of"):
        store.claim_due(run_id="r3", run_try="0", targets=["zoho"])


def test_settling_counts_one_attempt_and_ends_the_lease(store):
    due_now(store, "003A")
    store.claim_due(run_id="r1", run_try="0")
    store.record_attempts(failed("003A", code="E1"), run_id="r1", run_try="0")
    row = entry(store, "003A")
    assert row["attempts"] == 1
    assert row["lease_run_id"] is None and row["lease_try"] is None and pd.isna(row["lease_expires_at"])
    assert row["next_attempt_at"] - row["last_attempt_at"] == timedelta(minutes=15)  # the backoff, not the lease
    assert store.claim_due(run_id="r2", run_try="0").empty
    assert claimed_ids(store.claim_due(run_id="r2", run_try="0", now=row["next_attempt_at"])) == ["003A"]


def test_another_run_recording_the_entry_leaves_the_lease_to_its_holder(store):
    due_now(store, "003A")
    store.claim_due(run_id="r1", run_try="0")
    store.record_attempts(failed("003A"), run_id="r2", run_try="0")  # the contact was also in r2's window
    store.record_attempts(failed("003A"), run_id="r1", run_try="1")  # another try of the holder
    row = entry(store, "003A")
    assert row["attempts"] == 2
    assert (row["lease_run_id"], row["lease_try"]) == ("r1", "0")
    assert store.claim_due(run_id="r3", run_try="0", now=row["next_attempt_at"]).empty


def test_a_resolved_entry_leaves_the_queue_with_its_lease(store):
    due_now(store, "003A")
    store.claim_due(run_id="r1", run_try="0")
    assert store.resolve(keys("003A")) == 1
    assert store.entries().empty


def test_untried_entries_are_handed_back_due_at_once_uncounted(store):
    due_now(store, "003A", "003B")
    store.claim_due(run_id="r1", run_try="0")
    store.record_attempts(failed("003A"), run_id="r1", run_try="0")
    assert store.release_claims(run_id="r1", run_try="0") == 1
    row = entry(store, "003B")
    assert row["attempts"] == 0 and row["lease_run_id"] is None
    assert claimed_ids(store.due()) == ["003B"]
    assert claimed_ids(store.claim_due(run_id="r2", run_try="0")) == ["003B"]
    assert store.release_claims(run_id="r1", run_try="0") == 0  # r2's lease is not r1's to hand back


def test_the_same_run_takes_back_its_own_lease_on_a_task_retry_or_a_cleared_try(store):
    due_now(store, "003A")
    store.claim_due(run_id="r1", run_try="0")
    assert claimed_ids(store.claim_due(run_id="r1", run_try="0")) == ["003A"]  # reconcile retried in the same try
    assert claimed_ids(store.claim_due(run_id="r1", run_try="1")) == ["003A"]  # the run cleared: its next try
    row = entry(store, "003A")
    assert (row["attempts"], row["lease_try"]) == (0, "1")
    assert store.release_claims(run_id="r1", run_try="0") == 0  # the earlier try no longer holds it
    store.record_attempts(failed("003A"), run_id="r1", run_try="1")
    row = entry(store, "003A")
    assert row["attempts"] == 1 and row["lease_run_id"] is None


def test_an_expired_lease_of_another_run_counts_its_lost_try(store):
    due_now(store, "003A")
    store.claim_due(run_id="dead", run_try="0")
    ended = entry(store, "003A")["lease_expires_at"]
    assert store.claim_due(run_id="r2", run_try="0", now=ended - timedelta(seconds=1)).empty
    taken = store.claim_due(run_id="r2", run_try="0", now=ended)
    assert claimed_ids(taken) == ["003A"]
    row = taken.iloc[0]
    assert (row["attempts"], row["code"], row["lease_run_id"]) == (1, "LEASE_EXPIRED", "r2")
    assert "run dead took it" in row["message"]
    assert row["lease_expires_at"] == ended + LEASE


def test_an_expired_lease_that_reaches_the_limit_parks_the_entry(store):
    store = with_policy(store, RetryPolicy(max_attempts=2, lease_minutes=30))
    store.record_attempts(failed("003A"), run_id="r0")  # attempt 1 of 2
    store.claim_due(run_id="dead", run_try="0", now=entry(store, "003A")["next_attempt_at"])
    ended = entry(store, "003A")["lease_expires_at"]
    assert store.claim_due(run_id="r2", run_try="0", now=ended).empty
    row = entry(store, "003A")
    assert (row["attempts"], row["status"], row["code"], row["lease_run_id"]) == (2, "parked", "LEASE_EXPIRED", None)


def test_a_permanent_refusal_is_parked_at_once_with_its_answer(store):
    refused = failed("003A", "003B", code="INVALID_EMAIL", message="not an email").assign(permanent=[True, False])
    store.record_attempts(refused, run_id="r1")
    parked, pending = entry(store, "003A"), entry(store, "003B")
    assert (parked["attempts"], parked["status"], parked["code"], parked["message"]) == (
        1,
        "parked",
        "INVALID_EMAIL",
        "not an email",
    )
    assert (pending["attempts"], pending["status"]) == (1, "pending")
    store.release(source_ids=["003B"])
    assert claimed_ids(store.claim_due(run_id="r2", run_try="0", now=parked["next_attempt_at"])) == ["003B"]


def test_a_permanent_refusal_of_a_pending_entry_parks_it_counting_the_attempt(store):
    store.record_attempts(failed("003A"), run_id="r1")
    store.record_attempts(failed("003A", code="DUPLICATE").assign(permanent=True), run_id="r2")
    row = entry(store, "003A")
    assert (row["attempts"], row["status"], row["code"]) == (2, "parked", "DUPLICATE")


def test_a_parked_permanent_refusal_is_pending_again_when_the_data_changes(store):
    store.record_attempts(failed("003A").assign(permanent=True), run_id="r1")
    store.record_attempts(failed("003A", data_hash="h2", code="TIMEOUT"), run_id="r2")
    row = entry(store, "003A")
    assert (row["attempts"], row["status"], row["code"]) == (1, "pending", "TIMEOUT")
    store.record_attempts(failed("003A", data_hash="h3").assign(permanent=True), run_id="r3")
    assert (entry(store, "003A")["attempts"], entry(store, "003A")["status"]) == (1, "parked")


def test_permanent_takes_booleans_or_nothing(store):
    store.record_attempts(failed("003A", "003B").assign(permanent=[None, True]), run_id="r1")
    assert entry(store, "003A")["status"] == "pending"
    assert entry(store, "003B")["status"] == "parked"
    with pytest.raises(ValueError, match="permanent must be true, false or missing"):
        store.record_attempts(failed("003C").assign(permanent="yes"), run_id="r1")
    assert store.entries(source_ids=["003C"]).empty


def test_a_queue_table_of_an_earlier_release_gains_the_lease_columns(state_url):
    from crm_sync.state.engine import create_state_engine

    engine = create_state_engine(state_url)
    earlier = sa.MetaData()
    lease_columns = {"lease_run_id", "lease_try", "lease_expires_at"}
    sa.Table(
        retry_queue.name,
        earlier,
        *(column._copy() for column in retry_queue.columns if column.name not in lease_columns),
    )
    earlier.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            earlier.tables[retry_queue.name].insert(),
            {
                "target": "hubspot",
                "source_id": "003OLD",
                "action": "update",
                "attempts": 3,
                "first_attempt_at": now - timedelta(hours=2),
                "last_attempt_at": now - timedelta(hours=1),
                "next_attempt_at": now - timedelta(minutes=1),
                "status": "pending",
                "run_id": "before-leases",
            },
        )
    store = SyncStateStore(engine)
    store.create_schema()
    store.create_schema()  # idempotent
    assert lease_columns <= {column["name"] for column in sa.inspect(engine).get_columns(retry_queue.name)}
    assert claimed_ids(store.claim_due(run_id="r1", run_try="0")) == ["003OLD"]
    store.record_attempts(failed("003OLD", data_hash=None), run_id="r1", run_try="0")
    row = entry(store, "003OLD")
    assert (row["attempts"], row["lease_run_id"]) == (4, None)
    engine.dispose()
