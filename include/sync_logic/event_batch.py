"""One micro-batch of contact events as reads by id: what the event run reads of each CRM before it reconciles.

An event names a contact, not its values, so the run reads the named contacts again (whatever order or how
often their events came, it syncs what the CRMs hold now). Their counterparts that the sync state knows are read
in the same call, so a batch of edits to paired contacts costs one read per CRM and no counterpart look-up;
contacts the state does not pair are found by reconcile's usual look-ups (link id, then email).
- A merge names the survivor and the merged-away ids: the survivor is read (Salesforce: the losers too, its
  Recycle Bin rows name their master), and the counterparts of all of them, so the pairs can move.
- A deletion: read with the CRM's deleted rows (Salesforce's Recycle Bin, HubSpot's archive).
- A privacy deletion leaves nothing to read: only its counterpart is read, and kept in play even when unchanged,
  so the run's tombstone look-up finds the contact removed for good (never to be re-created) at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side


@dataclass(frozen=True)
class BatchReads:
    """Per CRM: the ids to read `live` only and those to read `with_deleted` rows (each a call of its own);
    `named`: every id the events name (merged-away and privacy-deleted ones too), to find their pairs by; `keep`:
    ids reconcile keeps in play although they equal the sync state (privacy-deleted contacts' counterparts)."""

    live: dict[Side, list[str]]
    with_deleted: dict[Side, list[str]]
    named: dict[Side, list[str]]
    keep: dict[Side, list[str]]


def named_ids(events: Sequence[ContactEvent]) -> dict[Side, list[str]]:
    """Every id the events name, per CRM, once each, in event order."""
    named: dict[Side, dict[str, None]] = {side: {} for side in Side}
    for event in events:
        for contact_id in (event.contact_id, *event.merged_ids):
            named[event.side].setdefault(contact_id, None)
    return {side: list(ids) for side, ids in named.items()}


def batch_reads(events: Sequence[ContactEvent], pairs: pd.DataFrame) -> BatchReads:
    """The reads of one batch; `pairs`: the sync state's pairs (`salesforce_id`, `hubspot_id`) of the named ids.

    Salesforce reads its Recycle Bin in the same query (queryAll), so every Salesforce id is read with the deleted
    rows; HubSpot's archive is a read of its own, spent on the ids whose events say deleted.
    """
    named = named_ids(events)
    gone = {(e.side, e.contact_id) for e in events if e.kind is EventKind.PRIVACY_DELETED}
    unread = set(gone)
    # A HubSpot id merged away answers as its survivor, a new record the merge event names: not read by the old id.
    unread |= {
        (e.side, loser)
        for e in events
        if e.kind is EventKind.MERGED and e.side is Side.HUBSPOT
        for loser in e.merged_ids
    }
    deleted = {(e.side, e.contact_id) for e in events if e.kind is EventKind.DELETED}
    live: dict[Side, list[str]] = {}
    with_deleted: dict[Side, list[str]] = {}
    for side in Side:
        wanted = [
            cid
            for cid in dict.fromkeys([*named[side], *_counterparts(pairs, side, named[side.other])])
            if (side, cid) not in unread
        ]
        if side is Side.SALESFORCE:
            live[side], with_deleted[side] = [], wanted
        else:
            live[side] = [cid for cid in wanted if (side, cid) not in deleted]
            with_deleted[side] = [cid for cid in wanted if (side, cid) in deleted]
    keep = {side: _counterparts(pairs, side, [cid for other, cid in gone if other is side.other]) for side in Side}
    return BatchReads(live=live, with_deleted=with_deleted, named=named, keep=keep)


def _counterparts(pairs: pd.DataFrame, side: Side, other_ids: list[str]) -> list[str]:
    """The `side` ids the pairs give the other side's ids."""
    if pairs.empty or not other_ids:
        return []
    own, other = f"{side}_id", f"{side.other}_id"
    hits = pairs[pairs[other].astype(str).isin(other_ids)]
    return [str(value) for value in hits[own].dropna()]
