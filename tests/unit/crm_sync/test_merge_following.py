"""Following merges on a real sync-state database (SQLite): detection, the pair moved, tombstones, separate
counterparts left out with a skip, and the calls counted. The CRM reads are stand-ins returning staged frames."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
import pytest

from crm_sync.merge_following import MergeFollowing
from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import ANN_HS, ANN_SF, MAPPING, at, frames, hs_row, sf_row

WINDOW = (at(0).to_pydatetime(), at(15).to_pydatetime())


@dataclass
class StandIn:
    """A hook's part that following merges uses: merged rows, merges sent, and the call count."""

    merged: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["Id", "MasterRecordId", "SystemModstamp"])
    )
    merges: list[tuple[str, str]] = field(default_factory=list)
    api_calls: int = 0

    def merged_contacts(self, start, end) -> pd.DataFrame:
        self.api_calls += 1
        return self.merged

    def get_conn(self) -> None:
        """A session: not an API call (Salesforce's limits do not count token requests)."""

    def merge_contacts(self, primary: str, merged: str) -> str:
        self.api_calls += 1
        self.merges.append((primary, merged))
        return "900"


@dataclass
class Reader:
    fetchers: dict


@pytest.fixture
def store(tmp_path) -> SyncStateStore:
    state = SyncStateStore(create_state_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    state.create_schema()
    pairs = pd.DataFrame(
        [("003A", "101", json.dumps({"title": "Engineer"})), ("003B", "102", "{}")],
        columns=["salesforce_id", "hubspot_id", "field_values"],
    )
    state.merge_snapshots(pairs, run_id="first")
    return state


def following(store, hooks=None, *, mapping=MAPPING, dry_run=False, lines=None) -> MergeFollowing:
    """The run's merge following over stand-in hooks; log lines go to `lines`."""
    salesforce = (hooks or {}).get(Side.SALESFORCE) or StandIn()
    return MergeFollowing(
        salesforce_merged=lambda: salesforce.merged_contacts(*WINDOW),
        salesforce=salesforce,
        hubspot=(hooks or {}).get(Side.HUBSPOT) or StandIn(),
        store=store,
        mapping=mapping,
        targets=(Side.HUBSPOT, Side.SALESFORCE),
        run_id="run-2",
        dry_run=dry_run,
        log=lambda text, *args: (lines if lines is not None else []).append(text % args),
    )


def follow(candidates, store, salesforce=None, hubspot=None, *, mapping=MAPPING, dry_run=False):
    hooks = {Side.SALESFORCE: salesforce or StandIn(), Side.HUBSPOT: hubspot or StandIn()}
    empty = {Side.SALESFORCE: frames([], [])[0], Side.HUBSPOT: frames([], [])[1]}
    readers = {side: Reader({f"{side}_ids": lambda ids, side=side: empty[side]}) for side in Side}
    lines: list[str] = []
    run = following(store, hooks, mapping=mapping, dry_run=dry_run, lines=lines)
    followed = run.window(candidates, readers)
    return followed, lines


def test_a_hubspot_merge_moves_the_pair_and_leaves_the_secondarys_counterpart_apart(store):
    sf, _ = frames([sf_row("003A", link="101", **ANN_SF), sf_row("003B", link="102", Email="bob@example.com")], [])
    hs = pd.DataFrame([hs_row("103", minute=5, link="003A", **ANN_HS, hs_merged_object_ids="101;102")])
    followed, lines = follow({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, store)
    state = store.read_all_snapshots().set_index("salesforce_id")["hubspot_id"].to_dict()
    assert state == {"003A": "103", "003B": "102"}
    assert followed.candidates[Side.SALESFORCE]["Id"].tolist() == ["003A"]
    assert followed.skips[["target", "source_id", "action"]].values.tolist() == [["hubspot", "003B", "skip"]]
    tombstones = store.read_tombstones(hubspot_ids=["101", "102"])
    assert sorted(tombstones[["contact_id", "survivor_id", "counterpart_id"]].values.tolist()) == [
        ["101", "103", None],
        ["102", "103", "003B"],
    ]
    assert followed.merged[["contact_id", "counterpart_id"]].values.tolist() == [["101", "003A"], ["102", "003B"]]
    assert followed.counts == {
        "merged_away": 2,
        "pairs_moved": 1,
        "separate_counterparts": 1,
        "salesforce_api_calls": 1,
        "hubspot_api_calls": 0,
    }
    assert any("still separate" in line for line in lines)


def test_a_salesforce_merge_is_found_by_its_master_record_and_reported_without_its_counterpart_in_the_run(store):
    salesforce = StandIn(merged=pd.DataFrame({"Id": ["003B"], "MasterRecordId": ["003A"], "SystemModstamp": [at(3)]}))
    sf, hs = frames([sf_row("003A", minute=3, link="101", **ANN_SF)], [])
    followed, _ = follow({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, store, salesforce)
    assert followed.skips["reason"].tolist() == [
        "Salesforce 003B merged into 003A, paired with HubSpot 101; HubSpot 102 still separate"
    ]
    assert store.read_tombstones(salesforce_ids=["003B"])["counterpart_id"].tolist() == ["102"]

    # A later run: the counterpart edited; the tombstone keeps it from re-creating 003B.
    _, edited = frames([], [hs_row("102", minute=20, link="003B", email="bob@example.com")])
    later, _ = follow({Side.SALESFORCE: frames([], [])[0], Side.HUBSPOT: edited}, store)
    assert later.candidates[Side.HUBSPOT].empty
    assert later.skips[["target", "source_id"]].values.tolist() == [["salesforce", "102"]]


def test_a_known_hubspot_id_read_as_another_record_is_a_merge_no_window_showed(store):
    """The Salesforce contact of HubSpot 101 changed; reading 101 answered 103, merged before any window saw it."""
    sf, _ = frames([sf_row("003A", link="101", **ANN_SF)], [])
    hs = pd.DataFrame([hs_row("103", link="003A", **ANN_HS, lookup_key="101")])
    lines: list[str] = []
    run = following(store, lines=lines)
    followed = run.redirects({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, readers={})
    assert store.read_snapshots(salesforce_ids=["003A"])["hubspot_id"].tolist() == ["103"]
    assert followed.counts["hubspot_api_calls"] == followed.counts["salesforce_api_calls"] == 0
    assert store.read_tombstones(hubspot_ids=["101"])["survivor_id"].tolist() == ["103"]


def test_propagate_merges_merges_the_hubspot_counterpart_into_the_survivors(store):
    salesforce = StandIn(merged=pd.DataFrame({"Id": ["003B"], "MasterRecordId": ["003A"], "SystemModstamp": [at(3)]}))
    hubspot = StandIn()
    sf, hs = frames([sf_row("003A", minute=3, link="101", **ANN_SF)], [])
    mapping = MAPPING.model_copy(update={"propagate_merges": True})
    followed, _ = follow({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, store, salesforce, hubspot, mapping=mapping)
    assert hubspot.merges == [("101", "102")]
    assert store.read_snapshots(salesforce_ids=["003A"])["hubspot_id"].tolist() == ["900"]
    assert followed.skips["reason"].iloc[0].endswith("merged into HubSpot 101 too (propagate_merges), new id 900")
    assert sorted(store.read_tombstones(hubspot_ids=["101", "102"])["survivor_id"]) == ["900", "900"]


def test_a_dry_run_changes_no_state_and_sends_no_merge(store):
    salesforce = StandIn(merged=pd.DataFrame({"Id": ["003B"], "MasterRecordId": ["003A"], "SystemModstamp": [at(3)]}))
    hubspot = StandIn()
    mapping = MAPPING.model_copy(update={"propagate_merges": True})
    sf, hs = frames([sf_row("003A", minute=3, link="101", **ANN_SF)], [])
    follow({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, store, salesforce, hubspot, mapping=mapping, dry_run=True)
    assert hubspot.merges == []
    assert store.read_tombstones(salesforce_ids=["003B"]).empty


def test_a_salesforce_merge_into_an_unpaired_master_brings_the_counterpart_to_meet_it(store):
    """003B (paired with 102) merged into 003Z, which had no pair: 102 is read and pairs with 003Z by link."""
    salesforce = StandIn(merged=pd.DataFrame({"Id": ["003B"], "MasterRecordId": ["003Z"], "SystemModstamp": [at(3)]}))
    sf, hs = frames([sf_row("003Z", minute=3, Email="zed@example.com", LastName="Roe")], [])
    _, counterpart = frames([], [hs_row("102", link="003B", email="bob@example.com", lastname="Roe")])
    asked: list[list[str]] = []

    def read_hubspot(ids):
        asked.append(list(ids))
        return counterpart[counterpart["id"].isin(ids)]

    readers = {
        Side.SALESFORCE: Reader({"salesforce_ids": lambda ids: sf.iloc[0:0]}),
        Side.HUBSPOT: Reader({"hubspot_ids": read_hubspot}),
    }
    run = following(store, {Side.SALESFORCE: salesforce, Side.HUBSPOT: StandIn()})
    followed = run.window({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, readers)
    assert asked == [["102"]]
    assert store.read_snapshots(salesforce_ids=["003Z"])["hubspot_id"].tolist() == ["102"]
    assert followed.candidates[Side.HUBSPOT][["id", "salesforce_contact_id"]].values.tolist() == [["102", "003B"]]
    assert followed.candidates[Side.SALESFORCE]["HubSpot_Contact_Id__c"].tolist() == ["102"]  # claimed, see claim_link
    assert followed.skips.empty


def test_a_salesforce_survivor_keeps_pairing_by_link_while_its_loser_holds_the_link_value(store):
    """A later run: 003Z took 003B's pair (003B, in the Recycle Bin, keeps link value 102); 102 now links to 003Z."""
    store.relink_pair("salesforce", "003B", "003Z")
    merged = pd.DataFrame(
        [("salesforce", "003B", "merged", pd.Timestamp.now(tz="UTC"), "003Z", None)],
        columns=["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"],
    )
    store.record_tombstones(merged, run_id="run-1")
    sf, hs = frames([sf_row("003Z", Email="zed@example.com")], [hs_row("102", minute=20, link="003Z")])
    run = following(store)
    followed = run.redirects({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, readers={})
    assert followed.candidates[Side.SALESFORCE]["HubSpot_Contact_Id__c"].tolist() == ["102"]
    assert followed.candidates[Side.HUBSPOT]["id"].tolist() == ["102"] and followed.skips.empty


def test_a_survivor_whose_loser_left_its_counterpart_separate_claims_no_link(store):
    """003B's counterpart 102 stayed separate (its tombstone names it): 003A's blank link is not 003B's to fill."""
    store.merge_snapshots(
        pd.DataFrame([("003Z", "105", "{}")], columns=["salesforce_id", "hubspot_id", "field_values"]), run_id="x"
    )
    merged = pd.DataFrame(
        [("salesforce", "003B", "merged", pd.Timestamp.now(tz="UTC"), "003Z", "102")],
        columns=["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"],
    )
    store.record_tombstones(merged, run_id="run-1")
    sf, hs = frames([sf_row("003Z", Email="zed@example.com")], [])
    followed = following(store).redirects({Side.SALESFORCE: sf, Side.HUBSPOT: hs}, readers={})
    assert followed.candidates[Side.SALESFORCE]["HubSpot_Contact_Id__c"].isna().all()
