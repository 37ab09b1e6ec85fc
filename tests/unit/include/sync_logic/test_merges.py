"""Merges made inside the CRMs: detection from staged rows, where the pairs go, and the losers' counterparts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.sync_logic.merge import SNAPSHOT_COLUMNS
from include.sync_logic.merges import (
    claim_link,
    follow_survivor,
    hubspot_merge_events,
    hubspot_redirect_events,
    merged_links,
    plan_merges,
    salesforce_merge_events,
    separate_skips,
)
from include.sync_logic.reconcile import reconcile
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import ANN_BASE, ANN_HS, ANN_SF, MAPPING, at, frames, hs_row, sf_row, snapshot

BOB_SF = {"Email": "bob@example.com", "FirstName": "Bob", "LastName": "Roe"}
BOB_HS = {"email": "bob@example.com", "firstname": "Bob", "lastname": "Roe"}
BOB_BASE = {**ANN_BASE, "email": "bob@example.com", "firstname": "Bob", "lastname": "Roe", "phone": None}


def hubspot(*rows: dict) -> pd.DataFrame:
    """Staged HubSpot rows with the extra columns they name (hs_merged_object_ids, lookup_key)."""
    return pd.DataFrame(list(rows))


def snapshots(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=SNAPSHOT_COLUMNS)


PAIRS = snapshots(snapshot("003A", "101", **ANN_BASE), snapshot("003B", "102", **BOB_BASE))


def events(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"side": side, "loser_id": loser, "survivor_id": survivor, "happened_at": at(20)}
            for side, loser, survivor in rows
        ]
    )


def tombstones(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"side": side, "contact_id": loser, "kind": "merged", "survivor_id": survivor}
            for side, loser, survivor in rows
        ]
    )


def test_a_hubspot_record_listing_known_ids_is_a_merge_of_each():
    hs = hubspot(hs_row("103", minute=20, hs_merged_object_ids="101;102;99"), hs_row("104"))
    found = hubspot_merge_events(hs, known_ids=["101", "102", "104"])
    assert found[["side", "loser_id", "survivor_id"]].values.tolist() == [
        ["hubspot", "101", "103"],
        ["hubspot", "102", "103"],
    ]
    assert (found["happened_at"] == at(20)).all()
    assert hubspot_merge_events(hs.drop(columns=["hs_merged_object_ids"]), ["101"]).empty


def test_a_read_by_a_known_id_answered_by_another_record_is_a_merge():
    hs = hubspot(hs_row("103", lookup_key="102"), hs_row("101", lookup_key="101"), hs_row("105", lookup_key="7"))
    found = hubspot_redirect_events(hs, known_ids=["101", "102"])
    assert found[["loser_id", "survivor_id"]].values.tolist() == [["102", "103"]]


def test_salesforce_deleted_rows_naming_a_master_are_merges():
    rows = pd.DataFrame({"Id": ["003B", "003C"], "MasterRecordId": ["003A", None], "SystemModstamp": [at(16), at(17)]})
    found = salesforce_merge_events(rows)
    assert found[["side", "loser_id", "survivor_id"]].values.tolist() == [["salesforce", "003B", "003A"]]


def test_a_hubspot_merge_of_two_pairs_moves_the_pair_the_survivor_links_and_leaves_the_other_apart():
    plan = plan_merges(events(("hubspot", "101", "103"), ("hubspot", "102", "103")), PAIRS, {"103": "003A"})
    assert plan.relinks.values.tolist() == [["hubspot", "101", "103", "003A"]]
    assert plan.separate.values.tolist() == [["salesforce", "003B", "102", "103", "003A"]]
    assert plan.tombstones[["side", "contact_id", "kind", "survivor_id", "counterpart_id"]].values.tolist() == [
        ["hubspot", "101", "merged", "103", None],  # its counterpart moved to the survivor
        ["hubspot", "102", "merged", "103", "003B"],
    ]


def test_the_secondarys_pair_moves_when_the_survivor_links_it():
    plan = plan_merges(events(("hubspot", "101", "103"), ("hubspot", "102", "103")), PAIRS, {"103": "003B"})
    assert plan.relinks.values.tolist() == [["hubspot", "102", "103", "003B"]]
    assert plan.separate["contact_id"].tolist() == ["003A"]


def test_a_salesforce_merge_into_a_paired_master_leaves_the_losers_counterpart_apart():
    plan = plan_merges(events(("salesforce", "003B", "003A")), PAIRS)
    assert plan.relinks.empty
    assert plan.separate.values.tolist() == [["hubspot", "102", "003B", "003A", "101"]]
    assert plan.tombstones[["contact_id", "survivor_id", "counterpart_id"]].values.tolist() == [["003B", "003A", "102"]]


def test_a_salesforce_merge_into_an_unpaired_master_moves_the_losers_pair():
    plan = plan_merges(events(("salesforce", "003B", "003Z")), PAIRS)
    assert plan.relinks.values.tolist() == [["salesforce", "003B", "003Z", "102"]]
    assert plan.separate.empty
    assert plan.tombstones[["contact_id", "survivor_id", "counterpart_id"]].values.tolist() == [["003B", "003Z", None]]


def test_an_unpaired_loser_is_only_a_tombstone():
    plan = plan_merges(events(("salesforce", "003Q", "003A")), PAIRS)
    assert plan.relinks.empty and plan.separate.empty
    assert plan.tombstones[["contact_id", "counterpart_id"]].values.tolist() == [["003Q", None]]


def test_a_counterpart_linked_to_a_merged_loser_stays_apart_with_a_reason():
    _, hs = frames([], [hs_row("102", link="003B", **BOB_HS), hs_row("101", link="003A", **ANN_HS)])
    found = merged_links(hs, Side.HUBSPOT, MAPPING, tombstones(("salesforce", "003B", "003A")), PAIRS)
    assert found.moved == {}
    assert found.separate.values.tolist() == [["hubspot", "102", "003B", "003A", "101"]]
    skips = separate_skips(found.separate, targets=[Side.SALESFORCE, Side.HUBSPOT])
    assert skips[["target", "action", "source_system", "source_id"]].values.tolist() == [
        ["salesforce", "skip", "hubspot", "102"]
    ]
    assert skips["reason"].tolist() == [
        "Salesforce 003B merged into 003A, paired with HubSpot 101; HubSpot 102 still separate"
    ]
    assert separate_skips(found.separate, targets=[Side.HUBSPOT]).empty


def test_the_state_relinked_to_the_survivor_keeps_a_pre_merge_edit():
    """HubSpot merged 101 and 102 into 103 (its values are 101's, older) after Salesforce edited Ann's title."""
    sf, _ = frames([sf_row("003A", minute=16, link="101", **ANN_SF, Title="Manager")], [])
    hs = hubspot(hs_row("103", minute=20, link="003A", **ANN_HS, hs_merged_object_ids="101;102"))
    stale = reconcile(sf, hs, sf_changed_ids=["003A"], hs_changed_ids=["103"], mapping=MAPPING, snapshots=PAIRS)
    to_hubspot = stale.decisions[stale.decisions["target"] == "hubspot"]
    assert "jobtitle" not in json.loads(to_hubspot["payload"].iloc[0]), "without the relink the merge's value wins"

    plan = plan_merges(hubspot_merge_events(hs, ["101", "102"]), PAIRS, {"103": "003A"})
    moved = PAIRS.assign(hubspot_id=PAIRS["hubspot_id"].replace(dict(plan.relinks[["old_id", "new_id"]].values)))
    result = reconcile(sf, hs, sf_changed_ids=["003A"], hs_changed_ids=["103"], mapping=MAPPING, snapshots=moved)
    by_target = result.decisions.set_index("target")
    assert json.loads(by_target.loc["hubspot", "payload"])["jobtitle"] == "Manager"
    assert json.loads(by_target.loc["salesforce", "payload"]) == {"HubSpot_Contact_Id__c": "103"}


@pytest.mark.parametrize("survivor_link", [None, "102"])
def test_a_salesforce_survivor_whose_pair_moved_pairs_by_its_claimed_link(survivor_link):
    """Salesforce merged 003B (paired with 102) into 003Z, which had no pair; the state moved the pair. 003B, in
    the Recycle Bin, still holds link value 102: only HubSpot's link is written."""
    moved_pairs = snapshots(snapshot("003Z", "102", **BOB_BASE))
    sf, hs = frames(
        [sf_row("003Z", minute=16, link=survivor_link, Email="zed@example.com", FirstName="Zed", LastName="Roe")],
        [hs_row("102", link="003B", **BOB_HS)],
    )
    found = merged_links(hs, Side.HUBSPOT, MAPPING, tombstones(("salesforce", "003B", "003Z")), moved_pairs)
    assert found.separate.empty and found.moved == {"102": "003Z"}
    sf = claim_link(sf, Side.SALESFORCE, MAPPING, {"003Z": "102"})
    assert sf["HubSpot_Contact_Id__c"].tolist() == ["102"]
    result = reconcile(sf, hs, sf_changed_ids=["003Z"], hs_changed_ids=[], mapping=MAPPING, snapshots=moved_pairs)
    by_target = result.decisions.set_index("target")
    assert by_target["action"].to_dict() == {"hubspot": "update", "salesforce": "skip"}
    to_hubspot = json.loads(by_target.loc["hubspot", "payload"])
    assert (to_hubspot["salesforce_contact_id"], to_hubspot["email"]) == ("003Z", "zed@example.com")


def test_a_hubspot_survivor_without_a_link_meets_the_moved_counterpart_and_both_links_are_written():
    """HubSpot merged 102 (paired with 003B) into the new 103, whose own link is blank; the state moved the pair."""
    moved_pairs = snapshots(snapshot("003B", "103", **BOB_BASE))
    sf, hs = frames([sf_row("003B", minute=16, link="102", **BOB_SF, Title="Lead")], [hs_row("103", **BOB_HS)])
    found = merged_links(sf, Side.SALESFORCE, MAPPING, tombstones(("hubspot", "102", "103")), moved_pairs)
    assert found.moved == {"003B": "103"}
    sf = follow_survivor(sf, Side.SALESFORCE, MAPPING, found.moved, hs)
    assert sf["HubSpot_Contact_Id__c"].isna().all() and sf["matched_key"].tolist() == ["bob@example.com"]
    result = reconcile(sf, hs, sf_changed_ids=["003B"], hs_changed_ids=[], mapping=MAPPING, snapshots=moved_pairs)
    payloads = {target: json.loads(text) for target, text in result.decisions[["target", "payload"]].values}
    assert payloads["hubspot"] == {"jobtitle": "Lead", "salesforce_contact_id": "003B"}
    assert payloads["salesforce"] == {"HubSpot_Contact_Id__c": "103"}
