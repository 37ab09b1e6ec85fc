"""Webhook settings, payloads and signatures of the HubSpot sandbox (pure parts, no network)."""

from __future__ import annotations

import itertools
import random

import pytest

from sandbox.hubspot.errors import PORTAL_ID
from sandbox.hubspot.webhook_sender import MAX_RETRIES, retry_delay, signature_v3, signed_uri
from sandbox.hubspot.webhooks import (
    CREATION,
    DELETION,
    MERGE,
    PROPERTY_CHANGE,
    Change,
    WebhookConfig,
    events_for,
)

SETTINGS = {"target_url": "https://example.com/hooks", "client_secret": "secret"}


def config(**over):
    return WebhookConfig.from_json({**SETTINGS, **over}, "salesforce_contact_id")


def test_v3_signature_matches_the_known_answer_of_hubspots_python_sdk_tests():
    # hubspot-api-python tests/spec/utils/test_signature.py: the v3 vector HubSpot publishes with its SDK
    body = b"{'example_field':'example_value'}"
    got = signature_v3(
        "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "POST", "https://www.example.com/webhook_uri", body, "1693657560000"
    )
    assert got == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_signed_uri_decodes_only_the_documented_escapes():
    url = "https://example.com/hooks?src=hs%3Aapp%2Fv3&x=%28a%29&q=a%20b%26c"
    assert signed_uri(url) == "https://example.com/hooks?src=hs:app/v3&x=(a)&q=a%20b%26c"


def test_retries_spread_ten_tries_over_about_a_day_and_scale_down():
    rng = random.Random(1)
    delays = [retry_delay(attempt, 1.0, rng) for attempt in range(1, MAX_RETRIES + 1)]
    assert delays == sorted(delays)
    assert 0.8 * 86_400 < sum(delays) < 1.2 * 86_400
    assert sum(retry_delay(a, 0.001, random.Random(1)) for a in range(1, MAX_RETRIES + 1)) < 110


def test_default_subscriptions_cover_every_contact_event_and_the_synced_properties():
    subscriptions = config().subscriptions
    kinds = {s.event_type for s in subscriptions}
    properties = {s.property_name for s in subscriptions if s.event_type == PROPERTY_CHANGE}
    assert kinds == {CREATION, DELETION, "contact.privacyDeletion", "contact.restore", MERGE, PROPERTY_CHANGE}
    assert {"email", "firstname", "lastname", "jobtitle", "salesforce_contact_id"} <= properties
    assert len({s.id for s in subscriptions}) == len(subscriptions)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"subscriptions": [{"eventType": PROPERTY_CHANGE}]}, "needs a propertyName"),
        ({"subscriptions": [{"eventType": PROPERTY_CHANGE, "propertyName": "hs_lastmodifieddate"}]}, "not available"),
        ({"subscriptions": [{"eventType": CREATION, "propertyName": "email"}]}, "only for contact.propertyChange"),
        ({"subscriptions": [{"eventType": "deal.creation"}]}, "eventType among"),
        ({"subscriptions": [{"eventType": CREATION}] * 1001}, "maximum number allowed per application"),
        ({"max_batch": 101}, "max_batch"),
        ({"client_secret": ""}, "client_secret"),
        ({"target_url": "ftp://x"}, "target_url"),
        ({"faults": {"drop": 1.5}}, "shares"),
        ({"faults": {"lose": 0.1}}, "faults takes"),
        ({"retry_time_scale": 0}, "positive"),
        ({"colour": "red"}, "unknown webhook settings"),
    ],
)
def test_settings_hubspot_or_the_sandbox_would_refuse_are_refused(over, message):
    with pytest.raises(ValueError, match=message):
        config(**over)


def test_public_settings_never_show_the_client_secret():
    assert "secret" not in str(config().public().values())


def test_an_update_fires_one_event_per_changed_subscribed_property_only():
    cfg = config(subscriptions=[{"eventType": PROPERTY_CHANGE, "propertyName": "jobtitle"}, {"eventType": CREATION}])
    change = Change(PROPERTY_CHANGE, 1001, 1_700_000_000_000, properties={"jobtitle": "CTO", "phone": "1"})
    [event] = events_for(cfg, change, itertools.count(7).__next__)
    assert event == {
        "eventId": 7,
        "subscriptionId": 1001,
        "portalId": PORTAL_ID,
        "appId": 1,
        "occurredAt": 1_700_000_000_000,
        "subscriptionType": PROPERTY_CHANGE,
        "objectId": 1001,
        "changeSource": "API",
        "propertyName": "jobtitle",
        "propertyValue": "CTO",
    }


def test_a_creation_fires_its_event_and_the_subscribed_properties_it_sets():
    cfg = config(subscriptions=[{"eventType": CREATION}, {"eventType": PROPERTY_CHANGE, "propertyName": "email"}])
    change = Change(CREATION, 1002, 1, properties={"email": "a@b.com", "firstname": "A"})
    events = events_for(cfg, change, itertools.count(1).__next__)
    assert [(e["subscriptionType"], e.get("propertyName")) for e in events] == [
        (CREATION, None),
        (PROPERTY_CHANGE, "email"),
    ]


def test_a_merge_event_names_the_winner_the_merged_ids_and_the_new_record():
    ids = {"primaryObjectId": 1001, "mergedObjectIds": [1002], "newObjectId": 1003, "numberOfPropertiesMoved": 2}
    [event] = events_for(config(), Change(MERGE, 1001, 5, merge=ids), itertools.count(1).__next__)
    assert event["objectId"] == 1001
    assert {k: event[k] for k in ids} == ids


def test_an_inactive_subscription_fires_nothing():
    cfg = config(subscriptions=[{"eventType": DELETION, "active": False}])
    assert events_for(cfg, Change(DELETION, 1, 1), itertools.count(1).__next__) == []
