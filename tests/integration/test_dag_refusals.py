"""Refusals no retry can pass in real DAG runs (issue 18): an org's duplicate rule and validation rule. The refused
contact is parked at once with the rule's code, a refused field is rejected alone while the contact's other fields
still flow, and later runs neither retry nor ping-pong. A create HubSpot refuses for an unlinked contact's email
(409, either shape) links that contact instead."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.integration.conftest import crm_env
from tests.integration.crm_edits import (
    at,
    create_hubspot,
    edit_hubspot,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_sync import decisions, load_rejects
from tests.integration.test_dag_sync_state import ANN_HS, ANN_SF, MINUTE, T, store_of, sync, written

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHARED_PHONE = "+14155550177"
PHONE_RULE = {"name": "Contact_Phone_Alert", "match_fields": ["Phone"], "action": "allow"}
INTERN_RULE = {"name": "No_Interns", "field": "Title", "refused_value": "Intern", "message": "Title must not be Intern"}


def test_rule_refusals_are_parked_at_once_and_the_other_fields_still_flow(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    sandbox.admin("salesforce", "POST", "rules", {"duplicate_rules": [PHONE_RULE], "validation_rules": [INTERN_RULE]})
    ann_sf, ann_hs = seed_pair(sandbox, T - 14 * MINUTE, ANN_SF, ANN_HS)
    stamp = (T - 14 * MINUTE).isoformat()
    (bob_sf,) = sandbox.admin(
        "salesforce",
        "POST",
        "seed",
        {
            "contacts": [
                {"Email": "bob@example.com", "LastName": "Bob", "Phone": SHARED_PHONE, "LastModifiedDate": stamp}
            ]
        },
    ).json()["ids"]
    # A HubSpot contact Salesforce's duplicate rule (same phone) takes for Bob: reconcile cannot see that.
    zed = {"email": "zed@example.com", "lastname": "Zed", "phone": SHARED_PHONE}
    sandbox.admin(
        "hubspot", "POST", "seed", {"contacts": [{"properties": zed, "createdAt": stamp, "updatedAt": stamp}]}
    )
    (zed_hs,) = [c["id"] for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"] if c["id"] != ann_hs]

    first = sync(airflow_project, sandbox, env, T)
    assert first.returncode == 0, first.log[-5000:]
    refused = load_rejects(first).set_index("source_id")
    assert refused.loc[zed_hs, "code"] == "DUPLICATES_DETECTED"
    assert "Contact_Phone_Alert" in refused.loc[zed_hs, "reason"] and bob_sf in refused.loc[zed_hs, "reason"]
    queue = store_of(state_conn).entries().set_index("source_id")
    assert queue.loc[zed_hs, ["status", "code", "attempts"]].tolist() == ["parked", "DUPLICATES_DETECTED", 1]
    assert first.report["sync_state"]["retries_parked"] == 1

    at(sandbox, T + 16 * MINUTE)  # HubSpot: Ann becomes an intern with a new phone
    edit_hubspot(sandbox, ann_hs, {"jobtitle": "Intern", "phone": "+14155550199"})
    second = sync(airflow_project, sandbox, env, T + 30 * MINUTE)
    assert second.returncode == 0, second.log[-5000:]
    ann = salesforce_contact(sandbox, ann_sf)
    assert (ann["Phone"], ann["Title"]) == ("+14155550199", "Engineer"), "the other field did not flow"
    title = load_rejects(second).set_index("source_id").loc[ann_hs]
    assert (title["action"], title["code"]) == ("reject", "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert "Title must not be Intern" in title["reason"]
    queue = store_of(state_conn).entries().set_index("source_id")
    assert queue.loc[ann_hs, ["target", "status", "code"]].tolist() == [
        "salesforce",
        "parked",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    ]
    assert queue.loc[zed_hs, "attempts"] == 1  # parked: not tried again

    for end in (T + 45 * MINUTE, T + 60 * MINUTE):
        quiet = sync(airflow_project, sandbox, env, end)
        assert quiet.returncode == 0, quiet.log[-5000:]
        assert written(quiet) == 0, (end, quiet.report["decisions"])
    assert hubspot_contact(sandbox, ann_hs)["jobtitle"] == "Intern"  # nothing ping-pongs back
    assert salesforce_contact(sandbox, ann_sf)["Title"] == "Engineer"


@pytest.mark.parametrize("shape", ["CONFLICT", "OBJECT_ALREADY_EXISTS"])
def test_a_new_salesforce_contact_whose_email_an_unlinked_hubspot_contact_holds_is_linked_not_duplicated(
    airflow_project, sandbox_factory, clean_redis, state_conn, shape
) -> None:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    # HubSpot's search index trails its writes: neither the window's search nor the count sees the HubSpot Ann,
    # so with lookups dearer than one call (over 100 new contacts) the window stands for the whole side,
    # reconcile plans a create, and HubSpot answers 409 in the shape this test names.
    sandbox.admin("hubspot", "POST", "settings", {"conflict_shape": shape, "search_index_delay_seconds": 3600})
    stamp = (T - 14 * MINUTE).isoformat()
    new = [ANN_SF] + [{"Email": f"new{n}@example.com", "LastName": f"New{n}"} for n in range(100)]
    seeded = sandbox.admin("salesforce", "POST", "seed", {"contacts": [{**c, "LastModifiedDate": stamp} for c in new]})
    ann_sf = seeded.json()["ids"][0]
    at(sandbox, T - 5 * MINUTE)  # a HubSpot form creates Ann, unlinked, minutes before the run
    ann_hs = create_hubspot(sandbox, {**ANN_HS, "email": "Ann@Example.com"})

    run = sync(airflow_project, sandbox, env, T)
    assert run.returncode == 0, run.log[-5000:]
    planned = decisions(run).set_index(["target", "source_id"])
    assert planned.loc[("hubspot", ann_sf), "action"] == "create", "reconcile saw the HubSpot Ann: no 409 to answer"
    answers = pd.concat(pd.read_parquet(path) for path in run.staging.glob("*/*/try-*/results/*.parquet"))
    (answer,) = answers[(answers["target"] == "hubspot") & (answers["ref"] == ann_sf)].to_dict(orient="records")
    assert (answer["ok"], answer["target_id"], answer["existing_id"]) == (True, ann_hs, ann_hs), answer
    hubspot = sandbox.admin("hubspot", "GET", "records").json()["contacts"]
    anns = [c for c in hubspot if c["properties"]["email"].lower() == "ann@example.com"]
    assert [(c["id"], c["properties"]["salesforce_contact_id"]) for c in anns] == [(ann_hs, ann_sf)]
    assert len(hubspot) == 101, "the others were created, Ann was not"
    assert hubspot_contact(sandbox, ann_hs)["firstname"] == "Ann"
    assert store_of(state_conn).entries(source_ids=[ann_sf]).empty, "Ann is neither parked nor pending"
    assert run.report["rejects"]["count"] == 0, run.report["rejects"]
    assert salesforce_contact(sandbox, ann_sf)["HubSpot_Contact_Id__c"] == ann_hs, "linked both ways"
