"""Link-field problems from a Contact describe, for the cases a sandbox org does not show."""

from __future__ import annotations

from crm_sync.hooks.sf_preflight import link_field_problems

GOOD = {"name": "HubSpot_Contact_Id__c", "type": "string", "externalId": True, "unique": True}


def test_a_good_field_has_no_problems_and_names_match_case_insensitively():
    assert link_field_problems([{**GOOD, "createable": True, "updateable": True}], "hubspot_contact_id__c") == []


def test_wrong_type_and_read_only_field_are_named():
    problems = link_field_problems([{**GOOD, "type": "double", "createable": False, "updateable": False}], GOOD["name"])
    assert len(problems) == 2
    assert "is a double field, not Text" in problems[0]
    assert "Field-Level Security" in problems[1] and "Edit access" in problems[1]
