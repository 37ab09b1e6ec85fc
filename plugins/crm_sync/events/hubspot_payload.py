"""A HubSpot webhook delivery (a JSON array of up to 100 events) reduced to `ContactEvent`s (pure).

Both subscription formats are read: the classic `contact.*` types and the generic `object.*` ones, whose
`objectTypeId` says which object (`0-1`: contacts). Every event becomes a contact event, or is *ignored*
with a reason (another object, an association change, another portal) or *rejected* with a reason (it lacks
what a sync needs); nothing is left out without being counted. HubSpot retries any 4xx for 24 hours, so a bad
event never fails the delivery: its neighbours are queued, the refusal counted and logged.

`eventId` is not unique by HubSpot's own docs, so the event id joins it with the subscription, the object and
the time: a duplicate delivery repeats all four (only `attemptNumber` moves), two events never share them.
`propertyValue` is kept only as a digest (`event_echoes`: it may hold an email or a phone), so the event run can tell
its own writes coming back from people's edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.sync_logic.event_echoes import value_digest
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

CONTACT_OBJECT_TYPE_ID = "0-1"

_KINDS = {
    "creation": EventKind.CHANGED,
    "propertyChange": EventKind.CHANGED,
    "deletion": EventKind.DELETED,
    "privacyDeletion": EventKind.PRIVACY_DELETED,
    "restore": EventKind.RESTORED,
    "merge": EventKind.MERGED,
}
_NOT_CONTACT_CHANGES = {"associationChange"}


@dataclass(frozen=True)
class Skipped:
    """An event not queued: its place in the delivery, why, whether on purpose (`ignored`) or because it is
    malformed, and the ids it had (if any)."""

    index: int
    reason: str
    ignored: bool = False
    event_id: str | None = None
    object_id: str | None = None


@dataclass
class ParsedDelivery:
    """What one delivery holds: events to queue, events ignored on purpose, events rejected as malformed."""

    events: list[ContactEvent] = field(default_factory=list)
    ignored: list[Skipped] = field(default_factory=list)
    rejected: list[Skipped] = field(default_factory=list)


class MalformedDelivery(ValueError):
    """The body is not a JSON array of objects at all (nothing in it can be read)."""


def _object_id(value: Any) -> str | None:
    """HubSpot ids are positive integers (JSON numbers, sometimes strings); None when not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return str(int(value))
    return None


def _ids(values: Any) -> list[str] | None:
    if not isinstance(values, list):
        return None
    ids = [_object_id(value) for value in values]
    return None if any(item is None for item in ids) else [item for item in ids if item is not None]


def _contact_action(raw: Mapping[str, Any]) -> str | tuple[str, bool]:
    """The action of a contact event (`merge`, `propertyChange`, ...), else (reason, ignored)."""
    kind = raw.get("subscriptionType") or raw.get("eventType")  # the docs' field table says eventType
    if not isinstance(kind, str) or "." not in kind:
        return "no subscriptionType", False
    obj, _, action = kind.partition(".")
    if obj == "object" and raw.get("objectTypeId") != CONTACT_OBJECT_TYPE_ID:
        return f"objectTypeId {raw.get('objectTypeId')!r} is not a contact", True
    if obj not in ("object", "contact"):
        return f"{kind} is not a contact event", True
    return action


def _merge(raw: Mapping[str, Any], object_id: str) -> tuple[str, tuple[str, ...]] | str:
    """The surviving id and the ids merged into it. HubSpot's merge now makes a record with a new id
    (`newObjectId`); then the primary is merged away too."""
    merged = _ids(raw.get("mergedObjectIds"))
    primary = _object_id(raw.get("primaryObjectId"))
    if not merged or primary is None:
        return "merge without valid primaryObjectId and mergedObjectIds"
    survivor = _object_id(raw.get("newObjectId")) or primary
    gone = {*merged, primary, object_id} - {survivor}
    return survivor, tuple(sorted(gone, key=int))


def parse_event(index: int, raw: Any, portal_id: int | None = None) -> ContactEvent | Skipped:
    """One event of a delivery (at `index`): a `ContactEvent`, or why it is not one."""
    if not isinstance(raw, Mapping):
        return Skipped(index, "not a JSON object")
    event_id = raw.get("eventId")
    hs_event = str(event_id) if isinstance(event_id, int | str) and not isinstance(event_id, bool) else ""
    object_id = _object_id(raw.get("objectId"))

    def skip(reason: str, ignored: bool = False) -> Skipped:
        return Skipped(index, reason, ignored, hs_event or None, object_id)

    action = _contact_action(raw)
    if isinstance(action, tuple):
        return skip(*action)
    if portal_id is not None and raw.get("portalId") != portal_id:
        return skip(f"portal {raw.get('portalId')!r} is not {portal_id}", ignored=True)
    if action in _NOT_CONTACT_CHANGES:
        return skip(f"{action} changes no contact field", ignored=True)
    kind = _KINDS.get(action)
    if kind is None:
        return skip(f"unknown contact subscription {action!r}")
    if not hs_event:
        return skip("no eventId")
    if object_id is None:
        return skip("no valid objectId")
    occurred = raw.get("occurredAt")
    if isinstance(occurred, bool) or not isinstance(occurred, int) or occurred <= 0:
        return skip("no valid occurredAt")
    contact_id = object_id
    merged_ids: tuple[str, ...] = ()
    if kind is EventKind.MERGED:
        merge = _merge(raw, object_id)
        if isinstance(merge, str):
            return skip(merge)
        contact_id, merged_ids = merge
    name, value = raw.get("propertyName"), raw.get("propertyValue")
    says = action == "propertyChange" and isinstance(name, str) and name and isinstance(value, str)
    return ContactEvent(
        side=Side.HUBSPOT,
        contact_id=contact_id,
        kind=kind,
        occurred_at_ms=occurred,
        event_id=f"{hs_event}:{raw.get('subscriptionId', '')}:{object_id}:{occurred}",
        merged_ids=merged_ids,
        property_name=str(name) if says else "",
        fingerprint=value_digest(str(name), value) if says else "",
    )


def parse_delivery(payload: Any, portal_id: int | None = None) -> ParsedDelivery:
    """Every event of a delivery, sorted into queued, ignored and rejected; `MalformedDelivery` when the
    payload is not a JSON array."""
    if not isinstance(payload, list):
        raise MalformedDelivery(f"a delivery is a JSON array of events, not {type(payload).__name__}")
    parsed = ParsedDelivery()
    for index, raw in enumerate(payload):
        outcome = parse_event(index, raw, portal_id)
        if isinstance(outcome, ContactEvent):
            parsed.events.append(outcome)
        else:
            (parsed.ignored if outcome.ignored else parsed.rejected).append(outcome)
    return parsed
