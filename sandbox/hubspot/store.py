"""In-memory HubSpot contacts: property definitions, records and the indexes that keep lookups O(log n).

Indexes: id -> record, normalised email -> id, unique property value -> id, and sorted (ms, id) lists for
lastmodifieddate and createdate so window searches are a bisect instead of a scan. Every write stamps
lastmodifieddate from the sandbox clock and bumps `version` (search caches key on it).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.hubspot.errors import (
    HubSpotError,
    contact_exists,
    invalid_option,
    property_errors,
    unique_value_conflict,
    validation_error,
)

MAX_STRING = 65_536
DATETIME_PROPS = {"createdate": "created", "lastmodifieddate": "updated", "hs_lastmodifieddate": "updated"}
# hs_additional_emails: secondary emails, ";"-separated; read-only through the API, set by imports (seed).
SECONDARY_EMAILS = "hs_additional_emails"
# hs_merged_object_ids: the ids merged into a contact, ";"-separated; set by merges only.
MERGED_IDS = "hs_merged_object_ids"
READ_ONLY = {"hs_object_id", SECONDARY_EMAILS, MERGED_IDS, *DATETIME_PROPS}
RESTORE_WINDOW_MS = 90 * 86_400_000  # archived contacts can be restored for 90 days (contacts API reference)
DEFAULT_LINK_PROPERTY = "salesforce_contact_id"
DEFAULT_GET_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
# Domains HubSpot rejects because their TLD is not in IANA's root zone (we do not ship the full list).
NON_IANA_TLDS = {
    "local",
    "localhost",
    "corp",
    "internal",
    "invalid",
    "test",
    "example",
    "lan",
    "home",
    "intranet",
}
_EMAIL = re.compile(r"^[^\s@\"]+@(?P<domain>[^\s@\"]+\.(?P<tld>[^\s@.\"]+))$")


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: UTC, millisecond precision, trailing Z."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def email_key(value: str) -> str:
    return value.strip().lower()


def email_is_valid(value: str) -> bool:
    match = _EMAIL.match(value.strip())
    if not match:
        return False
    tld = match["tld"].lower()
    labels = match["domain"].split(".")
    return tld.isalpha() and len(tld) >= 2 and tld not in NON_IANA_TLDS and all(labels)


def _definition(name: str, label: str, ptype: str = "string", field_type: str = "text", **over: Any) -> dict:
    return {
        "name": name,
        "label": label,
        "type": ptype,
        "fieldType": field_type,
        "description": "",
        "groupName": "contactinformation",
        "options": [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "hubspotDefined": True,
        "formField": True,
        "archived": False,
        "modificationMetadata": {"archivable": True, "readOnlyDefinition": True, "readOnlyValue": False},
        **over,
    }


def default_properties(link_property: str = DEFAULT_LINK_PROPERTY) -> dict[str, dict]:
    """HubSpot's contact properties we model, plus the sync's unique link property (none when empty)."""
    read_only = {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": True}
    defs = [
        _definition("email", "Email"),
        _definition("firstname", "First Name"),
        _definition("lastname", "Last Name"),
        _definition("phone", "Phone Number", field_type="phonenumber"),
        _definition("mobilephone", "Mobile Phone Number", field_type="phonenumber"),
        _definition("jobtitle", "Job Title"),
        _definition("company", "Company Name"),
        _definition("hs_object_id", "Record ID", "number", "number", modificationMetadata=read_only),
        _definition("createdate", "Create Date", "datetime", "date", modificationMetadata=read_only),
        _definition("lastmodifieddate", "Last Modified Date", "datetime", "date", modificationMetadata=read_only),
        _definition(
            "hs_lastmodifieddate",
            "Object last modified date/time",
            "datetime",
            "date",
            modificationMetadata=read_only,
        ),
        _definition(
            SECONDARY_EMAILS, "Additional email addresses", field_type="textarea", modificationMetadata=read_only
        ),
        _definition(MERGED_IDS, "Merged Contact IDs", "enumeration", "checkbox", modificationMetadata=read_only),
    ]
    if link_property:
        defs.append(
            _definition(
                link_property,
                "Salesforce Contact ID",
                hasUniqueValue=True,
                hubspotDefined=False,
                groupName="salesforceinformation",
                modificationMetadata={"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
            )
        )
    return {d["name"]: d for d in defs}


@dataclass(slots=True)
class Contact:
    id: int
    props: dict[str, str]
    created: int  # epoch ms
    updated: int  # epoch ms
    archived: bool = False
    archived_at: int | None = None

    def value(self, name: str) -> str | None:
        """A property as HubSpot reports it (computed ones included)."""
        if name == "hs_object_id":
            return str(self.id)
        if name in DATETIME_PROPS:
            return iso_ms(self.created if DATETIME_PROPS[name] == "created" else self.updated)
        return self.props.get(name)

    def emails(self) -> list[str]:
        """Primary and secondary emails, normalised: every one finds this contact in email look-ups."""
        secondary = (self.props.get(SECONDARY_EMAILS) or "").split(";")
        return [email_key(e) for e in [self.props.get("email") or "", *secondary] if e.strip()]

    def to_json(self, names: Iterable[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(self.id),
            "properties": {name: self.value(name) for name in names},
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
            "archived": self.archived,
        }
        if self.archived_at is not None:
            body["archivedAt"] = iso_ms(self.archived_at)
        return body


@dataclass
class Claims:
    """Unique (property, value) pairs taken by earlier inputs of the batch being validated."""

    taken: set[tuple[str, str]] = field(default_factory=set)


class ContactStore:
    """All contacts of one sandbox portal."""

    def __init__(self, link_property: str = DEFAULT_LINK_PROPERTY) -> None:
        self.link_property = link_property
        self.properties: dict[str, dict] = {}
        self.index_delay_ms = 0  # search sees a write only this long after it (GET and batch read at once)
        self.conflict_shape = "CONFLICT"  # the 409 for a taken email: CONFLICT or OBJECT_ALREADY_EXISTS (newer)
        self.reset()

    def reset(self) -> None:
        self.properties = default_properties(self.link_property)
        self.unindexed: dict[int, int] = {}  # contact id -> sandbox ms from which search sees its last write
        self.contacts: dict[int, Contact] = {}
        self.active_ids: list[int] = []
        self.archived_ids: list[int] = []
        self.by_email: dict[str, int] = {}
        self.by_unique: dict[str, dict[str, int]] = {n: {} for n, d in self.properties.items() if d["hasUniqueValue"]}
        self.by_updated: list[tuple[int, int]] = []
        self.by_created: list[tuple[int, int]] = []
        self.next_id = 1001
        self.merged_into: dict[int, int] = {}  # merged-away id -> the id of the record it now reads as
        self.blocklist: set[str] = set()  # emails of GDPR-deleted contacts: imports (seed) refuse them
        # Never goes back, not even on reset: search caches key on it.
        self.version = getattr(self, "version", 0) + 1

    # ---- lookups ---------------------------------------------------------------------------------
    def unique_properties(self) -> set[str]:
        return {"email", *self.by_unique}

    def find(self, value: str, id_property: str | None = None, archived: bool = False) -> Contact | None:
        """Find by record id, or by `idProperty` (email or a unique property)."""
        if id_property in (None, "", "hs_object_id"):
            key = int(value) if str(value).isdigit() else -1
            contact = self.contacts.get(self.merged_into.get(key, key))
        elif id_property == "email":
            contact = self.contacts.get(self.by_email.get(email_key(value), -1))
        elif id_property in self.by_unique:
            contact = self.contacts.get(self.by_unique[id_property].get(str(value), -1))
        else:
            raise validation_error(
                f"Property {id_property} is not a unique identifier property", idProperty=id_property
            )
        if contact is None or contact.archived != archived:
            return None
        return contact

    # ---- validation ------------------------------------------------------------------------------
    def validate(self, props: dict[str, Any], target: Contact | None, claims: Claims | None = None) -> dict[str, str]:
        """Check and normalise property values for a create (target None) or an update of `target`."""
        if not isinstance(props, dict):
            raise validation_error("properties must be an object")
        problems: list[dict[str, Any]] = []
        clean: dict[str, str] = {}
        for name, raw in props.items():
            if name not in self.properties:
                msg = f'Property "{name}" does not exist'
                problems.append({"message": msg, "error": "PROPERTY_DOESNT_EXIST", "name": name})
                continue
            if name in READ_ONLY:
                msg = f'"{name}" is a read only property; its value cannot be set.'
                problems.append({"message": msg, "error": "READ_ONLY_VALUE", "name": name})
                continue
            value = "" if raw is None else str(raw)
            if len(value) > MAX_STRING:
                msg = f"{name} value is longer than {MAX_STRING} characters"
                problems.append({"message": msg, "error": "INVALID_STRING_LENGTH", "name": name})
                continue
            if name == "email" and value:
                if not email_is_valid(value):
                    problems.append(
                        {
                            "message": f"Email address {value} is invalid",
                            "error": "INVALID_EMAIL",
                            "name": "email",
                        }
                    )
                    continue
                value = email_key(value)
            options = self._options(name)
            refused = [v for v in value.split(";") if v and v not in options] if options is not None else []
            if refused:
                problems.append(invalid_option(name, refused[0], options or []))
                continue
            clean[name] = value
        if problems:
            raise property_errors(problems)
        self._check_unique(clean, target, claims)
        return clean

    def _options(self, name: str) -> list[str] | None:
        """An enumeration property's option values (a multi-checkbox value is ";"-separated); None otherwise."""
        definition = self.properties[name]
        if definition["type"] != "enumeration":
            return None
        return [str(option.get("value")) for option in definition.get("options") or []]

    def _check_unique(self, clean: dict[str, str], target: Contact | None, claims: Claims | None) -> None:
        own = target.id if target else None
        values = [("email", clean["email"], self.by_email)] if clean.get("email") else []
        values += [(prop, clean[prop], index) for prop, index in self.by_unique.items() if clean.get(prop)]
        for prop, value, index in values:
            holder = index.get(value)
            if holder is not None and holder != own:
                if prop == "email":
                    raise contact_exists(holder, self.conflict_shape)
                raise unique_value_conflict(prop, value, holder)
            if claims is not None:
                if (prop, value) in claims.taken:
                    raise validation_error(f"Duplicate {prop} value in batch input: {value}", propertyName=prop)
                claims.taken.add((prop, value))

    # ---- writes ----------------------------------------------------------------------------------
    def create(self, clean: dict[str, str], now_ms: int) -> Contact:
        contact = Contact(self.next_id, {}, now_ms, now_ms)
        self.next_id += 1
        self.contacts[contact.id] = contact
        self.active_ids.append(contact.id)  # ids only grow, so the list stays sorted
        bisect.insort(self.by_created, (contact.created, contact.id))
        bisect.insort(self.by_updated, (contact.updated, contact.id))
        self._set_props(contact, clean)
        self._written(contact, now_ms)
        return contact

    def update(self, contact: Contact, clean: dict[str, str], now_ms: int) -> Contact:
        self._remove_sorted(self.by_updated, (contact.updated, contact.id))
        contact.updated = now_ms
        bisect.insort(self.by_updated, (contact.updated, contact.id))
        self._set_props(contact, clean)
        self._written(contact, now_ms)
        return contact

    def _written(self, contact: Contact, now_ms: int) -> None:
        if self.index_delay_ms:
            self.unindexed[contact.id] = now_ms + self.index_delay_ms
        self.version += 1

    def settle_index(self, now_ms: int) -> set[int]:
        """Ids whose last write search cannot see yet; writes whose delay has passed become visible."""
        due = [cid for cid, visible_at in self.unindexed.items() if visible_at <= now_ms]
        for cid in due:
            del self.unindexed[cid]
        if due:
            self.version += 1  # what search sees changed: cached results are stale
        return set(self.unindexed)

    def archive(self, contact: Contact, now_ms: int) -> None:
        self._unindex(contact, contact.props)
        self._remove_sorted(self.by_updated, (contact.updated, contact.id))
        self._remove_sorted(self.by_created, (contact.created, contact.id))
        self._remove_sorted(self.active_ids, contact.id)
        bisect.insort(self.archived_ids, contact.id)
        contact.archived = True
        contact.archived_at = now_ms
        contact.updated = now_ms
        self.version += 1

    # ---- identity changes: merge, GDPR delete, restore -------------------------------------------
    def merge(self, primary: Contact, secondary: Contact, now_ms: int) -> Contact:
        """Merge two live contacts into a NEW record, as HubSpot does since it changed merges (developer
        changelog "Updated merge functionality for contacts and companies"): both old ids then read as the
        new record; the primary's current values win and a value only the secondary has is kept; the
        primary's email stays and every other email of the two becomes an additional email (knowledge base
        "Merge records"); hs_merged_object_ids lists every id merged in so far; createdate is the older
        record's (a HubSpot partner's account of the new-id merge)."""
        kept_email = primary.props.get("email") or secondary.props.get("email") or ""
        others = [e for e in dict.fromkeys([*primary.emails(), *secondary.emails()]) if e != email_key(kept_email)]
        merged_ids = {int(i) for c in (primary, secondary) for i in _split(c.props.get(MERGED_IDS))}
        merged_ids |= {primary.id, secondary.id}
        props = {
            **secondary.props,
            **primary.props,
            "email": kept_email,
            SECONDARY_EMAILS: ";".join(others),
            MERGED_IDS: ";".join(str(i) for i in sorted(merged_ids)),
        }
        for old in (primary, secondary):
            self._drop(old)
        merged = self.create(props, now_ms)
        self._remove_sorted(self.by_created, (merged.created, merged.id))
        merged.created = min(primary.created, secondary.created)
        bisect.insort(self.by_created, (merged.created, merged.id))
        for old_id, current in self.merged_into.items():
            if current in (primary.id, secondary.id):
                self.merged_into[old_id] = merged.id
        self.merged_into[primary.id] = self.merged_into[secondary.id] = merged.id
        return merged

    def purge(self, contact: Contact) -> None:
        """GDPR delete: the record goes for good (no archived copy, its merged-away ids stop resolving) and
        its emails join the blocklist (knowledge base "Perform a permanent delete")."""
        self.blocklist.update(contact.emails())
        self._drop(contact)
        self.merged_into = {old: current for old, current in self.merged_into.items() if current != contact.id}

    def block_email(self, value: str) -> None:
        """GDPR delete by an email no contact has: HubSpot blocklists it anyway (contacts API reference)."""
        self.blocklist.add(email_key(value))
        self.version += 1

    def restore(self, contact: Contact, now_ms: int) -> None:
        """Bring an archived contact back under its own id, as the UI's restore tool does (HubSpot has no API
        for it). Refused after 90 days, or while a live contact holds one of its emails or unique values
        (knowledge base "Restore deleted records"). The restore moves lastmodifieddate, as users report."""
        if not contact.archived:
            raise validation_error(f"Contact {contact.id} is not archived")
        if contact.archived_at is not None and now_ms - contact.archived_at > RESTORE_WINDOW_MS:
            raise validation_error(f"Contact {contact.id} was archived more than 90 days ago")
        self._check_unique({**contact.props, "email": email_key(contact.props.get("email", ""))}, None, None)
        taken = [e for e in contact.emails() if e in self.by_email]
        if taken:
            raise contact_exists(self.by_email[taken[0]])
        self._remove_sorted(self.archived_ids, contact.id)
        bisect.insort(self.active_ids, contact.id)
        contact.archived, contact.archived_at, contact.updated = False, None, now_ms
        bisect.insort(self.by_created, (contact.created, contact.id))
        bisect.insort(self.by_updated, (contact.updated, contact.id))
        self._set_props(contact, {})  # index its emails and unique values again
        self._written(contact, now_ms)

    def age(self, by_ms: int) -> int:
        """Move every contact's createdate, lastmodifieddate (hs_lastmodifieddate with it) and archive time
        `by_ms` into the past; the sorted indexes are rebuilt and search caches dropped. Returns the count."""
        for contact in self.contacts.values():
            contact.created -= by_ms
            contact.updated -= by_ms
            if contact.archived_at is not None:
                contact.archived_at -= by_ms
        self._rebuild_sorted()
        self.version += 1
        return len(self.contacts)

    def _drop(self, contact: Contact) -> None:
        """Remove a record and every index entry of it (merges and GDPR deletes leave nothing behind)."""
        if not contact.archived:
            self._unindex(contact, contact.props)
            self._remove_sorted(self.by_updated, (contact.updated, contact.id))
            self._remove_sorted(self.by_created, (contact.created, contact.id))
        self._remove_sorted(self.archived_ids if contact.archived else self.active_ids, contact.id)
        self.unindexed.pop(contact.id, None)
        del self.contacts[contact.id]
        self.version += 1

    def _set_props(self, contact: Contact, clean: dict[str, str]) -> None:
        self._unindex(contact, {k: v for k, v in contact.props.items() if k in clean})
        for name, value in clean.items():
            if value == "":
                contact.props.pop(name, None)
            else:
                contact.props[name] = value
        for email in contact.emails():
            self.by_email[email] = contact.id
        for prop, index in self.by_unique.items():
            if contact.props.get(prop):
                index[contact.props[prop]] = contact.id

    def _unindex(self, contact: Contact, props: dict[str, str]) -> None:
        for email in Contact(contact.id, props, 0, 0).emails():
            if self.by_email.get(email) == contact.id:
                del self.by_email[email]
        for prop, index in self.by_unique.items():
            if props.get(prop) and index.get(props[prop]) == contact.id:
                del index[props[prop]]

    @staticmethod
    def _remove_sorted(items: list, item: Any) -> None:
        pos = bisect.bisect_left(items, item)
        if pos < len(items) and items[pos] == item:
            items.pop(pos)

    # ---- property definitions --------------------------------------------------------------------
    def add_property(self, body: dict[str, Any], now_ms: int) -> dict:
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise validation_error(f"Missing required fields: {', '.join(missing)}")
        name = body["name"]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise validation_error(f"Property name {name} is invalid: use lowercase letters, digits and _")
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise validation_error(f"Unknown property type {body['type']}")
        if name in self.properties:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
        definition = _definition(
            name,
            body["label"],
            body["type"],
            body["fieldType"],
            description=body.get("description", ""),
            groupName=body["groupName"],
            options=body.get("options", []),
            hasUniqueValue=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            formField=bool(body.get("formField", False)),
            hubspotDefined=False,
            modificationMetadata={"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
            createdAt=iso_ms(now_ms),
            updatedAt=iso_ms(now_ms),
        )
        self.properties[name] = definition
        if definition["hasUniqueValue"]:
            self.by_unique[name] = {}
        return definition

    # ---- seeding ---------------------------------------------------------------------------------
    def seed(self, records: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
        """Insert records as a data import would: explicit timestamps, no format checks, uniqueness kept.

        The sorted indexes are rebuilt once at the end, so seeding 200k records is linear, not quadratic.
        """
        created, rejected = [], []
        for index, record in enumerate(records):
            props = {k: str(v) for k, v in (record.get("properties") or {}).items() if v is not None and v != ""}
            unknown = [k for k in props if k not in self.properties or (k in READ_ONLY and k != SECONDARY_EMAILS)]
            try:
                if unknown:
                    raise validation_error(f"Unknown or read-only properties: {unknown}")
                self._check_unique({**props, "email": email_key(props.get("email", ""))}, None, None)
                secondary = Contact(0, {SECONDARY_EMAILS: props.get(SECONDARY_EMAILS, "")}, 0, 0).emails()
                taken = [e for e in secondary if e in self.by_email]
                if taken:
                    raise contact_exists(self.by_email[taken[0]])
                blocked = [e for e in Contact(0, props, 0, 0).emails() if e in self.blocklist] if self.blocklist else []
                if blocked:
                    raise validation_error(f"{blocked[0]} was permanently deleted; imports cannot add it back")
            except HubSpotError as exc:
                rejected.append({"index": index, "reason": exc.message})
                continue
            updated = _seed_ms(record.get("updatedAt"), now_ms)
            contact = Contact(self.next_id, {}, min(_seed_ms(record.get("createdAt"), updated), updated), updated)
            self.next_id += 1
            self.contacts[contact.id] = contact
            self._set_props(contact, props)
            if record.get("archived"):
                self._unindex(contact, contact.props)
                contact.archived, contact.archived_at = True, updated
            created.append(str(contact.id))
        self._rebuild_sorted()
        self.version += 1
        return {"created": len(created), "ids": created, "rejected": rejected}

    def _rebuild_sorted(self) -> None:
        live = [c for c in self.contacts.values() if not c.archived]
        self.active_ids = sorted(c.id for c in live)
        self.archived_ids = sorted(c.id for c in self.contacts.values() if c.archived)
        self.by_created = sorted((c.created, c.id) for c in live)
        self.by_updated = sorted((c.updated, c.id) for c in live)


def _split(value: str | None) -> list[str]:
    """The parts of a ";"-separated multi-value property."""
    return [part for part in (value or "").split(";") if part.strip()]


def _seed_ms(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, int | float):
        return int(value)
    return to_ms(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
