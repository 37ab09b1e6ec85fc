"""The sandbox portal's 409 for a taken email in both of HubSpot's shapes, and INVALID_OPTION."""

from __future__ import annotations

import json

import pytest

from sandbox.hubspot.errors import HubSpotError
from sandbox.hubspot.store import ContactStore

NOW_MS = 1_775_000_000_000


@pytest.mark.parametrize("shape", ["CONFLICT", "OBJECT_ALREADY_EXISTS"])
def test_a_taken_email_answers_409_in_the_chosen_shape(shape):
    store = ContactStore()
    store.conflict_shape = shape
    holder = store.create(store.validate({"email": "a@example.com"}, None), NOW_MS)
    with pytest.raises(HubSpotError) as taken:
        store.validate({"email": "A@example.com"}, None)
    error = taken.value
    assert (error.status, error.category) == (409, shape)
    assert error.message == f"Contact already exists. Existing ID: {holder.id}"
    if shape == "OBJECT_ALREADY_EXISTS":
        assert error.body()["error"] == "CONTACT_EXISTS" and error.body()["identityProfile"]["vid"] == holder.id


def test_an_enumeration_value_outside_its_options_is_invalid_option():
    store = ContactStore()
    options = [{"label": "Gold", "value": "gold"}, {"label": "Silver", "value": "silver"}]
    definition = {"name": "tier", "label": "Tier", "type": "enumeration", "fieldType": "select"}
    store.add_property({**definition, "groupName": "contactinformation", "options": options}, NOW_MS)
    assert store.validate({"tier": "gold"}, None) == {"tier": "gold"}
    with pytest.raises(HubSpotError) as refused:
        store.validate({"tier": "platinum", "firstname": "Ann"}, None)
    assert refused.value.category == "VALIDATION_ERROR" and not refused.value.whole_request
    (problem,) = json.loads(refused.value.message.removeprefix("Property values were not valid: "))
    assert (problem["error"], problem["name"]) == ("INVALID_OPTION", "tier")
    assert problem["message"] == "platinum was not one of the allowed options: [gold, silver]"
