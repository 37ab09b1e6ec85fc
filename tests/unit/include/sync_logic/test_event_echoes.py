"""Echo matching: an event that says exactly what the event path last wrote is its own write coming back."""

from __future__ import annotations

import math

from include.sync_logic.event_echoes import (
    ROW,
    echo_indexes,
    is_echo,
    row_digest,
    value_digest,
    written_digests,
)
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

FIELDS = ["Email", "FirstName", "LastName"]  # what the poll selects besides its own fields


def hubspot_change(contact_id: str, name: str, value: str, kind: EventKind = EventKind.CHANGED) -> ContactEvent:
    return ContactEvent(
        Side.HUBSPOT, contact_id, kind, 1, f"e-{name}", property_name=name, fingerprint=value_digest(name, value)
    )


def salesforce_change(row: dict[str, object], kind: EventKind = EventKind.CHANGED) -> ContactEvent:
    return ContactEvent(Side.SALESFORCE, str(row["Id"]), kind, 1, "sf-1", fingerprint=row_digest(row, FIELDS))


def test_a_digest_names_the_field_and_hides_the_value() -> None:
    digest = value_digest("email", "ada@example.com")
    assert "ada" not in digest and len(digest) == 64
    assert digest == value_digest("email", "ada@example.com")
    assert digest != value_digest("email", "Ada@example.com")  # normalised differently: no match, read as today
    assert digest != value_digest("firstname", "ada@example.com")


def test_empty_values_are_one_value_whatever_their_type() -> None:
    assert value_digest("phone", None) == value_digest("phone", "") == value_digest("phone", math.nan)
    assert value_digest("phone", None) != value_digest("phone", "None")
    assert value_digest("flag", True) == value_digest("flag", "true")  # HubSpot sends booleans as text


def test_a_hubspot_property_change_to_the_written_value_is_an_echo() -> None:
    recorded = written_digests(Side.HUBSPOT, {"firstname": "Ada", "lastname": "Lovelace"}, read_row=None, row_fields=[])
    assert is_echo(hubspot_change("101", "firstname", "Ada"), recorded)
    assert is_echo(hubspot_change("101", "lastname", "Lovelace"), recorded)


def test_a_human_edit_after_our_write_is_not_an_echo() -> None:
    recorded = written_digests(Side.HUBSPOT, {"firstname": "Ada"}, read_row=None, row_fields=[])
    assert not is_echo(hubspot_change("101", "firstname", "Augusta"), recorded)
    assert not is_echo(hubspot_change("101", "jobtitle", "Countess"), recorded)  # a property we did not write
    assert not is_echo(hubspot_change("101", "firstname", "Ada"), {})  # nothing recorded


def test_creations_deletions_and_the_like_are_never_echoes() -> None:
    recorded = written_digests(Side.HUBSPOT, {"firstname": "Ada"}, read_row=None, row_fields=[])
    for kind in EventKind:
        if kind is not EventKind.CHANGED:
            assert not is_echo(hubspot_change("101", "firstname", "Ada", kind), recorded)
    creation = ContactEvent(Side.HUBSPOT, "101", EventKind.CHANGED, 1, "c1")  # no property: a creation
    assert not is_echo(creation, recorded)


def test_a_salesforce_row_equal_to_the_read_row_with_our_write_is_an_echo() -> None:
    read = {"Id": "003A", "Email": "ada@example.com", "FirstName": "Ada", "LastName": "Byron", "IsDeleted": False}
    recorded = written_digests(Side.SALESFORCE, {"LastName": "Lovelace"}, read_row=read, row_fields=FIELDS)
    assert set(recorded) == {ROW}
    polled = {**read, "LastName": "Lovelace", "SystemModstamp": "later"}  # fields outside the list do not count
    assert is_echo(salesforce_change(polled), recorded)
    assert not is_echo(salesforce_change({**polled, "FirstName": "Augusta"}), recorded)  # a human edit since
    assert not is_echo(salesforce_change(read), recorded)  # the write did not land (or was undone)
    assert not is_echo(salesforce_change(polled, EventKind.DELETED), recorded)


def test_a_created_salesforce_row_holds_only_what_was_written() -> None:
    recorded = written_digests(Side.SALESFORCE, {"LastName": "Lovelace"}, read_row=None, row_fields=FIELDS)
    assert is_echo(salesforce_change({"Id": "003N", "LastName": "Lovelace", "Email": None}), recorded)


def test_echo_indexes_pick_the_echoes_of_a_batch() -> None:
    recorded = {
        (Side.HUBSPOT, "101"): written_digests(Side.HUBSPOT, {"firstname": "Ada"}, read_row=None, row_fields=[])
    }
    batch = [
        hubspot_change("101", "firstname", "Ada"),
        hubspot_change("101", "firstname", "Augusta"),
        hubspot_change("102", "firstname", "Ada"),
    ]
    assert echo_indexes(batch, recorded) == [0]
