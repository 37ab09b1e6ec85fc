"""The three-way merge, checked against a plain-Python oracle on generated pairs (hypothesis).

For random last-agreed values, random edits on both sides and random modification times: after the plan
is applied and the state settled, each field holds what its rule says; edits to different fields on both
sides are both kept; and planning again writes nothing and records nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sync_logic.mapping import ConflictRule, load_mapping
from include.sync_logic.reconcile import reconcile
from tests.unit.include.sync_logic.test_reconcile_properties import apply, settle, snapshots

pytestmark = pytest.mark.slow

MAPPING = load_mapping(Path(__file__).resolve().parents[4] / "include" / "mappings" / "contacts.yaml")
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")
# Canonical (already normalised) values every side accepts, so the oracle needs no normalisation.
VALUES = {
    "firstname": ["Ann", "Bo", None],
    "lastname": ["Lee", "Park", "Kim"],
    "phone": ["+14155550100", "+14155550199", None],
    "mobilephone": ["+14155550111", None],
    "title": ["CEO", "CTO", None],
}
SF_NAMES = {
    "firstname": "FirstName",
    "lastname": "LastName",
    "phone": "Phone",
    "mobilephone": "MobilePhone",
    "title": "Title",
}
HS_NAMES = {
    "firstname": "firstname",
    "lastname": "lastname",
    "phone": "phone",
    "mobilephone": "mobilephone",
    "title": "jobtitle",
}
RULES = [ConflictRule.LATEST, ConflictRule.SALESFORCE, ConflictRule.PREFER_HUBSPOT_UNLESS_BLANK]


@st.composite
def pairs(draw):
    """Linked pairs: a base, each side's edits of it, each record's modification minute; one rule per field."""
    rules = {name: draw(st.sampled_from(RULES)) for name in VALUES}
    out = []
    for i in range(draw(st.integers(1, 4))):
        base = {name: draw(st.sampled_from(options)) for name, options in VALUES.items()}
        sf = {name: draw(st.sampled_from([base[name], *options])) for name, options in VALUES.items()}
        hs = {name: draw(st.sampled_from([base[name], *options])) for name, options in VALUES.items()}
        out.append(
            {
                "i": i,
                "base": base,
                "sf": sf,
                "hs": hs,
                "sf_min": draw(st.integers(0, 3)),
                "hs_min": draw(st.integers(0, 3)),
            }
        )
    return rules, out


def expected(rule: ConflictRule, base, sf, hs, sf_min: int, hs_min: int):
    """The oracle: what both sides hold after the sync, for one field."""
    if sf == hs:
        return sf
    if rule == ConflictRule.SALESFORCE:
        return sf
    if rule == ConflictRule.PREFER_HUBSPOT_UNLESS_BLANK:
        return hs if hs is not None else sf
    if sf == base:
        return hs
    if hs == base:
        return sf
    return hs if hs_min > sf_min else sf


def frames(items):
    sf = pd.DataFrame(
        [
            {
                "Id": f"003{p['i']}",
                "Email": f"p{p['i']}@example.com",
                **{SF_NAMES[k]: v for k, v in p["sf"].items()},
                "HubSpot_Contact_Id__c": f"10{p['i']}",
                "LastModifiedDate": T0 + pd.Timedelta(minutes=p["sf_min"]),
                "SystemModstamp": T0 + pd.Timedelta(minutes=p["sf_min"]),
                "IsDeleted": False,
            }
            for p in items
        ]
    )
    hs = pd.DataFrame(
        [
            {
                "id": f"10{p['i']}",
                "email": f"p{p['i']}@example.com",
                **{HS_NAMES[k]: "" if v is None else v for k, v in p["hs"].items()},
                "salesforce_contact_id": f"003{p['i']}",
                "lastmodifieddate": T0 + pd.Timedelta(minutes=p["hs_min"]),
                "archived": False,
            }
            for p in items
        ]
    )
    return sf, hs


def mapping_with(rules):
    fields = tuple(f.model_copy(update={"conflict": rules.get(f.name)}) for f in MAPPING.fields)
    return MAPPING.model_copy(update={"fields": fields})


def value_of(frame: pd.DataFrame, key: str, own: str, column: str):
    value = frame.loc[frame[own] == key, column].iloc[0]
    return None if value is None or value == "" or value != value else value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=pairs())
def test_each_field_ends_as_its_rule_says_and_a_second_pass_writes_nothing(world):
    rules, items = world
    mapping = mapping_with(rules)
    sf, hs = frames(items)
    state = {
        (f"003{p['i']}", f"10{p['i']}"): {"email": f"p{p['i']}@example.com", "company": None, **p["base"]}
        for p in items
    }
    result = reconcile(
        sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=mapping, snapshots=snapshots(state)
    )
    state = settle(state, result)
    sf, hs = apply(sf, hs, result.decisions)
    for p in items:
        for name in VALUES:
            want = expected(rules[name], p["base"][name], p["sf"][name], p["hs"][name], p["sf_min"], p["hs_min"])
            assert value_of(sf, f"003{p['i']}", "Id", SF_NAMES[name]) == want, (name, p)
            assert value_of(hs, f"10{p['i']}", "id", HS_NAMES[name]) == want, (name, p)
            assert state[(f"003{p['i']}", f"10{p['i']}")][name] == want, (name, p)
    again = reconcile(
        sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=mapping, snapshots=snapshots(state)
    )
    assert set(again.decisions["action"]) <= {"skip"}
    assert again.baseline.empty


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=pairs(), data=st.data())
def test_edits_to_different_fields_on_both_sides_are_both_kept(world, data):
    _, items = world
    sf_field, hs_field = data.draw(st.permutations(list(VALUES)))[:2]
    for p in items:
        p["sf"], p["hs"] = dict(p["base"]), dict(p["base"])
        p["sf"][sf_field] = data.draw(st.sampled_from([v for v in VALUES[sf_field] if v != p["base"][sf_field]]))
        p["hs"][hs_field] = data.draw(st.sampled_from([v for v in VALUES[hs_field] if v != p["base"][hs_field]]))
    sf, hs = frames(items)
    state = {(f"003{p['i']}", f"10{p['i']}"): {"email": f"p{p['i']}@example.com", **p["base"]} for p in items}
    result = reconcile(
        sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=MAPPING, snapshots=snapshots(state)
    )
    sf, hs = apply(sf, hs, result.decisions)
    for p in items:
        for side_frame, key, own, names in ((sf, f"003{p['i']}", "Id", SF_NAMES), (hs, f"10{p['i']}", "id", HS_NAMES)):
            assert value_of(side_frame, key, own, names[sf_field]) == p["sf"][sf_field]
            assert value_of(side_frame, key, own, names[hs_field]) == p["hs"][hs_field]
