"""Pair snapshots on SQLite and PostgreSQL: per-field merge, relinks, reads by either id, deletes."""

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from crm_sync.state.store import SNAPSHOT_COLUMNS, WRITE_BATCH_ROWS


def frame(*pairs):
    """(salesforce_id, hubspot_id, {field: value}) tuples as the frame merge_snapshots takes."""
    return pd.DataFrame(
        [(sf, hs, json.dumps(values)) for sf, hs, values in pairs],
        columns=["salesforce_id", "hubspot_id", "field_values"],
    )


def stored(store):
    snapshots = store.read_all_snapshots()
    return {row.salesforce_id: (row.hubspot_id, json.loads(row.field_values)) for row in snapshots.itertuples()}


def test_new_pairs_are_inserted_with_their_fields(store):
    before = datetime.now(UTC)
    assert (
        store.merge_snapshots(
            frame(("003A", "101", {"email": "a@x.io", "phone": None}), ("003B", "102", {})), run_id="r1"
        )
        == 2
    )
    assert stored(store) == {"003A": ("101", {"email": "a@x.io", "phone": None}), "003B": ("102", {})}
    snapshots = store.read_all_snapshots()
    assert list(snapshots.columns) == SNAPSHOT_COLUMNS
    assert (snapshots["synced_at"] >= before).all()
    assert str(snapshots["synced_at"].dt.tz) == "UTC"


def test_given_fields_overwrite_and_fields_not_given_are_kept(store):
    store.merge_snapshots(frame(("003A", "101", {"email": "a@x.io", "firstname": "Ann", "phone": "1"})), run_id="r1")
    store.merge_snapshots(frame(("003A", "101", {"firstname": "Anne", "phone": None, "jobtitle": "CEO"})), run_id="r2")
    assert stored(store) == {
        "003A": ("101", {"email": "a@x.io", "firstname": "Anne", "phone": None, "jobtitle": "CEO"}),
    }


def test_a_null_value_stays_a_key_and_can_be_set_again(store):
    store.merge_snapshots(frame(("003A", "101", {"phone": "1"})), run_id="r1")
    store.merge_snapshots(frame(("003A", "101", {"phone": None})), run_id="r2")
    assert stored(store)["003A"][1] == {"phone": None}
    store.merge_snapshots(frame(("003A", "101", {"phone": "2"})), run_id="r3")
    assert stored(store)["003A"][1] == {"phone": "2"}


def test_values_with_quotes_unicode_and_backslashes_survive(store):
    values = {"lastname": 'O\'Neil "the" Müller \\ 李', "title": "a\nb"}
    store.merge_snapshots(frame(("003A", "101", values)), run_id="r1")
    store.merge_snapshots(frame(("003A", "101", {"other": "x"})), run_id="r2")
    assert stored(store)["003A"][1] == {**values, "other": "x"}


def test_merge_moves_synced_at_and_run_id(store):
    store.merge_snapshots(frame(("003A", "101", {"a": "1"})), run_id="r1")
    first = store.read_all_snapshots()["synced_at"][0]
    store.merge_snapshots(frame(("003A", "101", {"b": "2"})), run_id="r2")
    assert store.read_all_snapshots()["synced_at"][0] > first


def test_relink_of_the_hubspot_contact_removes_the_old_pair(store):
    store.merge_snapshots(
        frame(("003A", "101", {"email": "a@x.io"}), ("003B", "102", {"email": "b@x.io"})), run_id="r1"
    )
    store.merge_snapshots(frame(("003C", "101", {"firstname": "Cy"})), run_id="r2")
    assert stored(store) == {"003B": ("102", {"email": "b@x.io"}), "003C": ("101", {"firstname": "Cy"})}


def test_relink_of_the_salesforce_contact_starts_from_the_given_fields(store):
    store.merge_snapshots(frame(("003A", "101", {"email": "a@x.io", "phone": "1"})), run_id="r1")
    store.merge_snapshots(frame(("003A", "109", {"phone": "2"})), run_id="r2")
    assert stored(store) == {"003A": ("109", {"phone": "2"})}


def test_swapped_links_in_one_batch(store):
    store.merge_snapshots(frame(("003A", "101", {"n": "a"}), ("003B", "102", {"n": "b"})), run_id="r1")
    store.merge_snapshots(frame(("003A", "102", {"m": "1"}), ("003B", "101", {"m": "2"})), run_id="r2")
    assert stored(store) == {"003A": ("102", {"m": "1"}), "003B": ("101", {"m": "2"})}


def test_many_pairs_across_batches(store):
    n = WRITE_BATCH_ROWS * 2 + 7
    first = frame(*((f"003{i:06d}", f"{i}", {"email": f"c{i}@x.io", "phone": None}) for i in range(n)))
    assert store.merge_snapshots(first, run_id="r1") == n
    second = frame(*((f"003{i:06d}", f"{i}", {"phone": str(i)}) for i in range(0, n, 2)))
    store.merge_snapshots(second, run_id="r2")
    result = stored(store)
    assert len(result) == n
    assert result["003000002"][1] == {"email": "c2@x.io", "phone": "2"}
    assert result["003000003"][1] == {"email": "c3@x.io", "phone": None}


def test_duplicate_ids_in_one_call_are_refused(store):
    with pytest.raises(ValueError, match="duplicate"):
        store.merge_snapshots(frame(("003A", "101", {}), ("003A", "102", {})), run_id="r1")
    with pytest.raises(ValueError, match="duplicate"):
        store.merge_snapshots(frame(("003A", "101", {}), ("003B", "101", {})), run_id="r1")
    assert stored(store) == {}


def test_field_values_must_be_a_json_object(store):
    bad = pd.DataFrame({"salesforce_id": ["003A"], "hubspot_id": ["101"], "field_values": ['["not", "an object"]']})
    with pytest.raises(sa.exc.IntegrityError):
        store.merge_snapshots(bad, run_id="r1")


def test_missing_columns_are_named(store):
    with pytest.raises(ValueError, match="field_values"):
        store.merge_snapshots(pd.DataFrame({"salesforce_id": ["003A"], "hubspot_id": ["101"]}), run_id="r1")


def test_read_by_either_id_kind_or_both(store):
    store.merge_snapshots(frame(*((f"003{i}", f"10{i}", {"i": str(i)}) for i in range(6))), run_id="r1")
    assert set(store.read_snapshots(salesforce_ids=["0031", "0032"])["salesforce_id"]) == {"0031", "0032"}
    assert set(store.read_snapshots(hubspot_ids=["103"])["salesforce_id"]) == {"0033"}
    both = store.read_snapshots(salesforce_ids=["0031", "0034"], hubspot_ids=["101", "105", "999"])
    assert sorted(both["salesforce_id"]) == ["0031", "0034", "0035"]  # 0031 found both ways, listed once
    assert store.read_snapshots().empty
    assert list(store.read_snapshots(["nope"]).columns) == SNAPSHOT_COLUMNS


def test_reads_of_thousands_of_keys_in_one_parameter(store):
    n = 12_000
    store.merge_snapshots(frame(*((f"003{i:06d}", f"{i}", {}) for i in range(n))), run_id="r1")
    asked = [f"003{i:06d}" for i in range(0, n, 2)] + ["absent"] * 3
    assert len(store.read_snapshots(salesforce_ids=asked)) == n // 2
    assert len(store.read_snapshots(hubspot_ids=[str(i) for i in range(n)])) == n


def test_delete_by_either_id(store):
    store.merge_snapshots(frame(*((f"003{i}", f"10{i}", {}) for i in range(4))), run_id="r1")
    assert store.delete_snapshots(salesforce_ids=["0030"], hubspot_ids=["101", "999"]) == 2
    assert sorted(stored(store)) == ["0032", "0033"]
    assert store.delete_snapshots() == 0
