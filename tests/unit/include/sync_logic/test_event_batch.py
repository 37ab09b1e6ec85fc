"""A batch of events as reads by id: each contact once, its known counterpart in the same read, deletions with the
deleted rows, merges with their losers' counterparts, privacy deletions not read at all."""

from __future__ import annotations

import pandas as pd

from include.sync_logic.event_batch import batch_reads, named_ids
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

SF, HS = Side.SALESFORCE, Side.HUBSPOT


def event(side: Side, contact_id: str, kind: EventKind = EventKind.CHANGED, *merged: str) -> ContactEvent:
    return ContactEvent(side, contact_id, kind, 0, f"{side}:{contact_id}:{kind}", tuple(merged))


def pairs(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["salesforce_id", "hubspot_id"])


def test_each_contact_is_read_once_with_its_known_counterpart_in_the_same_read() -> None:
    batch = [event(SF, "003A"), event(SF, "003A"), event(HS, "101"), event(HS, "102")]
    reads = batch_reads(batch, pairs(("003A", "100"), ("003B", "101")))
    assert reads.with_deleted[SF] == ["003A", "003B"]  # 101's partner joins Salesforce's one query
    assert reads.live[SF] == []
    assert reads.live[HS] == ["101", "102", "100"]  # 003A's partner joins HubSpot's batch read
    assert reads.with_deleted[HS] == []
    assert reads.named == {SF: ["003A"], HS: ["101", "102"]}


def test_a_hubspot_deletion_is_read_with_the_archive_and_a_privacy_deletion_not_at_all() -> None:
    batch = [event(HS, "101", EventKind.DELETED), event(HS, "102", EventKind.PRIVACY_DELETED), event(HS, "103")]
    reads = batch_reads(batch, pairs(("003B", "102")))
    assert reads.with_deleted[HS] == ["101"]
    assert reads.live[HS] == ["103"]
    assert reads.with_deleted[SF] == ["003B"]  # the privacy-deleted contact's counterpart is still read
    assert reads.keep == {SF: ["003B"], HS: []}  # and kept in play, unchanged as it is: its tombstone is found now
    assert reads.named[HS] == ["101", "102", "103"]


def test_a_hubspot_merge_reads_the_new_record_and_the_counterparts_of_every_merged_id() -> None:
    batch = [event(HS, "900", EventKind.MERGED, "101", "102")]
    reads = batch_reads(batch, pairs(("003A", "101"), ("003B", "102")))
    assert reads.live[HS] == ["900"]  # the old ids would answer as the new record anyway
    assert reads.with_deleted[SF] == ["003A", "003B"]
    assert reads.named[HS] == ["900", "101", "102"]


def test_a_salesforce_merge_reads_the_master_its_losers_and_their_counterparts() -> None:
    batch = [event(SF, "003M", EventKind.MERGED, "003L")]
    reads = batch_reads(batch, pairs(("003L", "101"), ("003M", "102")))
    assert reads.with_deleted[SF] == ["003M", "003L"]  # the loser's Recycle Bin row names its master
    assert sorted(reads.live[HS]) == ["101", "102"]


def test_named_ids_keep_event_order_once_per_side() -> None:
    batch = [event(HS, "2"), event(SF, "003A", EventKind.MERGED, "003B"), event(HS, "1"), event(HS, "2")]
    assert named_ids(batch) == {SF: ["003A", "003B"], HS: ["2", "1"]}


def test_no_events_read_nothing() -> None:
    reads = batch_reads([], pairs())
    assert reads.live == reads.with_deleted == reads.keep == {SF: [], HS: []}
