"""The field mapping between Salesforce Contacts and HubSpot contacts, loaded from YAML and validated.

Validation happens once, on load, so every later step can trust the config; an error names the
offending key path (``fields[3].direction: ...``) so a bad file is fixed in one look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SALESFORCE = "salesforce"
HUBSPOT = "hubspot"
SIDES = (SALESFORCE, HUBSPOT)
BOTH = "both"
SALESFORCE_TO_HUBSPOT = "salesforce_to_hubspot"
HUBSPOT_TO_SALESFORCE = "hubspot_to_salesforce"
DIRECTIONS = (BOTH, SALESFORCE_TO_HUBSPOT, HUBSPOT_TO_SALESFORCE)
CONFLICT_RULES = (
    "latest",
    SALESFORCE,
    HUBSPOT,
    "prefer_salesforce_unless_blank",
    "prefer_hubspot_unless_blank",
)
TRANSFORMS = ("strip", "lowercase", "title_case", "phone_e164", "truncate")
VALIDATORS = ("email",)

# Fields every extract selects besides the mapped ones (the staged frame shapes in the README).
SALESFORCE_SYSTEM_FIELDS = ("SystemModstamp", "LastModifiedDate", "IsDeleted")
HUBSPOT_SYSTEM_PROPERTIES = ("lastmodifieddate", "hs_object_id")
# Column names of the canonical frame besides the fields (see reconcile.to_canonical).
RESERVED_NAMES = frozenset({"sf_id", "hs_id", "modified_at", "deleted", "email_key", "changed", "present"})


class MappingError(ValueError):
    """A mapping file that cannot be used; the message starts with the offending key path."""


def other_side(side: str) -> str:
    """The CRM a value from ``side`` is written to."""
    return HUBSPOT if side == SALESFORCE else SALESFORCE


@dataclass(frozen=True)
class PhoneConfig:
    """How national phone numbers become E.164 (``+<country code><national number>``)."""

    default_country_code: str = "1"
    national_number_length: int = 10
    trunk_prefix: str = ""


@dataclass(frozen=True)
class LinkConfig:
    """The fields holding the counterpart's id on each side (unique keys for idempotent upserts)."""

    salesforce: str = "HubSpot_Contact_Id__c"
    hubspot: str = "salesforce_contact_id"

    def on(self, side: str) -> str:
        return self.salesforce if side == SALESFORCE else self.hubspot


@dataclass(frozen=True)
class FieldMapping:
    """One canonical field and how it lives on each side."""

    name: str
    salesforce: str
    hubspot: str
    direction: str = BOTH
    transforms: tuple[str, ...] = ()
    conflict: str | None = None
    validate: str | None = None
    max_length: Mapping[str, int] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    default_if_blank: Mapping[str, str] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()

    def on(self, side: str) -> str:
        """The field's name on ``side``."""
        return self.salesforce if side == SALESFORCE else self.hubspot

    def writes_to(self, side: str) -> bool:
        """Whether values of this field are ever written to ``side``."""
        if side in self.read_only:
            return False
        if side == SALESFORCE:
            return self.direction in (BOTH, HUBSPOT_TO_SALESFORCE)
        return self.direction in (BOTH, SALESFORCE_TO_HUBSPOT)

    @property
    def truncate_length(self) -> int | None:
        """With the ``truncate`` transform: the smallest max length of the two sides (else None)."""
        if "truncate" not in self.transforms or not self.max_length:
            return None
        return min(self.max_length.values())


@dataclass(frozen=True)
class MappingConfig:
    """A validated mapping: fields, link fields, match key, conflict default, delete propagation."""

    fields: tuple[FieldMapping, ...]
    match_on: str = "email"
    conflict_default: str = "latest"
    propagate_deletes: bool = False
    link: LinkConfig = field(default_factory=LinkConfig)
    phone: PhoneConfig = field(default_factory=PhoneConfig)

    def field(self, name: str) -> FieldMapping:
        """The field with canonical ``name``."""
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def match_field(self) -> FieldMapping:
        return self.field(self.match_on)

    def conflict_rule(self, item: FieldMapping) -> str:
        return item.conflict or self.conflict_default

    @property
    def salesforce_fields(self) -> list[str]:
        """The SOQL select list: Id, mapped fields (relationship fields included), link, system fields."""
        names = ["Id", *(item.salesforce for item in self.fields), self.link.salesforce]
        return _unique([*names, *SALESFORCE_SYSTEM_FIELDS])

    @property
    def hubspot_properties(self) -> list[str]:
        """The HubSpot properties to read: mapped ones, the link, modification time and object id."""
        names = [*(item.hubspot for item in self.fields), self.link.hubspot]
        return _unique([*names, *HUBSPOT_SYSTEM_PROPERTIES])


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def load_mapping(path: str | Path) -> MappingConfig:
    """Read and validate a mapping YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"<file>: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise MappingError(f"<file>: cannot read {path}: {exc.strerror}") from exc
    return parse_mapping(raw)


def parse_mapping(raw: Any) -> MappingConfig:
    """Validate an already-parsed mapping document (a dict as YAML gives it)."""
    top = _mapping(raw, "<root>")
    _known_keys(
        top,
        "",
        {"version", "match_on", "conflict_default", "propagate_deletes", "link", "phone", "fields"},
    )
    if top.get("version", 1) != 1:
        raise MappingError("version: must be 1")
    conflict_default = _choice(top.get("conflict_default", "latest"), "conflict_default", CONFLICT_RULES)
    propagate = top.get("propagate_deletes", False)
    if not isinstance(propagate, bool):
        raise MappingError("propagate_deletes: must be true or false")
    link = _parse_link(top.get("link", {}))
    phone = _parse_phone(top.get("phone", {}))
    raw_fields = top.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise MappingError("fields: must be a non-empty list")
    fields = tuple(_parse_field(item, f"fields[{i}]") for i, item in enumerate(raw_fields))
    _check_unique(fields, link)
    match_on = _string(top.get("match_on", "email"), "match_on")
    if match_on not in {item.name for item in fields}:
        raise MappingError(f"match_on: {match_on!r} is not the name of a field")
    return MappingConfig(
        fields=fields,
        match_on=match_on,
        conflict_default=conflict_default,
        propagate_deletes=propagate,
        link=link,
        phone=phone,
    )


def _parse_link(raw: Any) -> LinkConfig:
    data = _mapping(raw, "link")
    _known_keys(data, "link", set(SIDES))
    defaults = LinkConfig()
    return LinkConfig(
        salesforce=_string(data.get(SALESFORCE, defaults.salesforce), "link.salesforce"),
        hubspot=_string(data.get(HUBSPOT, defaults.hubspot), "link.hubspot"),
    )


def _parse_phone(raw: Any) -> PhoneConfig:
    data = _mapping(raw, "phone")
    _known_keys(data, "phone", {"default_country_code", "national_number_length", "trunk_prefix"})
    defaults = PhoneConfig()
    code = str(data.get("default_country_code", defaults.default_country_code)).lstrip("+")
    if not code.isdigit() or not 1 <= len(code) <= 3:
        raise MappingError('phone.default_country_code: must be 1 to 3 digits, e.g. "1" or "44"')
    length = data.get("national_number_length", defaults.national_number_length)
    if not isinstance(length, int) or isinstance(length, bool) or not 4 <= length <= 14:
        raise MappingError("phone.national_number_length: must be an integer from 4 to 14")
    trunk = str(data.get("trunk_prefix", defaults.trunk_prefix) or "")
    if trunk and not trunk.isdigit():
        raise MappingError("phone.trunk_prefix: must be digits or empty")
    return PhoneConfig(default_country_code=code, national_number_length=length, trunk_prefix=trunk)


def _parse_field(raw: Any, path: str) -> FieldMapping:
    data = _mapping(raw, path)
    _known_keys(
        data,
        path,
        {
            "name",
            SALESFORCE,
            HUBSPOT,
            "direction",
            "transforms",
            "conflict",
            "validate",
            "max_length",
            "required",
            "default_if_blank",
            "read_only",
        },
    )
    for key in ("name", SALESFORCE, HUBSPOT):
        if key not in data:
            raise MappingError(f"{path}.{key}: required")
    name = _string(data["name"], f"{path}.name")
    if name in RESERVED_NAMES:
        raise MappingError(f"{path}.name: {name!r} is reserved (used by: {', '.join(sorted(RESERVED_NAMES))})")
    salesforce = _string(data[SALESFORCE], f"{path}.salesforce")
    hubspot = _string(data[HUBSPOT], f"{path}.hubspot")
    direction = _choice(data.get("direction", BOTH), f"{path}.direction", DIRECTIONS)
    transforms = _string_list(data.get("transforms", []), f"{path}.transforms", TRANSFORMS)
    conflict = data.get("conflict")
    if conflict is not None:
        conflict = _choice(conflict, f"{path}.conflict", CONFLICT_RULES)
    validate = data.get("validate")
    if validate is not None:
        validate = _choice(validate, f"{path}.validate", VALIDATORS)
    max_length = _side_map(data.get("max_length", {}), f"{path}.max_length", _positive_int)
    required = frozenset(_string_list(data.get("required", []), f"{path}.required", SIDES))
    defaults = _side_map(data.get("default_if_blank", {}), f"{path}.default_if_blank", _string)
    read_only = set(_string_list(data.get("read_only", []), f"{path}.read_only", SIDES))
    if "." in salesforce:
        # A relationship path such as Account.Name is readable through SOQL but not writable on the Contact.
        read_only.add(SALESFORCE)
        if direction != SALESFORCE_TO_HUBSPOT:
            raise MappingError(
                f"{path}.direction: {salesforce} is a relationship field, read-only on a Salesforce "
                f"Contact; use {SALESFORCE_TO_HUBSPOT}"
            )
    if "truncate" in transforms and not max_length:
        raise MappingError(f"{path}.transforms: truncate needs a max_length")
    if "truncate" in transforms and "phone_e164" in transforms:
        raise MappingError(f"{path}.transforms: a phone number is never truncated (drop truncate)")
    for side, value in defaults.items():
        limit = max_length.get(side)
        if limit is not None and len(value) > limit:
            raise MappingError(f"{path}.default_if_blank.{side}: longer than max_length ({limit})")
    return FieldMapping(
        name=name,
        salesforce=salesforce,
        hubspot=hubspot,
        direction=direction,
        transforms=tuple(transforms),
        conflict=conflict,
        validate=validate,
        max_length=max_length,
        required=required,
        default_if_blank=defaults,
        read_only=frozenset(read_only),
    )


def _check_unique(fields: tuple[FieldMapping, ...], link: LinkConfig) -> None:
    for attr in ("name", SALESFORCE, HUBSPOT):
        seen: dict[str, int] = {}
        for i, item in enumerate(fields):
            value = getattr(item, attr)
            if value in seen:
                raise MappingError(f"fields[{i}].{attr}: {value!r} already used by fields[{seen[value]}]")
            seen[value] = i
    for i, item in enumerate(fields):
        if item.salesforce == link.salesforce or item.hubspot == link.hubspot:
            raise MappingError(f"fields[{i}]: maps a link field; links are configured under link")


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{path}: must be a mapping")
    return value


def _known_keys(data: dict[str, Any], path: str, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            prefix = f"{path}." if path else ""
            raise MappingError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{path}: must be a non-empty string")
    return value


def _positive_int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MappingError(f"{path}: must be a positive integer")
    return value


def _choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MappingError(f"{path}: must be one of {', '.join(allowed)}")
    return value


def _string_list(value: Any, path: str, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(value, list):
        raise MappingError(f"{path}: must be a list")
    for i, item in enumerate(value):
        _choice(item, f"{path}[{i}]", allowed)
    return list(value)


def _side_map(value: Any, path: str, check: Callable[[Any, str], Any]) -> dict[str, Any]:
    data = _mapping(value, path)
    for key, item in data.items():
        if key not in SIDES:
            raise MappingError(f"{path}.{key}: unknown side (allowed: {', '.join(SIDES)})")
        check(item, f"{path}.{key}")
    return dict(data)
