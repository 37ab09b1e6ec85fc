"""The Salesforce link field comes from the mapping: an org that named it differently works end to end in
the hook, and the preflight check says what is wrong with an org whose field is missing or not unique."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.salesforce import SalesforceContactsHook
from crm_sync.hooks.sf_errors import SalesforceApiError
from include.sync_logic.sides import Action
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
RENAMED = "Hs_Id__c"
REDIS_DB = 13


def test_a_renamed_link_field_is_used_everywhere(tmp_path: Path, redis_url: str):
    with wired_sandbox(tmp_path, redis_url, REDIS_DB, NOW, salesforce_link_field=RENAMED) as crm:
        hook = SalesforceContactsHook(bulk_poll_seconds=0.05)
        assert hook.preflight(RENAMED, writes=True) == []
        fields = ["Id", "LastName", RENAMED, "SystemModstamp"]
        one = [ContactWrite(None, {RENAMED: "501", "LastName": "A"})]
        created = hook.write_contacts(Action.CREATE, one, ["hs501"], link_field=RENAMED)
        assert created[0].ok and created[0].created
        two = [
            ContactWrite(None, {RENAMED: "501", "LastName": "B"}),
            ContactWrite(None, {RENAMED: "502", "LastName": "C"}),
        ]
        bulk = hook.write_contacts(Action.CREATE, two, ["hs501", "hs502"], link_field=RENAMED, bulk=True)
        assert [(r.ok, r.created) for r in bulk] == [(True, False), (True, True)]
        found = hook.fetch_contacts(LookupKey.COUNTERPART_ID, ["501", "502", "503"], fields, link_field=RENAMED)
        assert sorted(found[RENAMED]) == ["501", "502"] and set(found["LastName"]) == {"B", "C"}
        window = pd.concat(list(hook.iter_changed_contacts(fields, NOW.replace(hour=12), NOW.replace(hour=14))))
        assert len(window) == 2
        # This org has no HubSpot_Contact_Id__c: the default name is refused, as a real org refuses it.
        with pytest.raises(SalesforceApiError, match="INVALID_FIELD"):
            hook.write_contacts(
                Action.CREATE,
                [ContactWrite(None, {"HubSpot_Contact_Id__c": "9", "LastName": "D"})],
                ["hs9"],
                link_field="HubSpot_Contact_Id__c",
            )
        assert "create Text(18) field HubSpot_Contact_Id__c" in hook.link_field_problems("HubSpot_Contact_Id__c")[0]
        assert crm.admin("salesforce", "GET", "records").json()["contacts"][0][RENAMED] == "501"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"salesforce_link_field": ""}, ["create Text(18) field HubSpot_Contact_Id__c, External ID, Unique"]),
        ({"salesforce_link_field_attributes": "external_id"}, ["is not Unique"]),
        ({"salesforce_link_field_attributes": "unique"}, ["is not an External ID"]),
        ({"salesforce_link_field_attributes": ""}, ["is not an External ID", "is not Unique"]),
    ],
)
def test_preflight_names_each_problem_with_its_fix(tmp_path: Path, redis_url: str, options, expected):
    with wired_sandbox(tmp_path, redis_url, REDIS_DB, NOW, **options):
        problems = SalesforceContactsHook().preflight("HubSpot_Contact_Id__c", writes=False)
    assert len(problems) == len(expected)
    for problem, phrase in zip(problems, expected, strict=True):
        assert phrase in problem and "Setup > Object Manager > Contact > Fields & Relationships" in problem
