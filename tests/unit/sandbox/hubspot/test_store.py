"""The HubSpot sandbox store's identity changes: merges into a new record, GDPR purges and restores keep
every index (email, unique values, sorted timestamps, id lists, merged-away ids) consistent."""

from __future__ import annotations

import pytest

from sandbox.hubspot.errors import HubSpotError
from sandbox.hubspot.store import MERGED_IDS, RESTORE_WINDOW_MS, SECONDARY_EMAILS, Contact, ContactStore, iso_ms

T0 = 1_780_000_000_000


@pytest.fixture
def store() -> ContactStore:
    return ContactStore()


def add(store: ContactStore, now: int = T0, **props: str) -> Contact:
    return store.create(store.validate(props, None), now)


def assert_indexes_match(store: ContactStore) -> None:
    """Every index agrees with a scan of the records."""
    live = [c for c in store.contacts.values() if not c.archived]
    assert store.active_ids == sorted(c.id for c in live)
    assert store.archived_ids == sorted(c.id for c in store.contacts.values() if c.archived)
    assert store.by_updated == sorted((c.updated, c.id) for c in live)
    assert store.by_created == sorted((c.created, c.id) for c in live)
    assert store.by_email == {e: c.id for c in live for e in c.emails()}
    link = store.link_property
    assert store.by_unique[link] == {c.props[link]: c.id for c in live if c.props.get(link)}
    assert set(store.merged_into.values()) <= set(store.contacts)


def test_merge_builds_a_new_record_and_repoints_every_old_id(store):
    ada = add(store, email="ada@example.com", firstname="Ada", salesforce_contact_id="003A")
    bea = add(store, T0 + 1, email="bea@example.com", lastname="Byron", salesforce_contact_id="003B")
    first = store.merge(ada, bea, T0 + 10)
    assert (first.created, first.updated) == (T0, T0 + 10)
    assert first.props["salesforce_contact_id"] == "003A"  # the primary's unique value; 003B is free again
    assert store.find("003B", "salesforce_contact_id") is None
    assert store.find(str(ada.id)) is store.find(str(bea.id)) is first
    assert_indexes_match(store)

    carl = add(store, T0 + 20, email="carl@example.com")
    second = store.merge(carl, first, T0 + 30)
    assert second.props[MERGED_IDS] == ";".join(map(str, [ada.id, bea.id, first.id, carl.id]))
    assert second.props[SECONDARY_EMAILS] == "ada@example.com;bea@example.com"
    assert {store.merged_into[i] for i in (ada.id, bea.id, first.id, carl.id)} == {second.id}
    assert store.find("bea@example.com", "email") is second
    assert_indexes_match(store)


def test_purge_removes_the_record_its_old_ids_and_blocklists_its_emails(store):
    one, two = add(store, email="one@example.com"), add(store, email="two@example.com")
    merged = store.merge(one, two, T0 + 5)
    version = store.version
    store.purge(merged)
    assert store.contacts == {} and store.merged_into == {} and store.version > version
    assert store.find(str(one.id)) is None
    assert store.blocklist == {"one@example.com", "two@example.com"}
    assert_indexes_match(store)
    imported = [{"properties": {"email": "TWO@example.com"}}, {"properties": {"email": "new@example.com"}}]
    result = store.seed(imported, T0)
    assert result["created"] == 1 and result["rejected"][0]["index"] == 0


def test_restore_is_refused_while_a_live_contact_holds_a_value(store):
    old = add(store, email="old@example.com", salesforce_contact_id="003X")
    store.archive(old, T0 + 1)
    taker = add(store, T0 + 2, email="new@example.com", salesforce_contact_id="003X")
    with pytest.raises(HubSpotError) as conflict:
        store.restore(old, T0 + 3)
    assert conflict.value.status == 409 and str(taker.id) in conflict.value.message
    store.archive(taker, T0 + 4)
    store.restore(old, T0 + 5)
    assert (old.archived, old.archived_at, old.updated) == (False, None, T0 + 5)
    assert store.find("003X", "salesforce_contact_id") is old
    assert_indexes_match(store)
    with pytest.raises(HubSpotError, match="not archived"):
        store.restore(old, T0 + 6)
    with pytest.raises(HubSpotError, match="more than 90 days"):
        store.restore(taker, T0 + 4 + RESTORE_WINDOW_MS + 1)


def test_age_moves_every_stamp_back_and_keeps_the_indexes(store):
    kept = add(store, email="kept@example.com")
    store.update(kept, {"firstname": "Ada"}, T0 + 60_000)
    gone = add(store, T0 + 1, email="gone@example.com")
    store.archive(gone, T0 + 2)
    version, hour = store.version, 3_600_000
    assert store.age(hour) == 2
    assert (kept.created, kept.updated) == (T0 - hour, T0 + 60_000 - hour)
    assert (gone.created, gone.archived_at) == (T0 + 1 - hour, T0 + 2 - hour)
    assert kept.value("lastmodifieddate") == kept.value("hs_lastmodifieddate") == iso_ms(T0 + 60_000 - hour)
    assert store.version > version  # cached searches over the old stamps are dropped
    assert_indexes_match(store)
