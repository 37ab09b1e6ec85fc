"""A merge's survivor takes over its pair: `relink_pair` moves one side's id, the agreed values kept."""

import pandas as pd
import pytest

from tests.unit.crm_sync.state.test_store_snapshots import frame as pairs
from tests.unit.crm_sync.state.test_store_snapshots import stored


def test_a_hubspot_id_moves_to_the_merged_record_with_the_agreed_values(store):
    store.merge_snapshots(pairs(("003A", "101", {"title": "Engineer"}), ("003B", "102", {})), run_id="r1")
    assert store.relink_pair("hubspot", "101", "103") == 1
    assert stored(store) == {"003A": ("103", {"title": "Engineer"}), "003B": ("102", {})}
    assert store.read_snapshots(hubspot_ids=["103"])["salesforce_id"].tolist() == ["003A"]


def test_a_salesforce_id_moves_to_the_master(store):
    store.merge_snapshots(pairs(("003B", "102", {"email": "bob@x.io"})), run_id="r1")
    assert store.relink_pair("salesforce", "003B", "003Z") == 1
    assert stored(store) == {"003Z": ("102", {"email": "bob@x.io"})}


def test_an_id_a_pair_already_holds_is_not_taken_and_a_missing_pair_moves_nothing(store):
    store.merge_snapshots(pairs(("003A", "101", {}), ("003B", "102", {})), run_id="r1")
    assert store.relink_pair("salesforce", "003B", "003A") == 0
    assert store.relink_pair("hubspot", "999", "103") == 0
    assert stored(store) == {"003A": ("101", {}), "003B": ("102", {})}


def test_an_unknown_side_is_refused(store):
    with pytest.raises(ValueError, match="side must be one of"):
        store.relink_pair("zoho", "1", "2")


def test_merged_tombstones_are_read_by_their_survivor(store):
    happened = pd.Timestamp("2026-11-28 10:16", tz="UTC")
    store.record_tombstones(
        pd.DataFrame(
            [
                ("salesforce", "003B", "merged", happened, "003A", "102"),
                ("salesforce", "003C", "deleted", happened, None, "103"),
                ("hubspot", "101", "merged", happened, "003A", "003A"),
            ],
            columns=["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"],
        ),
        run_id="r1",
    )
    found = store.read_merged_into("salesforce", ["003A", "003Z"])
    assert found[["contact_id", "survivor_id", "counterpart_id"]].values.tolist() == [["003B", "003A", "102"]]
    assert store.read_merged_into("salesforce", []).empty
