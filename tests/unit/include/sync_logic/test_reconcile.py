"""Reconciliation rules, one test per rule, on small hand-made staged frames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.sync_logic.canonical import to_canonical
from include.sync_logic.counterparts import counterpart_requests
from include.sync_logic.decisions import DECISION_COLUMNS
from include.sync_logic.merge import SNAPSHOT_COLUMNS
from include.sync_logic.reconcile import reconcile
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import (
    ANN_BASE,
    ANN_HS,
    ANN_SF,
    MAPPING,
    frames,
    hs_row,
    sf_row,
    snapshot,
)


def reconciled(sf_rows, hs_rows, *, sf_changed=None, hs_changed=None, mapping=MAPPING, direction="both", base=()):
    sf, hs = frames(sf_rows, hs_rows)
    return reconcile(
        sf,
        hs,
        sf_changed_ids=sf["Id"] if sf_changed is None else sf_changed,
        hs_changed_ids=hs["id"] if hs_changed is None else hs_changed,
        mapping=mapping,
        direction=direction,
        snapshots=pd.DataFrame(list(base), columns=SNAPSHOT_COLUMNS),
    )


def run(sf_rows, hs_rows, **kwargs) -> pd.DataFrame:
    return reconciled(sf_rows, hs_rows, **kwargs).decisions


def one(decisions: pd.DataFrame, target: str) -> dict:
    rows = decisions[decisions["target"] == target]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


def writes(decisions: pd.DataFrame) -> pd.DataFrame:
    return decisions[decisions["action"].isin(["create", "update", "delete"])]


def test_linked_pair_already_equal_plans_nothing():
    decisions = run([sf_row("003A", link="101", **ANN_SF)], [hs_row("101", link="003A", minute=1, **ANN_HS)])
    assert list(decisions.columns) == DECISION_COLUMNS
    assert set(decisions["action"]) == {"skip"}
    assert set(decisions["reason"]) == {"already equal"}
    assert len(decisions) == 2


def test_echo_of_our_create_only_writes_the_missing_link():
    # We created HubSpot 101 from 003A; it comes back before link-back wrote 003A's link.
    decisions = run([sf_row("003A", **ANN_SF)], [hs_row("101", link="003A", minute=1, **ANN_HS)])
    assert one(decisions, "hubspot")["action"] == "skip"
    sf = one(decisions, "salesforce")
    assert (sf["action"], sf["target_id"], sf["reason"]) == ("update", "003A", "link missing")
    assert json.loads(sf["payload"]) == {"HubSpot_Contact_Id__c": "101"}


def test_a_link_claimed_twice_pairs_with_the_claimant_not_paired_elsewhere():
    # HubSpot 101 and 102 both say they are 003B, but 003A's own link already pairs 101 with 003A: 003B is
    # 102's. Without that, 003B would be created again in HubSpot beside 102.
    bo_sf = {"Email": "bo@example.com", "FirstName": "Bo", "LastName": "Park"}
    bo_hs = {"email": "bo.park@example.com", "firstname": "Bo", "lastname": "Park"}
    decisions = run(
        [sf_row("003A", link="101", **ANN_SF), sf_row("003B", **bo_sf)],
        [hs_row("101", link="003B", **ANN_HS), hs_row("102", link="003B", **bo_hs)],
    )
    assert writes(decisions)["action"].ne("create").all(), decisions
    pairs = set(decisions.loc[decisions["matched_by"] == "link", ["source_id", "target_id"]].itertuples(index=False))
    assert {("003A", "101"), ("003B", "102"), ("101", "003A"), ("102", "003B")} <= pairs


def test_email_match_without_links_links_both_sides():
    decisions = run([sf_row("003A", **ANN_SF)], [hs_row("101", **ANN_HS)])
    assert json.loads(one(decisions, "hubspot")["payload"]) == {"salesforce_contact_id": "003A"}
    assert json.loads(one(decisions, "salesforce")["payload"]) == {"HubSpot_Contact_Id__c": "101"}
    assert set(decisions["matched_by"]) == {"email"}


def test_only_salesforce_changed_sends_only_differing_fields():
    sf = sf_row("003A", link="101", minute=5, **{**ANN_SF, "FirstName": "Anne", "Title": "CTO"})
    hs = hs_row("101", link="003A", minute=9, **ANN_HS)  # newer, but not changed in this window
    decisions = run([sf], [hs], hs_changed=[], base=[snapshot("003A", "101", **ANN_BASE)])
    update = one(decisions, "hubspot")
    assert (update["action"], update["source_id"], update["target_id"]) == ("update", "003A", "101")
    assert json.loads(update["payload"]) == {"firstname": "Anne", "jobtitle": "CTO"}
    assert update["changed_fields"] == "firstname,title"
    assert not update["conflict"]
    assert one(decisions, "salesforce")["action"] == "skip"


def test_only_hubspot_changed_flows_to_salesforce_and_clears_with_null():
    sf = sf_row("003A", link="101", **{**ANN_SF, "Title": "CEO"})
    hs = hs_row("101", link="003A", minute=1, **{**ANN_HS, "lastname": "Lee-Park"})
    base = [snapshot("003A", "101", **{**ANN_BASE, "title": "CEO"})]
    update = one(run([sf], [hs], sf_changed=[], base=base), "salesforce")
    assert json.loads(update["payload"]) == {"LastName": "Lee-Park", "Title": None}


def test_salesforce_blank_clears_hubspot_with_empty_string():
    sf = sf_row("003A", link="101", **{**ANN_SF, "Phone": None})
    hs = hs_row("101", link="003A", **ANN_HS)
    update = one(run([sf], [hs], hs_changed=[], base=[snapshot("003A", "101", **ANN_BASE)]), "hubspot")
    assert json.loads(update["payload"]) == {"phone": ""}


def test_both_changed_later_change_wins_and_is_flagged():
    sf = sf_row("003A", link="101", minute=1, **{**ANN_SF, "LastName": "Old"})
    hs = hs_row("101", link="003A", minute=2, **{**ANN_HS, "lastname": "New"})
    decisions = run([sf], [hs])
    update = one(decisions, "salesforce")
    assert json.loads(update["payload"]) == {"LastName": "New"}
    assert update["reason"] == "conflict lastname: hubspot newer"
    assert bool(update["conflict"])
    assert one(decisions, "hubspot")["reason"] == "hubspot values win"


def test_both_changed_at_the_same_time_salesforce_wins():
    sf = sf_row("003A", link="101", minute=2, **{**ANN_SF, "LastName": "Sf"})
    hs = hs_row("101", link="003A", minute=2, **{**ANN_HS, "lastname": "Hs"})
    update = one(run([sf], [hs]), "hubspot")
    assert json.loads(update["payload"]) == {"lastname": "Sf"}
    assert update["reason"] == "conflict lastname: salesforce wins tie"


def _with_field(field: str, **changes):
    fields = tuple(f.model_copy(update=changes) if f.name == field else f for f in MAPPING.fields)
    return MAPPING.model_copy(update={"fields": fields})


def _with_rule(field: str, rule: str):
    return _with_field(field, conflict=rule)


def test_field_rule_salesforce_always_wins_even_when_only_hubspot_changed():
    mapping = _with_rule("title", "salesforce")
    sf = sf_row("003A", link="101", **{**ANN_SF, "Title": "CEO"})
    hs = hs_row("101", link="003A", minute=5, **{**ANN_HS, "jobtitle": "Boss", "firstname": "Annie"})
    decisions = run([sf], [hs], sf_changed=[], mapping=mapping)
    assert json.loads(one(decisions, "hubspot")["payload"]) == {"jobtitle": "CEO"}
    assert json.loads(one(decisions, "salesforce")["payload"]) == {"FirstName": "Annie"}


def test_prefer_hubspot_unless_blank():
    mapping = _with_rule("title", "prefer_hubspot_unless_blank")
    sf = sf_row("003A", link="101", minute=9, **{**ANN_SF, "Title": "CEO"})
    blank = run([sf], [hs_row("101", link="003A", **ANN_HS)], mapping=mapping)
    assert json.loads(one(blank, "hubspot")["payload"]) == {"jobtitle": "CEO"}
    filled = run([sf], [hs_row("101", link="003A", **{**ANN_HS, "jobtitle": "Boss"})], mapping=mapping)
    assert json.loads(one(filled, "salesforce")["payload"]) == {"Title": "Boss"}
    assert one(filled, "hubspot")["action"] == "skip"


def test_both_changed_conflict_rule_names_the_rule():
    mapping = _with_rule("lastname", "hubspot")
    sf = sf_row("003A", link="101", minute=9, **{**ANN_SF, "LastName": "Sf"})
    hs = hs_row("101", link="003A", minute=1, **{**ANN_HS, "lastname": "Hs"})
    update = one(run([sf], [hs], mapping=mapping), "salesforce")
    assert update["reason"] == "conflict lastname: hubspot wins by rule hubspot"


def test_creates_carry_the_link_and_the_lastname_default():
    decisions = run(
        [sf_row("003A", **{**ANN_SF, "Account.Name": "Acme"})],
        [hs_row("101", email="bo@example.com", firstname="Bo")],
    )
    to_hs = one(decisions, "hubspot")
    assert to_hs["action"] == "create" and pd.isna(to_hs["target_id"])
    assert json.loads(to_hs["payload"]) == {
        "email": "ann@example.com",
        "firstname": "Ann",
        "lastname": "Lee",
        "phone": "+14155550100",
        "company": "Acme",
        "salesforce_contact_id": "003A",
    }
    to_sf = one(decisions, "salesforce")
    assert to_sf["action"] == "create"
    assert json.loads(to_sf["payload"]) == {
        "Email": "bo@example.com",
        "FirstName": "Bo",
        "LastName": "[not provided]",
        "HubSpot_Contact_Id__c": "101",
    }


def test_lastname_placeholder_equals_a_blank_hubspot_lastname():
    sf = sf_row("003A", link="101", Email="bo@example.com", LastName="[not provided]")
    hs = hs_row("101", link="003A", email="bo@example.com")
    assert set(run([sf], [hs])["action"]) == {"skip"}


def test_missing_required_lastname_without_default_is_rejected():
    decisions = run([], [hs_row("101", email="bo@example.com")], mapping=_with_field("lastname", default_if_blank={}))
    reject = one(decisions, "salesforce")
    assert (reject["action"], reject["source_id"], reject["reason"]) == ("reject", "101", "missing required LastName")


def test_invalid_email_is_rejected_not_dropped():
    decisions = run([], [hs_row("101", email="ann@@example", lastname="Lee")])
    reject = one(decisions, "salesforce")
    assert (reject["action"], reject["reason"]) == ("reject", "invalid email")
    assert reject["payload"] == "{}"


def test_too_long_without_truncate_is_rejected_with_lengths():
    decisions = run([], [hs_row("101", email="bo@example.com", lastname="x" * 95)])
    assert one(decisions, "salesforce")["reason"] == "LastName too long (95 > 80)"


def test_matched_pair_with_refused_values_links_both_ways_and_rejects_only_the_refused_field():
    sf = sf_row("003A", minute=0, **ANN_SF)
    hs = hs_row("101", minute=5, **{**ANN_HS, "firstname": "A" * 60, "jobtitle": "CTO"})
    result = reconciled([sf], [hs], sf_changed=[], hs_changed=["101"])
    to_salesforce = result.decisions[result.decisions["target"] == "salesforce"].set_index("action")
    assert json.loads(to_salesforce.loc["update", "payload"]) == {"Title": "CTO", "HubSpot_Contact_Id__c": "101"}
    assert to_salesforce.loc["reject", "reason"] == "FirstName too long (60 > 40)"
    assert to_salesforce.loc["reject", "changed_fields"] == "firstname"
    to_hubspot = one(result.decisions, "hubspot")
    assert to_hubspot["action"] == "update"
    assert json.loads(to_hubspot["payload"]) == {"salesforce_contact_id": "003A"}
    # The refused field's base is Salesforce's value, so HubSpot stays the side that changed it:
    # the link write that makes Salesforce newer can never turn it around.
    (row,) = result.baseline.to_dict(orient="records")
    assert json.loads(row["field_values"])["firstname"] == "Ann"


def test_truncated_field_is_cut_and_then_compares_equal():
    long_title = "T" * 150
    created = one(run([], [hs_row("101", email="bo@example.com", lastname="Bo", jobtitle=long_title)]), "salesforce")
    assert json.loads(created["payload"])["Title"] == "T" * 128
    sf = sf_row("003A", link="101", Email="bo@example.com", LastName="Bo", Title="T" * 128)
    hs = hs_row("101", link="003A", email="bo@example.com", lastname="Bo", jobtitle=long_title)
    assert set(run([sf], [hs])["action"]) == {"skip"}


def test_company_flows_to_hubspot_only():
    sf = sf_row("003A", link="101", **{**ANN_SF, "Account.Name": "Acme"})
    hs = hs_row("101", link="003A", minute=5, **{**ANN_HS, "company": "Other Inc"})
    only_hs = run([sf], [hs], sf_changed=[])
    assert one(only_hs, "salesforce")["action"] == "skip"
    # When Salesforce changes, its account name goes to HubSpot even though HubSpot is newer.
    both = run([sf], [hs])
    assert json.loads(one(both, "hubspot")["payload"]) == {"company": "Acme"}
    assert "Account.Name" not in one(both, "salesforce")["payload"]


def test_duplicates_in_salesforce_create_one_counterpart():
    rows = [
        sf_row("003B", minute=5, Email="dup@example.com", LastName="B"),
        sf_row("003C", minute=1, Email=" DUP@example.com", LastName="C"),
        sf_row("003A", minute=1, Email="dup@example.com", LastName="A"),
    ]
    decisions = run(rows, [], direction="salesforce_to_hubspot")
    creates = decisions[decisions["action"] == "create"]
    assert creates["source_id"].tolist() == ["003A"]  # earliest modified, then smallest id
    rejects = decisions[decisions["action"] == "reject"].set_index("source_id")["reason"].to_dict()
    assert rejects == {"003B": "duplicate of 003A", "003C": "duplicate of 003A"}


def test_duplicate_rule_prefers_the_linked_contact():
    rows = [
        sf_row("003A", minute=1, Email="dup@example.com", LastName="A"),
        sf_row("003B", minute=5, Email="dup@example.com", LastName="B", link="101"),
    ]
    hs = [hs_row("101", link="003B", email="dup@example.com", lastname="B")]
    decisions = run(rows, hs)
    reject = decisions[decisions["action"] == "reject"]
    assert reject[["source_id", "reason"]].values.tolist() == [["003A", "duplicate of 003B"]]
    assert writes(decisions).empty


def test_unlinked_contact_whose_email_belongs_to_a_linked_pair_is_a_duplicate():
    rows = [
        sf_row("003A", Email="ann@example.com", LastName="New"),
        sf_row("003B", link="101", Email="ann.lee@example.com", LastName="Lee"),
    ]
    hs = [hs_row("101", link="003B", email="ann@example.com", lastname="Lee")]
    decisions = run(rows, hs, hs_changed=[])
    reject = decisions[decisions["source_id"] == "003A"]
    assert reject[["action", "reason"]].values.tolist() == [["reject", "duplicate of 003B"]]


def test_deletes_are_not_propagated_by_default():
    sf = sf_row("003A", link="101", deleted=True, **ANN_SF)
    hs = hs_row("101", link="003A", **ANN_HS)
    decision = one(run([sf], [hs], hs_changed=[]), "hubspot")
    assert (decision["action"], decision["reason"]) == ("skip", "salesforce contact deleted; delete propagation off")


def test_deletes_propagate_when_the_mapping_says_so():
    sf = sf_row("003A", link="101", **ANN_SF)
    hs = hs_row("101", link="003A", archived=True, **ANN_HS)
    decisions = run([sf], [hs], sf_changed=[], mapping=MAPPING.model_copy(update={"on_counterpart_deleted": "delete"}))
    delete = one(decisions, "salesforce")
    assert (delete["action"], delete["target_id"], delete["source_id"]) == ("delete", "003A", "101")
    assert one(decisions, "hubspot")["action"] == "skip"


def test_deleted_contacts_are_never_matched_by_email():
    sf = sf_row("003A", deleted=True, **ANN_SF)
    decisions = run(
        [sf], [hs_row("101", **ANN_HS)], mapping=MAPPING.model_copy(update={"on_counterpart_deleted": "delete"})
    )
    assert writes(decisions)["action"].tolist() == ["create"]  # 101 goes to Salesforce as a new contact
    assert one(decisions, "hubspot")["reason"] == "salesforce contact deleted; no hubspot counterpart"


@pytest.mark.parametrize(
    ("direction", "targets"), [("salesforce_to_hubspot", {"hubspot"}), ("hubspot_to_salesforce", {"salesforce"})]
)
def test_direction_limits_the_targets(direction, targets):
    decisions = run([sf_row("003A", **ANN_SF)], [hs_row("101", email="bo@example.com")], direction=direction)
    assert set(decisions["target"]) == targets


def test_rows_only_fetched_as_counterparts_get_no_decisions():
    sf = [sf_row("003A", **ANN_SF), sf_row("003Z", Email="zed@example.com", LastName="Z")]
    hs = [hs_row("101", **{**ANN_HS, "firstname": "Annie"})]
    decisions = run(sf, hs, sf_changed=[])
    assert set(decisions["source_id"]) == {"101", "003A"}


def test_payload_json_escapes_quotes_backslashes_and_control_characters():
    name = 'O"Brien\\ \n\t'
    decisions = run([], [hs_row("101", email="bo@example.com", lastname="Bo", firstname=name)])
    assert json.loads(one(decisions, "salesforce")["payload"])["FirstName"] == name.strip()


def test_counterpart_requests_link_first_else_email():
    sf, hs = frames(
        [
            sf_row("003A", link="101", **ANN_SF),  # linked: fetch 101 by id
            sf_row("003B", Email="Bo@Example.com"),  # unlinked: fetch by email and by link property
            sf_row("003C", link="102", Email="cy@example.com"),  # counterpart already in the window
            sf_row("003D", deleted=True, Email="del@example.com"),  # deleted: no email look-up
        ],
        [
            hs_row("102", link="003C", email="cy@example.com"),
            hs_row("103", link="003Q", email="q@example.com"),
            hs_row("104", email="new@example.com"),
        ],
    )
    request = counterpart_requests(sf, hs, MAPPING)
    assert request.hubspot_ids == ["101"]
    assert request.hubspot_emails == ["bo@example.com"]
    assert request.hubspot_by_salesforce_id == ["003B", "003D"]
    assert request.salesforce_ids == ["003Q"]
    assert request.salesforce_emails == ["new@example.com"]
    assert request.salesforce_by_hubspot_id == ["104"]


def test_to_canonical_shapes():
    sf, hs = frames([sf_row("003A", link="101", **ANN_SF)], [hs_row("101", link="003A", **ANN_HS)])
    s, h = to_canonical(sf, Side.SALESFORCE, MAPPING), to_canonical(hs, Side.HUBSPOT, MAPPING)
    assert list(s.columns) == list(h.columns)
    assert s.loc[0, ["sf_id", "hs_id", "email_key", "phone"]].tolist() == [
        "003A",
        "101",
        "ann@example.com",
        "+14155550100",
    ]
    assert h.loc[0, ["sf_id", "hs_id", "email"]].tolist() == ["003A", "101", "ann@example.com"]
    assert pd.isna(h.loc[0, "title"])  # HubSpot's "" is missing, like Salesforce's null


def test_empty_input_gives_an_empty_typed_frame():
    decisions = run([], [])
    assert decisions.empty and list(decisions.columns) == DECISION_COLUMNS


def test_backfill_of_an_older_window_keeps_the_newer_edit_and_carries_its_own():
    """Salesforce edited Title (and Phone) in window 0; HubSpot edited jobtitle later, in window 1.
    Window 0 run afterwards: HubSpot's newer title wins, Salesforce's uncontested phone still flows."""
    base = [snapshot("003A", "101", **{**ANN_BASE, "title": "Engineer"})]
    sf = sf_row("003A", link="101", minute=0, **{**ANN_SF, "Title": "Manager", "Phone": "(415) 555-0199"})
    hs = hs_row("101", link="003A", minute=20, **{**ANN_HS, "jobtitle": "Director"})
    decisions = run([sf], [hs], hs_changed=[], base=base)
    assert json.loads(one(decisions, "salesforce")["payload"]) == {"Title": "Director"}
    assert json.loads(one(decisions, "hubspot")["payload"]) == {"phone": "+14155550199"}
    assert one(decisions, "salesforce")["reason"] == "conflict title: hubspot newer"


def test_edits_to_different_fields_on_both_sides_are_both_kept():
    base = [snapshot("003A", "101", **ANN_BASE)]
    sf = sf_row("003A", link="101", minute=1, **{**ANN_SF, "FirstName": "Anne"})
    hs = hs_row("101", link="003A", minute=9, **{**ANN_HS, "phone": "+14155550199"})
    decisions = run([sf], [hs], base=base)
    assert json.loads(one(decisions, "hubspot")["payload"]) == {"firstname": "Anne"}
    assert json.loads(one(decisions, "salesforce")["payload"]) == {"Phone": "+14155550199"}
    assert not decisions["conflict"].any()


def test_our_own_writes_come_back_equal_to_the_state_and_plan_nothing():
    base = [snapshot("003A", "101", **{**ANN_BASE, "firstname": "Anne"})]
    sf = sf_row("003A", link="101", minute=30, **{**ANN_SF, "FirstName": "Anne"})
    hs = hs_row("101", link="003A", minute=31, **{**ANN_HS, "firstname": "Anne"})
    result = reconciled([sf], [hs], base=base)
    assert set(result.decisions["action"]) == {"skip"}
    assert result.baseline.empty


def test_a_one_way_field_is_recorded_once_both_crms_hold_it():
    values = {key: value for key, value in ANN_BASE.items() if key != "company"}
    sf = sf_row("003A", link="101", minute=30, **ANN_SF)
    hs = hs_row("101", link="003A", minute=31, **ANN_HS)
    result = reconciled([sf], [hs], base=[snapshot("003A", "101", **values)])
    assert set(result.decisions["action"]) == {"skip"}
    assert result.baseline["field_values"].map(json.loads).tolist() == [{"company": None}]


def test_a_stale_base_heals_when_both_sides_agree():
    base = [snapshot("003A", "101", **{**ANN_BASE, "title": "Old"})]
    sf = sf_row("003A", link="101", **{**ANN_SF, "Title": "New"})
    hs = hs_row("101", link="003A", **{**ANN_HS, "jobtitle": "New"})
    result = reconciled([sf], [hs], base=base)
    assert set(result.decisions["action"]) == {"skip"}
    (row,) = result.baseline.to_dict(orient="records")
    assert json.loads(row["field_values"]) == {"title": "New"}


def test_a_snapshot_of_another_pair_is_not_a_base():
    """After a relink the old pair's values say nothing about the new pair: timestamps decide."""
    base = [snapshot("003A", "999", **{**ANN_BASE, "title": "CTO"})]
    sf = sf_row("003A", link="101", minute=1, **{**ANN_SF, "Title": "CTO"})
    hs = hs_row("101", link="003A", minute=2, **{**ANN_HS, "jobtitle": "CEO"})
    assert json.loads(one(run([sf], [hs], base=base), "salesforce")["payload"]) == {"Title": "CEO"}


def test_first_sync_without_state_compares_record_times_not_the_window():
    sf = sf_row("003A", link="101", minute=1, **{**ANN_SF, "Title": "CTO"})
    hs = hs_row("101", link="003A", minute=2, **{**ANN_HS, "jobtitle": "CEO"})
    decisions = run([sf], [hs], hs_changed=[])  # only Salesforce is in the window, HubSpot is newer
    assert json.loads(one(decisions, "salesforce")["payload"]) == {"Title": "CEO"}
    assert one(decisions, "hubspot")["action"] == "skip"


def test_a_contact_found_by_a_secondary_email_pairs_with_the_contact_that_asked():
    from include.sync_logic.counterparts import close_counterparts

    sf, _ = frames([sf_row("003A", minute=1, **ANN_SF)], [])
    found = pd.DataFrame([hs_row("101", **{**ANN_HS, "email": "ann.lee@work.example"})]).assign(
        lookup_key="ann@example.com"
    )
    fetchers = {kind: (lambda keys: pd.DataFrame()) for kind in ("salesforce_ids", "salesforce_emails", "hubspot_ids")}
    fetchers |= {
        "salesforce_by_hubspot_id": lambda keys: pd.DataFrame(),
        "hubspot_by_salesforce_id": lambda keys: pd.DataFrame(),
    }
    fetchers["hubspot_emails"] = lambda keys: found if keys == ["ann@example.com"] else pd.DataFrame()
    sf_all, hs_all = close_counterparts(sf, pd.DataFrame(columns=list(hs_row("x"))), MAPPING, fetchers)
    decisions = reconcile(sf_all, hs_all, sf_changed_ids=["003A"], hs_changed_ids=[], mapping=MAPPING).decisions
    assert not (decisions["action"] == "create").any()
    assert set(decisions["matched_by"]) == {"email"}
