"""Echoes: the events the event path's own writes cause, told apart from people's edits without storing a value.

A write of the event run comes back as events (HubSpot's webhooks for our batch update, the Salesforce poll seeing
our PATCH); each would cost a batch of reads that ends "equal, nothing to write". So a run records, per contact it
writes, sha256 digests of what it wrote, and an event that says exactly that is an echo, acknowledged unread:
- HubSpot `propertyChange` names one property and its new value: an echo when its digest equals the digest of
  the value we wrote to that property.
- The Salesforce poll reads the contact's mapped fields with its stamp (same call): an echo when the digest of the
  row equals the row as we left it (the row we read, with our write on it), so an edit to any mapped field since
  is news.
Creations, deletions, merges, privacy deletions and restores are never echoes. A value the CRM normalises
otherwise than we sent it fails to match and is read as before: safe. The digests name the field, never hold
the value (it may be an email), and are kept for a short while only (`crm_sync.events.echo_ledger`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.sides import Side

ROW = "*row"
"""The recorded digest of a Salesforce contact's whole row (no Salesforce field name starts with `*`)."""


def _text(value: object) -> str:
    """One spelling per value: empty for None/NaN (HubSpot sends "" for a cleared property), booleans as HubSpot
    and Salesforce's JSON write them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def salesforce_row_fields(mapping: MappingConfig) -> list[str]:
    """The Salesforce fields a row digest covers: the mapped ones and the link (not the id, not the system
    fields every write moves)."""
    return list(dict.fromkeys([*(item.salesforce for item in mapping.fields), mapping.link.salesforce]))


def value_digest(name: str, value: object) -> str:
    """The digest of one field's value (named, so equal values of two fields differ)."""
    return hashlib.sha256(f"{name}\0{_text(value)}".encode()).hexdigest()


def row_digest(row: Mapping[str, object], fields: Sequence[str]) -> str:
    """The digest of a row's `fields` (missing ones empty), in field-name order."""
    text = "\0".join(f"{name}\0{_text(row.get(name))}" for name in sorted(fields))
    return hashlib.sha256(text.encode()).hexdigest()


def written_digests(
    side: Side, written: Mapping[str, object], *, read_row: Mapping[str, object] | None, row_fields: Sequence[str]
) -> dict[str, str]:
    """What to record of one contact's write: HubSpot a digest per written property; Salesforce the digest of the
    row as the write leaves it (`read_row`, None for a create, with `written` on it) over `row_fields`."""
    if side is Side.HUBSPOT:
        return {name: value_digest(name, value) for name, value in written.items()}
    return {ROW: row_digest({**(read_row or {}), **written}, row_fields)}


def is_echo(event: ContactEvent, recorded: Mapping[str, str]) -> bool:
    """The event says exactly what our last recorded write of its contact said."""
    if event.kind is not EventKind.CHANGED or not event.fingerprint:
        return False
    key = event.property_name if event.side is Side.HUBSPOT else ROW
    return bool(key) and recorded.get(key) == event.fingerprint


def echo_indexes(events: Sequence[ContactEvent], recorded: Mapping[tuple[Side, str], Mapping[str, str]]) -> list[int]:
    """The positions of the echoes among `events`; `recorded`: per (side, contact id), its recorded digests."""
    return [
        index for index, event in enumerate(events) if is_echo(event, recorded.get((event.side, event.contact_id), {}))
    ]
