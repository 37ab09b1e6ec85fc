"""The retry queue on SQLite and PostgreSQL: attempts, backoff, parking, outcomes, resolve, due, release, clear."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from crm_sync.state.policy import RetryPolicy
from crm_sync.state.store import QUEUE_COLUMNS, SyncStateStore


def failed(*source_ids, target="hubspot", data_hash="h1", code="INVALID_EMAIL", message="refused", action="update"):
    return pd.DataFrame(
        {
            "target": target,
            "source_id": list(source_ids),
            "target_id": [f"t-{source_id}" for source_id in source_ids],
            "action": action,
            "data_hash": data_hash,
            "code": code,
            "message": message,
        }
    )


def keys(*source_ids, target="hubspot"):
    return pd.DataFrame({"target": target, "source_id": list(source_ids)})


def entry(store, source_id, target="hubspot"):
    found = store.entries(target=target, source_ids=[source_id])
    assert len(found) == 1
    return found.iloc[0]


def with_policy(store, policy):
    return SyncStateStore(store.engine, policy)


def test_a_new_entry_has_one_attempt_and_is_due_after_the_base_delay(store):
    before = datetime.now(UTC)
    store.record_attempts(failed("003A"), run_id="r1")
    row = entry(store, "003A")
    assert row["attempts"] == 1
    assert row["status"] == "pending"
    assert (row["code"], row["message"], row["target_id"], row["action"]) == (
        "INVALID_EMAIL",
        "refused",
        "t-003A",
        "update",
    )
    assert row["run_id"] == "r1"
    assert before <= row["first_attempt_at"] == row["last_attempt_at"]
    assert row["next_attempt_at"] - row["last_attempt_at"] == timedelta(minutes=15)
    assert list(store.entries().columns) == QUEUE_COLUMNS


def test_same_data_counts_up_with_growing_delays_until_parked(store):
    store = with_policy(store, RetryPolicy(base_minutes=10, factor=3, cap_minutes=200, max_attempts=4))
    delays = []
    for attempt in range(1, 6):
        store.record_attempts(failed("003A", code=f"E{attempt}"), run_id=f"r{attempt}")
        row = entry(store, "003A")
        assert row["attempts"] == attempt
        assert row["code"] == f"E{attempt}"
        assert row["status"] == ("parked" if attempt >= 4 else "pending")
        delays.append(row["next_attempt_at"] - row["last_attempt_at"])
    assert delays[:4] == [timedelta(minutes=m) for m in (10, 30, 90, 200)]
    assert store.queue_size() == {"pending": 0, "parked": 1}


def test_first_attempt_time_is_kept_while_the_data_is_the_same(store):
    store.record_attempts(failed("003A"), run_id="r1")
    first = entry(store, "003A")["first_attempt_at"]
    store.record_attempts(failed("003A"), run_id="r2")
    row = entry(store, "003A")
    assert row["first_attempt_at"] == first < row["last_attempt_at"]


def test_changed_data_starts_again_even_when_parked(store):
    store = with_policy(store, RetryPolicy(max_attempts=2))
    store.record_attempts(failed("003A"), run_id="r1")
    store.record_attempts(failed("003A"), run_id="r2")
    assert entry(store, "003A")["status"] == "parked"
    store.record_attempts(failed("003A", data_hash="h2"), run_id="r3")
    row = entry(store, "003A")
    assert (row["attempts"], row["status"], row["data_hash"]) == (1, "pending", "h2")
    assert row["first_attempt_at"] == row["last_attempt_at"]
    assert row["next_attempt_at"] - row["last_attempt_at"] == timedelta(minutes=15)


def test_a_missing_data_hash_equals_a_missing_one(store):
    store.record_attempts(failed("003A", data_hash=None), run_id="r1")
    store.record_attempts(failed("003A", data_hash=None), run_id="r2")
    assert entry(store, "003A")["attempts"] == 2
    store.record_attempts(failed("003A", data_hash="h"), run_id="r3")
    assert entry(store, "003A")["attempts"] == 1


def test_one_attempt_allowed_parks_at_once(store):
    store = with_policy(store, RetryPolicy(max_attempts=1))
    store.record_attempts(failed("003A"), run_id="r1")
    assert entry(store, "003A")["status"] == "parked"


def test_target_id_once_known_is_kept(store):
    store.record_attempts(failed("003A"), run_id="r1")
    later = failed("003A")
    later["target_id"] = None
    store.record_attempts(later, run_id="r2")
    assert entry(store, "003A")["target_id"] == "t-003A"


def test_entries_are_keyed_by_target_and_source(store):
    store.record_attempts(failed("003A", "003B"), run_id="r1")
    store.record_attempts(failed("003A", target="salesforce", action="create"), run_id="r1")
    assert len(store.entries()) == 3
    assert list(store.entries(target="hubspot")["source_id"]) == ["003A", "003B"]
    assert entry(store, "003A", target="salesforce")["attempts"] == 1


def test_bad_entries_are_refused(store):
    with pytest.raises(ValueError, match="target"):
        store.record_attempts(failed("003A", target="zendesk"), run_id="r1")
    with pytest.raises(ValueError, match="action"):
        store.record_attempts(failed("003A", action="merge"), run_id="r1")
    with pytest.raises(ValueError, match="duplicate"):
        store.record_attempts(failed("003A", "003A"), run_id="r1")
    with pytest.raises(ValueError, match="data_hash"):
        store.record_attempts(failed("003A").drop(columns="data_hash"), run_id="r1")
    assert store.entries().empty


def test_many_entries_across_batches(store):
    ids = [f"003{i:06d}" for i in range(12_000)]
    store.record_attempts(failed(*ids), run_id="r1")
    store.record_attempts(failed(*ids[::3]), run_id="r2")
    frame = store.entries()
    assert len(frame) == 12_000
    assert frame.set_index("source_id")["attempts"].sum() == 12_000 + 4_000


def test_outcomes_set_code_and_message_only(store):
    store.record_attempts(failed("003A", "003B"), run_id="r1")
    answers = pd.DataFrame(
        {"target": ["hubspot", "hubspot"], "source_id": ["003A", "003Z"], "code": ["429", "X"], "message": [None, "m"]}
    )
    assert store.record_outcomes(answers) == 1
    row = entry(store, "003A")
    assert (row["code"], pd.isna(row["message"]), row["attempts"]) == ("429", True, 1)
    assert entry(store, "003B")["code"] == "INVALID_EMAIL"
    assert store.record_outcomes(answers.iloc[0:0]) == 0


def test_resolve_deletes_only_the_given_keys(store):
    store.record_attempts(failed("003A", "003B", "003C"), run_id="r1")
    store.record_attempts(failed("003A", target="salesforce"), run_id="r1")
    assert store.resolve(keys("003A", "003C", "003Q")) == 2
    assert list(store.entries()[["target", "source_id"]].itertuples(index=False, name=None)) == [
        ("hubspot", "003B"),
        ("salesforce", "003A"),
    ]
    assert store.resolve(keys()) == 0


def test_due_lists_pending_entries_whose_time_has_come(store):
    store = with_policy(store, RetryPolicy(max_attempts=2))
    store.record_attempts(failed("003A", "003B"), run_id="r1")
    store.record_attempts(failed("003B"), run_id="r2")  # parked: never due
    assert store.due().empty
    soon = datetime.now(UTC) + timedelta(minutes=16)
    due = store.due(soon)
    assert list(due["source_id"]) == ["003A"]
    assert list(due.columns) == QUEUE_COLUMNS
    assert store.due(datetime.now(UTC) + timedelta(days=365))["source_id"].tolist() == ["003A"]


def test_due_refuses_a_naive_time(store):
    with pytest.raises(Exception, match="naive"):
        store.due(datetime(2026, 1, 1))


def test_release_makes_entries_due_now_with_attempts_reset(store):
    store = with_policy(store, RetryPolicy(max_attempts=2))
    store.record_attempts(failed("003A", "003B", "003C"), run_id="r1")
    store.record_attempts(failed("003A", "003B"), run_id="r2")
    assert store.queue_size() == {"pending": 1, "parked": 2}
    assert store.release(status="parked", source_ids=["003A"]) == 1
    assert list(store.due()["source_id"]) == ["003A"]
    row = entry(store, "003A")
    assert (row["attempts"], row["status"]) == (0, "pending")
    store.record_attempts(failed("003A"), run_id="r3")
    assert entry(store, "003A")["attempts"] == 1
    assert store.release() == 3
    assert sorted(store.due()["source_id"]) == ["003A", "003B", "003C"]


def test_clear_by_filter_or_all(store):
    store.record_attempts(failed("003A", "003B"), run_id="r1")
    store.record_attempts(failed("003A", target="salesforce"), run_id="r1")
    assert store.clear(target="hubspot", source_ids=["003B", "nope"]) == 1
    assert store.clear(source_ids=[]) == 0
    assert store.clear(status="parked") == 0
    assert store.clear() == 2
    assert store.entries().empty


def test_filters_are_checked(store):
    with pytest.raises(ValueError, match="target"):
        store.entries(target="zendesk")
    with pytest.raises(ValueError, match="status"):
        store.clear(status="done")


def test_queue_size_has_both_statuses(store):
    assert store.queue_size() == {"pending": 0, "parked": 0}
    store.record_attempts(failed("003A"), run_id="r1")
    assert store.queue_size() == {"pending": 1, "parked": 0}
