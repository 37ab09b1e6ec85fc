"""A change one CRM announced about one contact: what the event-driven path queues and syncs.

Both sources (HubSpot webhooks, the Salesforce change feed) are reduced to this shape before they are
queued, so the queue, the trigger and the event DAG never see a CRM's own event format.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from include.sync_logic.sides import Side


class EventKind(StrEnum):
    """What happened to the contact (HubSpot subscription types, Salesforce change types)."""

    CHANGED = "changed"  # created or a property changed: re-read the contact
    DELETED = "deleted"  # deleted / archived (restorable)
    PRIVACY_DELETED = "privacy_deleted"  # GDPR delete: never to be re-created
    RESTORED = "restored"  # back from the recycle bin / restored
    MERGED = "merged"  # `contact_id` is the surviving record; `merged_ids` were merged into it


@dataclass(frozen=True)
class ContactEvent:
    """One event about one contact; `event_id` is the source's own id (a duplicate delivery repeats it)."""

    side: Side
    contact_id: str
    kind: EventKind
    occurred_at_ms: int
    event_id: str
    merged_ids: tuple[str, ...] = field(default=())
    # What the event says the contact now holds, as a digest (never the value): HubSpot's propertyChange names one
    # property (`property_name`), the Salesforce poll digests the mapped fields. Empty: the event does not say.
    property_name: str = ""
    fingerprint: str = ""

    def to_fields(self) -> dict[str, str]:
        """Flat string fields (a Redis Stream entry)."""
        data: dict[str, Any] = asdict(self)
        data["merged_ids"] = ",".join(self.merged_ids)
        return {key: str(value) for key, value in data.items()}

    @classmethod
    def from_fields(cls, data: dict[str, str]) -> ContactEvent:
        """The inverse of `to_fields`; a malformed entry raises ValueError."""
        try:
            return cls(
                side=Side(data["side"]),
                contact_id=data["contact_id"],
                kind=EventKind(data["kind"]),
                occurred_at_ms=int(data["occurred_at_ms"]),
                event_id=data["event_id"],
                merged_ids=tuple(item for item in data.get("merged_ids", "").split(",") if item),
                property_name=data.get("property_name", ""),
                fingerprint=data.get("fingerprint", ""),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"not a contact event: {exc}") from exc
