"""A private app's webhook settings and the event payloads a contact change produces in HubSpot's format.

Sources (HubSpot developer docs, "Webhooks API", and the pages it links):
- Private apps configure webhooks in the app's settings only ("Managing your private app's webhook
  subscriptions via API is not currently supported"), so the sandbox takes them from its CLI or the admin
  route `POST /__admin/webhooks`; a subscription has HubSpot's fields `eventType`, `propertyName`, `active`.
- Contact subscription types: contact.creation, .deletion, .privacyDeletion, .restore, .merge,
  .propertyChange (one property per subscription; hs_lastmodifieddate and num_unique_conversion_events
  cannot be subscribed to; a property the portal lacks yields no events); at most 1000 subscriptions per
  app, more is a 400 with HubSpot's message.
- Payload fields: objectId, propertyName/propertyValue (property changes only: the new value), changeSource,
  eventId ("not guaranteed to be unique"), subscriptionId, portalId, appId, occurredAt (ms),
  subscriptionType, attemptNumber (from 0). The docs' field table calls the type `eventType`, but HubSpot's
  deliveries and SDK fixtures carry `subscriptionType`, which the sandbox sends.
- Merge events add primaryObjectId (the winner), mergedObjectIds (the records merged into it), newObjectId
  (the record the merge created: HubSpot now always creates one) and numberOfPropertiesMoved; objectId is
  the winner, as integrators' captured payloads show.
- "A privacy deletion event will also trigger the contact deletion event", not necessarily in the same
  batch; the sandbox emits both for a live contact (an archived one was already deleted).
- A creation also fires propertyChange events for the subscribed properties it sets, as integrators report
  (connectors de-duplicate "creation also firing update"); a write that leaves a value as it was fires none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.hubspot.errors import PORTAL_ID

CREATION, DELETION, PRIVACY_DELETION = "contact.creation", "contact.deletion", "contact.privacyDeletion"
RESTORE, MERGE, PROPERTY_CHANGE = "contact.restore", "contact.merge", "contact.propertyChange"
EVENT_TYPES = (CREATION, DELETION, PRIVACY_DELETION, RESTORE, MERGE, PROPERTY_CHANGE)
UNSUBSCRIBABLE = frozenset({"hs_lastmodifieddate", "num_unique_conversion_events"})
MAX_SUBSCRIPTIONS = 1000
MAX_BATCH = 100  # "Each request can contain up to 100 events"
DEFAULT_CONCURRENCY = 10  # "a concurrency limit of 10 requests" in flight per installing account
# Subscribed when the settings name none: every contact event and the properties the sync maps.
DEFAULT_PROPERTIES = ("email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company")
FIRST_SUBSCRIPTION_ID = 1001
# changeSource values (the vocabulary of contact property histories) for the ways the sandbox changes data
API, IMPORT, CRM_UI = "API", "IMPORT", "CRM_UI"


@dataclass(frozen=True)
class Subscription:
    id: int
    event_type: str
    property_name: str | None = None
    active: bool = True

    def matches(self, event_type: str, property_name: str | None) -> bool:
        return self.active and self.event_type == event_type and self.property_name == property_name

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "eventType": self.event_type, "active": self.active}
        if self.property_name:
            body["propertyName"] = self.property_name
        return body


@dataclass(frozen=True)
class Faults:
    """What the sender does to events beyond HubSpot's own habits: `drop` and `duplicate` are shares of
    events (decided per event from the seeded RNG), `delay_ms` holds every event back before its first
    send, `reorder` takes due events in a random order and shuffles each request's events."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay_ms: int = 0
    reorder: bool = False


@dataclass(frozen=True)
class WebhookConfig:
    """The app's webhook settings plus the sandbox's delivery knobs (batching, retry time scale, faults)."""

    target_url: str
    client_secret: str
    app_id: int
    subscriptions: tuple[Subscription, ...]
    max_batch: int = MAX_BATCH
    batch_wait_ms: int = 500
    max_concurrent: int = DEFAULT_CONCURRENCY
    retry_time_scale: float = 1.0  # 1.0: HubSpot's 10 retries over 24 hours; 0.001 compresses them to ~86 s
    seed: int = 0
    faults: Faults = field(default_factory=Faults)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], link_property: str | None = None) -> WebhookConfig:
        """Validate admin/CLI settings; raises ValueError (the admin route's 400) on anything invalid."""
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown webhook settings: {sorted(unknown)}")
        target_url, secret = str(body.get("target_url") or ""), str(body.get("client_secret") or "")
        if not target_url.startswith(("http://", "https://")):
            raise ValueError("target_url must be an http(s) URL")
        if not secret:
            raise ValueError("client_secret is required (it signs every request)")
        config = cls(
            target_url=target_url,
            client_secret=secret,
            app_id=int(body.get("app_id", 1)),
            subscriptions=_subscriptions(body.get("subscriptions"), link_property),
            max_batch=_bounded_int(body, "max_batch", MAX_BATCH, 1, MAX_BATCH),
            batch_wait_ms=_bounded_int(body, "batch_wait_ms", 500, 0, 60_000),
            max_concurrent=_bounded_int(body, "max_concurrent", DEFAULT_CONCURRENCY, 1, 100),
            retry_time_scale=float(body.get("retry_time_scale", 1.0)),
            seed=int(body.get("seed", 0)),
            faults=_faults(body.get("faults") or {}),
        )
        if config.retry_time_scale <= 0:
            raise ValueError("retry_time_scale must be positive")
        return config

    def public(self) -> dict[str, Any]:
        """The settings as the admin GET shows them: never the client secret."""
        body = asdict(self)
        body.pop("client_secret")
        body["subscriptions"] = [s.to_json() for s in self.subscriptions]
        return body


@dataclass(frozen=True)
class Change:
    """One change to a contact, as the app saw it: which kind, which record, when (sandbox ms), from where,
    the subscribed-to candidates among its property values, and a merge's ids."""

    kind: str  # one of EVENT_TYPES; PROPERTY_CHANGE for an update, which fires property events only
    object_id: int
    occurred_at: int
    change_source: str = API
    properties: Mapping[str, str] = field(default_factory=dict)  # changed property -> new value ("" = cleared)
    merge: Mapping[str, Any] = field(default_factory=dict)  # primaryObjectId, mergedObjectIds, newObjectId, ...


def events_for(config: WebhookConfig, change: Change, next_event_id: Callable[[], int]) -> list[dict[str, Any]]:
    """The payloads (without attemptNumber, which the sender sets per try) one change produces."""
    events = []
    for subscription in config.subscriptions:
        if subscription.matches(change.kind, None):
            events.append({**_base(config, subscription, change, next_event_id()), **change.merge})
    for name, value in change.properties.items():
        for subscription in config.subscriptions:
            if subscription.matches(PROPERTY_CHANGE, name):
                event = _base(config, subscription, change, next_event_id())
                events.append({**event, "propertyName": name, "propertyValue": value})
    return events


def _base(config: WebhookConfig, subscription: Subscription, change: Change, event_id: int) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": subscription.id,
        "portalId": PORTAL_ID,
        "appId": config.app_id,
        "occurredAt": change.occurred_at,
        "subscriptionType": subscription.event_type,
        "objectId": change.object_id,
        "changeSource": change.change_source,
    }


def _subscriptions(raw: Any, link_property: str | None) -> tuple[Subscription, ...]:
    if raw is None:
        properties = [*DEFAULT_PROPERTIES, *([link_property] if link_property else [])]
        raw = [{"eventType": t} for t in EVENT_TYPES if t != PROPERTY_CHANGE]
        raw += [{"eventType": PROPERTY_CHANGE, "propertyName": name} for name in properties]
    if not isinstance(raw, list):
        raise ValueError("subscriptions must be a list of {eventType, propertyName?, active?}")
    if len(raw) > MAX_SUBSCRIPTIONS:
        raise ValueError(
            "Couldn't create another subscription. You've reached the maximum number allowed per application "
            f"({MAX_SUBSCRIPTIONS})."
        )
    return tuple(_subscription(FIRST_SUBSCRIPTION_ID + i, item) for i, item in enumerate(raw))


def _subscription(subscription_id: int, item: Any) -> Subscription:
    if not isinstance(item, dict) or item.get("eventType") not in EVENT_TYPES:
        raise ValueError(f"each subscription needs an eventType among {EVENT_TYPES}: {item!r}")
    event_type, name = item["eventType"], item.get("propertyName")
    if event_type == PROPERTY_CHANGE and not name:
        raise ValueError("a contact.propertyChange subscription needs a propertyName")
    if event_type != PROPERTY_CHANGE and name:
        raise ValueError(f"propertyName is only for contact.propertyChange, not {event_type}")
    if name in UNSUBSCRIBABLE:
        raise ValueError(f"{name} is not available for property change subscriptions")
    return Subscription(subscription_id, event_type, name, bool(item.get("active", True)))


def _faults(raw: Any) -> Faults:
    if not isinstance(raw, dict) or set(raw) - set(Faults.__dataclass_fields__):
        raise ValueError(f"faults takes {sorted(Faults.__dataclass_fields__)}")
    faults = Faults(
        drop=float(raw.get("drop", 0.0)),
        duplicate=float(raw.get("duplicate", 0.0)),
        delay_ms=int(raw.get("delay_ms", 0)),
        reorder=bool(raw.get("reorder", False)),
    )
    if not (0 <= faults.drop <= 1 and 0 <= faults.duplicate <= 1 and faults.delay_ms >= 0):
        raise ValueError("faults.drop and faults.duplicate are shares (0..1); delay_ms is not negative")
    return faults


def _bounded_int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = int(body.get(name, default))
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value
