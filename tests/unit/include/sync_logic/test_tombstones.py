"""Tombstones: which gone partners are looked up, what the look-up means, and what reconcile does with them."""

from __future__ import annotations

import pandas as pd
import pytest

from include.sync_logic.decisions import Reason
from include.sync_logic.reconcile import reconcile
from include.sync_logic.tombstones import (
    TOMBSTONE_FIELDS,
    classify,
    deleted_in_frames,
    describe,
    missing_partners,
    restored,
)
from tests.unit.include.sync_logic.rows import ANN_HS, ANN_SF, MAPPING, at, frames, hs_row, sf_row, snapshot

SF, HS = "salesforce", "hubspot"


def tombstones(*rows) -> pd.DataFrame:
    """(side, contact_id, kind, counterpart_id) tuples, deleted at minute 5."""
    return pd.DataFrame(
        [
            {"side": s, "contact_id": c, "kind": k, "happened_at": at(5), "survivor_id": None, "counterpart_id": p}
            for s, c, k, p in rows
        ],
        columns=TOMBSTONE_FIELDS,
    )


def decide(sf_rows, hs_rows, gone, option="keep", *, sf_changed=None, hs_changed=()):
    sf, hs = frames(sf_rows, hs_rows)
    return reconcile(
        sf,
        hs,
        sf_changed_ids=sf["Id"] if sf_changed is None else sf_changed,
        hs_changed_ids=hs_changed,
        mapping=MAPPING.model_copy(update={"on_counterpart_deleted": option}),
        tombstones=gone,
    ).decisions


def test_missing_partners_are_the_links_and_state_pairs_the_frames_lack():
    sf, hs = frames(
        [
            sf_row("003A", link="101", **ANN_SF),  # its HubSpot contact was not read: ask
            sf_row("003B", **ANN_SF),  # no link, but the state pairs it with 102: ask
            sf_row("003D", link="109", deleted=True),  # deleted itself: its partner is not asked
            sf_row("003E", link="105", **ANN_SF),  # 105 is in the frame: not asked
        ],
        [hs_row("103", link="003C", **ANN_HS), hs_row("105", link="003E", **ANN_HS)],
    )
    state = pd.DataFrame([snapshot("003B", "102"), snapshot("003Z", "199")])
    asked = missing_partners({SF: sf, HS: hs}, state, MAPPING)
    assert asked[HS].values.tolist() == [["101", "003A"], ["102", "003B"]]
    assert asked[SF].values.tolist() == [["003C", "103"]]


def test_hubspot_look_up_archived_is_archived_nothing_is_a_privacy_deletion_live_is_not_gone():
    asked = pd.DataFrame({"contact_id": ["101", "102", "104"], "counterpart_id": ["003A", "003B", "003D"]})
    _, found = frames([], [hs_row("101", link="003A", archived=True, minute=7), hs_row("104", link="003D")])
    gone = classify(HS, asked, found, MAPPING)
    assert gone[["side", "contact_id", "kind", "counterpart_id"]].values.tolist() == [
        ["hubspot", "101", "archived", "003A"],
        ["hubspot", "102", "privacy_deleted", "003B"],
    ]
    assert gone.loc[0, "happened_at"] == at(7)
    assert pd.isna(gone.loc[1, "happened_at"])


def test_salesforce_look_up_merged_deleted_and_purged():
    asked = pd.DataFrame({"contact_id": ["003A", "003B", "003C"], "counterpart_id": ["101", "102", "103"]})
    merged = sf_row("003A", link="101", deleted=True, minute=3, MasterRecordId="003M")
    found, _ = frames([merged, sf_row("003B", link="102", deleted=True)], [])
    found["MasterRecordId"] = ["003M", None]
    gone = classify(SF, asked, found, MAPPING)
    assert gone[["contact_id", "kind", "survivor_id", "counterpart_id"]].values.tolist() == [
        ["003A", "merged", "003M", "101"],
        ["003B", "deleted", None, "102"],
        ["003C", "purged", None, "103"],
    ]


def test_deleted_rows_read_by_an_extract_are_tombstones_of_their_pair():
    sf, hs = frames([sf_row("003A", link="101", deleted=True, minute=2)], [hs_row("102", archived=True)])
    found = deleted_in_frames({SF: sf, HS: hs}, MAPPING)  # 102 links to no one: nothing to protect
    assert found[["side", "contact_id", "kind", "counterpart_id"]].values.tolist() == [
        ["salesforce", "003A", "deleted", "101"]
    ]


@pytest.mark.parametrize("option", ["keep", "recreate", "delete"])
def test_a_privacy_deleted_counterpart_is_never_re_created(option):
    gone = tombstones((HS, "101", "privacy_deleted", "003A"))
    decisions = decide([sf_row("003A", link="101", **ANN_SF)], [], gone, option, hs_changed=["101"])
    assert "create" not in set(decisions["action"])
    to_hubspot = decisions[decisions["target"] == HS].iloc[0]
    assert to_hubspot["action"] == "skip"
    assert to_hubspot["reason"].startswith("hubspot contact 101 deleted for good")
    assert "not re-created" in to_hubspot["reason"]
    to_salesforce = decisions[decisions["target"] == SF].iloc[0]
    assert to_salesforce["action"] == ("delete" if option == "delete" else "skip")


def test_keep_skips_a_deleted_counterpart_and_says_when():
    gone = tombstones((HS, "101", "archived", "003A"))
    decisions = decide([sf_row("003A", link="101", **ANN_SF)], [], gone)
    assert decisions[["target", "action", "reason"]].values.tolist() == [
        [
            "hubspot",
            "skip",
            "hubspot contact 101 archived at 2026-01-05 10:05 UTC; not re-created (on_counterpart_deleted: keep)",
        ],
        [
            "salesforce",
            "skip",
            "hubspot contact 101 archived at 2026-01-05 10:05 UTC; counterpart kept (on_counterpart_deleted: keep)",
        ],
    ]


def test_recreate_writes_a_new_contact_the_gate_can_count():
    gone = tombstones((SF, "003A", "deleted", "101"))
    decisions = decide([], [hs_row("101", link="003A", **ANN_HS)], gone, "recreate", hs_changed=["101"])
    create = decisions[decisions["action"] == "create"].iloc[0]
    assert (create["target"], create["source_id"], create["reason"]) == (
        "salesforce",
        "101",
        Reason.RECREATED.format(target="salesforce"),
    )


def test_delete_deletes_the_counterpart_of_a_new_tombstone_only():
    gone = tombstones((HS, "101", "deleted", "003A"))
    fresh = decide([sf_row("003A", link="101", **ANN_SF)], [], gone, "delete", hs_changed=["101"])
    delete = fresh[fresh["action"] == "delete"].iloc[0]
    assert (delete["target"], delete["target_id"]) == ("salesforce", "003A")
    assert delete["reason"].endswith("deleted here too (on_counterpart_deleted: delete)")
    known = decide([sf_row("003A", link="101", **ANN_SF)], [], gone, "delete", hs_changed=[])
    assert set(known["action"]) == {"skip"}


def test_a_tombstoned_contact_read_alive_keeps_its_row_and_is_restored():
    gone = tombstones((HS, "101", "archived", "003A"))
    sf_rows = [sf_row("003A", link="101", **ANN_SF)]
    hs_rows = [hs_row("101", link="003A", minute=9, **{**ANN_HS, "firstname": "Annie"})]
    sf, hs = frames(sf_rows, hs_rows)
    assert restored({SF: sf, HS: hs}, gone).values.tolist() == [["hubspot", "101"]]
    decisions = decide(sf_rows, hs_rows, gone, hs_changed=["101"], sf_changed=[])
    update = decisions[decisions["action"] == "update"].iloc[0]
    assert (update["target"], update["changed_fields"]) == ("salesforce", "firstname")


def test_describe_names_the_survivor_of_a_merge():
    row = tombstones((SF, "003A", "merged", "101")).iloc[0].to_dict()
    assert (
        describe({**row, "survivor_id": "003M"}) == "salesforce contact 003A merged into 003M at 2026-01-05 10:05 UTC"
    )


@pytest.mark.parametrize("option", ["recreate", "delete"])
def test_a_merged_away_contact_is_neither_re_created_nor_propagated_as_a_delete(option):
    gone = tombstones((SF, "003A", "merged", "101")).assign(survivor_id="003M", fresh=True)
    decisions = decide([], [hs_row("101", link="003A", **ANN_HS)], gone, option, hs_changed=["101"])
    assert set(decisions["action"]) == {"skip"}
    assert decisions["reason"].str.startswith("salesforce contact 003A merged into 003M").all()
