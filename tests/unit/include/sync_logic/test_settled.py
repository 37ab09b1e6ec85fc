"""Contacts equal to the sync state are left out before counterparts are looked up."""

from __future__ import annotations

import json

import pandas as pd

from include.sync_logic.merge import SNAPSHOT_COLUMNS
from include.sync_logic.settled import drop_settled, settled_mask
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import ANN_BASE, ANN_HS, ANN_SF, MAPPING, frames, hs_row, sf_row, snapshot


def snapshots(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=SNAPSHOT_COLUMNS)


STATE = snapshots(snapshot("003A", "101", **ANN_BASE))


def test_a_contact_equal_to_its_pair_snapshot_is_settled():
    sf, hs = frames(
        [
            sf_row("003A", link="101", **ANN_SF),  # equal (phone formatted differently, same once normalised)
            sf_row("003B", link="102", **ANN_SF),  # no snapshot for this pair
            sf_row("003C", **ANN_SF),  # not linked
        ],
        [hs_row("101", link="003A", **{**ANN_HS, "jobtitle": "CTO"}), hs_row("101", link="003A", **ANN_HS)],
    )
    assert settled_mask(sf, Side.SALESFORCE, MAPPING, STATE).tolist() == [True, False, False]
    assert settled_mask(hs, Side.HUBSPOT, MAPPING, STATE).tolist() == [False, True]


def test_a_field_the_state_does_not_hold_yet_is_not_settled():
    values = {key: value for key, value in ANN_BASE.items() if key != "company"}
    sf, _ = frames([sf_row("003A", link="101", **ANN_SF)], [])
    state = snapshots(snapshot("003A", "101", **values))
    assert settled_mask(sf, Side.SALESFORCE, MAPPING, state).tolist() == [False]
    deleted, _ = frames([sf_row("003A", link="101", deleted=True, **ANN_SF)], [])
    assert settled_mask(deleted, Side.SALESFORCE, MAPPING, STATE).tolist() == [False]


def test_drop_keeps_retries_and_the_counterparts_of_changed_contacts():
    state = snapshots(
        snapshot("003A", "101", **ANN_BASE),
        snapshot("003B", "102", **{**ANN_BASE, "email": "bo@example.com"}),
        snapshot("003C", "103", **{**ANN_BASE, "email": "cy@example.com"}),
    )
    sf, hs = frames(
        [
            sf_row("003A", link="101", **ANN_SF),  # settled, counterpart changed in the window: kept
            sf_row("003B", link="102", **{**ANN_SF, "Email": "bo@example.com"}),  # settled: dropped
            sf_row("003C", link="103", **{**ANN_SF, "Email": "cy@example.com"}),  # settled, but due: kept
        ],
        [hs_row("101", link="003A", **{**ANN_HS, "jobtitle": "CTO"})],
    )
    kept, dropped = drop_settled(
        {Side.SALESFORCE: sf, Side.HUBSPOT: hs}, MAPPING, state, {Side.SALESFORCE: ["003C"], Side.HUBSPOT: []}
    )
    assert sorted(kept[Side.SALESFORCE]["Id"]) == ["003A", "003C"]
    assert kept[Side.HUBSPOT]["id"].tolist() == ["101"]
    assert dropped == {Side.SALESFORCE: 1, Side.HUBSPOT: 0}


def test_a_one_way_field_the_from_side_leaves_blank_settles_both_sides():
    """Salesforce has no Account, HubSpot keeps its company: nothing flows, and both contacts are settled."""
    from tests.unit.include.sync_logic.test_reconcile import reconciled

    sf_rows = [sf_row("003A", link="101", **ANN_SF)]
    hs_rows = [hs_row("101", link="003A", **{**ANN_HS, "company": "Acme"})]
    values = {key: value for key, value in ANN_BASE.items() if key != "company"}
    result = reconciled(sf_rows, hs_rows, base=[snapshot("003A", "101", **values)])
    assert set(result.decisions["action"]) == {"skip"}
    (recorded,) = result.baseline.to_dict(orient="records")
    assert json.loads(recorded["field_values"]) == {"company": None}  # Salesforce's blank, merged into the state
    state = snapshots(snapshot("003A", "101", **values, company=None))
    sf, hs = frames(sf_rows, hs_rows)
    assert settled_mask(sf, Side.SALESFORCE, MAPPING, state).tolist() == [True]
    assert settled_mask(hs, Side.HUBSPOT, MAPPING, state).tolist() == [True]


def test_a_one_way_field_edited_on_the_receiving_side_is_not_settled():
    state = snapshots(snapshot("003A", "101", **{**ANN_BASE, "company": "Acme"}))
    _, edited = frames([], [hs_row("101", link="003A", **{**ANN_HS, "company": "Other"})])
    _, kept = frames([], [hs_row("101", link="003A", **{**ANN_HS, "company": "Acme"})])
    assert settled_mask(edited, Side.HUBSPOT, MAPPING, state).tolist() == [False]
    assert settled_mask(kept, Side.HUBSPOT, MAPPING, state).tolist() == [True]
