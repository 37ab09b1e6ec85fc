"""HubSpot webhook deliveries to contact events: both subscription formats, merges, privacy deletions, and
every event either queued, ignored or rejected with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sync.events.hubspot_payload import MalformedDelivery, Skipped, parse_delivery, parse_event
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

T = 1_790_000_000_000


def event(subscription: str, object_id: Any = 101, **fields: Any) -> dict[str, Any]:
    """An event as HubSpot's docs show it (the SDK's own example's fields)."""
    return {
        "eventId": 7,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": T,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM",
        **fields,
    }


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (event("contact.creation", changeFlag="NEW"), EventKind.CHANGED),
        (event("contact.propertyChange", propertyName="email", propertyValue="a@b.example"), EventKind.CHANGED),
        (event("contact.deletion", changeFlag="DELETED"), EventKind.DELETED),
        (event("contact.privacyDeletion"), EventKind.PRIVACY_DELETED),
        (event("contact.restore"), EventKind.RESTORED),
        (event("object.creation", objectTypeId="0-1"), EventKind.CHANGED),
        (event("object.propertyChange", objectTypeId="0-1", propertyName="lastname"), EventKind.CHANGED),
        (event("object.deletion", objectTypeId="0-1"), EventKind.DELETED),
        (event("object.restore", objectTypeId="0-1"), EventKind.RESTORED),
    ],
)
def test_contact_subscriptions_become_contact_events(raw: dict[str, Any], kind: EventKind) -> None:
    parsed = parse_event(0, raw)
    assert isinstance(parsed, ContactEvent)
    said = {"property_name": parsed.property_name, "fingerprint": parsed.fingerprint}  # tested below
    assert parsed == ContactEvent(Side.HUBSPOT, "101", kind, T, f"7:12345:101:{T}", **said)


def test_a_merge_names_the_new_record_as_survivor_and_both_old_ids_as_merged() -> None:
    # HubSpot's merge now creates a record with a new id: primary and secondary are both gone into it.
    raw = event("contact.merge", 201, primaryObjectId=201, mergedObjectIds=[150], newObjectId=305)
    parsed = parse_event(0, raw)
    assert isinstance(parsed, ContactEvent)
    assert (parsed.kind, parsed.contact_id, parsed.merged_ids) == (EventKind.MERGED, "305", ("150", "201"))


def test_a_merge_without_a_new_id_keeps_the_primary() -> None:
    raw = event("object.merge", "201", objectTypeId="0-1", primaryObjectId="201", mergedObjectIds=["99", 1000])
    parsed = parse_event(0, raw)
    assert isinstance(parsed, ContactEvent)
    assert (parsed.contact_id, parsed.merged_ids) == ("201", ("99", "1000"))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a string", "not a JSON object"),
        ({**event("contact.creation"), "subscriptionType": None}, "no subscriptionType"),
        (event("contact.creation", object_id=None), "no valid objectId"),
        (event("contact.creation", object_id=-3), "no valid objectId"),
        (event("contact.creation", object_id="12a"), "no valid objectId"),
        (event("contact.creation", object_id=True), "no valid objectId"),
        ({**event("contact.creation"), "eventId": None}, "no eventId"),
        ({**event("contact.creation"), "occurredAt": "yesterday"}, "no valid occurredAt"),
        (event("contact.teleported"), "unknown contact subscription 'teleported'"),
        (event("contact.merge", mergedObjectIds=[5]), "merge without valid primaryObjectId and mergedObjectIds"),
        (event("contact.merge", primaryObjectId=5), "merge without valid primaryObjectId and mergedObjectIds"),
        (
            event("contact.merge", primaryObjectId=5, mergedObjectIds=[6, "x"]),
            "merge without valid primaryObjectId and mergedObjectIds",
        ),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(raw: Any, reason: str) -> None:
    parsed = parse_event(3, raw)
    assert isinstance(parsed, Skipped) and not parsed.ignored
    assert (parsed.index, parsed.reason) == (3, reason)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (event("company.creation"), "company.creation is not a contact event"),
        (event("object.creation", objectTypeId="0-2"), "objectTypeId '0-2' is not a contact"),
        (event("object.creation"), "objectTypeId None is not a contact"),
        (event("contact.associationChange"), "associationChange changes no contact field"),
    ],
)
def test_events_of_other_objects_and_association_changes_are_ignored_with_a_reason(raw: Any, reason: str) -> None:
    parsed = parse_event(0, raw)
    assert isinstance(parsed, Skipped) and parsed.ignored and parsed.reason == reason
    assert (parsed.event_id, parsed.object_id) == ("7", "101")


def test_events_of_another_portal_are_ignored_when_the_portal_is_known() -> None:
    raw = event("contact.creation", portalId=999)
    assert isinstance(parse_event(0, raw), ContactEvent)
    parsed = parse_event(0, raw, portal_id=62515)
    assert isinstance(parsed, Skipped) and parsed.ignored and parsed.reason == "portal 999 is not 62515"


def test_a_retried_delivery_repeats_the_event_id_and_colliding_hubspot_event_ids_do_not() -> None:
    first = parse_event(0, event("contact.propertyChange", propertyName="email"))
    retry = parse_event(0, event("contact.propertyChange", propertyName="email", attemptNumber=3))
    other_subscription = parse_event(0, event("contact.propertyChange", subscriptionId=999))
    other_contact = parse_event(0, event("contact.propertyChange", 102))
    assert isinstance(first, ContactEvent) and isinstance(retry, ContactEvent)
    assert first.event_id == retry.event_id
    ids = {e.event_id for e in (first, other_subscription, other_contact) if isinstance(e, ContactEvent)}
    assert len(ids) == 3


def test_a_delivery_sorts_every_event_and_loses_none() -> None:
    payload = [
        event("contact.creation", 1),
        event("company.creation", 2),
        event("contact.creation", "bad"),
        event("contact.privacyDeletion", 4),
    ]
    parsed = parse_delivery(payload)
    assert [e.contact_id for e in parsed.events] == ["1", "4"]
    assert [s.index for s in parsed.ignored] == [1]
    assert [s.index for s in parsed.rejected] == [2]
    assert len(parsed.events) + len(parsed.ignored) + len(parsed.rejected) == len(payload)


@pytest.mark.parametrize("payload", [{"eventId": 1}, "[]", None, 5])
def test_a_body_that_is_not_an_array_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedDelivery):
        parse_delivery(payload)


def test_a_property_change_carries_the_property_and_a_digest_of_its_value_never_the_value() -> None:
    from include.sync_logic.event_echoes import value_digest

    parsed = parse_event(0, event("contact.propertyChange", propertyName="email", propertyValue="a@b.example"))
    assert isinstance(parsed, ContactEvent)
    assert parsed.property_name == "email"
    assert parsed.fingerprint == value_digest("email", "a@b.example")
    assert "a@b.example" not in str(parsed.to_fields())
    cleared = parse_event(0, event("object.propertyChange", objectTypeId="0-1", propertyName="phone", propertyValue=""))
    assert isinstance(cleared, ContactEvent) and cleared.fingerprint == value_digest("phone", None)


def test_events_other_than_property_changes_carry_no_digest() -> None:
    for subscription in ("contact.creation", "contact.deletion", "contact.restore", "contact.privacyDeletion"):
        parsed = parse_event(0, event(subscription, propertyName="email", propertyValue="a@b.example"))
        assert isinstance(parsed, ContactEvent)
        assert (parsed.property_name, parsed.fingerprint) == ("", "")
    no_value = parse_event(0, event("contact.propertyChange", propertyName="email"))  # says nothing to match
    assert isinstance(no_value, ContactEvent) and no_value.fingerprint == ""
