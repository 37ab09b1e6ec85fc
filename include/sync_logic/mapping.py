"""The field mapping between Salesforce Contacts and HubSpot contacts, loaded from YAML and validated.

Validation (pydantic) happens once, on load, so every later step can trust the config; an error names
the offending key path (``fields[3].direction: ...``) so a bad file is fixed in one look.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from include.sync_logic.sides import Direction, Side


class ConflictRule(StrEnum):
    """How a field that both sides changed apart is settled.

    ``latest``: the record changed later wins (a three-way merge against the last synced values decides
    whether a side changed at all). The others name an owner, as HubSpot's own connector does: that
    side's value wins whenever the two differ (``prefer_*_unless_blank``: unless it is blank).
    """

    LATEST = "latest"
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"
    PREFER_SALESFORCE_UNLESS_BLANK = "prefer_salesforce_unless_blank"
    PREFER_HUBSPOT_UNLESS_BLANK = "prefer_hubspot_unless_blank"


class OnCounterpartDeleted(StrEnum):
    """What a contact does when its counterpart is deleted, archived or merged away in the other CRM.

    ``keep``: left alone, never re-created (the deletion is reported once). ``recreate``: written to the other
    CRM as a new contact. ``delete``: deleted too. A counterpart deleted for a privacy request (nothing of it
    remains) is never re-created, whatever this says.
    """

    KEEP = "keep"
    RECREATE = "recreate"
    DELETE = "delete"


class Transform(StrEnum):
    STRIP = "strip"
    LOWERCASE = "lowercase"
    TITLE_CASE = "title_case"
    PHONE_E164 = "phone_e164"
    TRUNCATE = "truncate"


class Validator(StrEnum):
    EMAIL = "email"


# Fields every extract selects besides the mapped ones (the staged frame shapes in the README).
SALESFORCE_SYSTEM_FIELDS = ("SystemModstamp", "LastModifiedDate", "IsDeleted")
HUBSPOT_SYSTEM_PROPERTIES = ("lastmodifieddate", "hs_object_id")
# Column names of the canonical frame besides the fields (see canonical.to_canonical).
RESERVED_NAMES = frozenset({"sf_id", "hs_id", "modified_at", "deleted", "email_key", "changed", "present"})


class MappingError(ValueError):
    """A mapping file that cannot be used; the message starts with the offending key path."""


def _problem(path: str, message: str) -> PydanticCustomError:
    """An error located below the model that raises it (``path`` is appended to the model's location)."""
    return PydanticCustomError("mapping", "{message}", {"path": path, "message": message})


def _one_of(kind: type[StrEnum]) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value not in {item.value for item in kind}:
            raise ValueError(f"must be one of {', '.join(item.value for item in kind)}")
        return value

    return BeforeValidator(check)


def _text(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _side_key(value: Any) -> Any:
    if value not in {side.value for side in Side}:
        raise ValueError(f"unknown side (allowed: {', '.join(Side)})")
    return value


def _positive(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("must be a positive integer")
    return value


Text = Annotated[str, BeforeValidator(_text)]
SideKey = Annotated[Side, BeforeValidator(_side_key)]
SideName = Annotated[Side, _one_of(Side)]
PositiveInt = Annotated[int, BeforeValidator(_positive)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class PhoneConfig(_Frozen):
    """How national phone numbers become E.164 (``+<country code><national number>``)."""

    default_country_code: str = "1"
    national_number_length: int = 10
    trunk_prefix: str = ""

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        code = str(data.get("default_country_code", "1")).lstrip("+")
        if not code.isdigit() or not 1 <= len(code) <= 3:
            raise _problem("default_country_code", 'must be 1 to 3 digits, e.g. "1" or "44"')
        length = data.get("national_number_length", 10)
        if not isinstance(length, int) or isinstance(length, bool) or not 4 <= length <= 14:
            raise _problem("national_number_length", "must be an integer from 4 to 14")
        trunk = str(data.get("trunk_prefix") or "")
        if trunk and not trunk.isdigit():
            raise _problem("trunk_prefix", "must be digits or empty")
        data.update(default_country_code=code, trunk_prefix=trunk)
        return data


class LinkConfig(_Frozen):
    """The fields holding the counterpart's id on each side (unique keys for idempotent upserts)."""

    salesforce: Text = "HubSpot_Contact_Id__c"
    hubspot: Text = "salesforce_contact_id"

    def on(self, side: Side) -> str:
        return self.salesforce if side == Side.SALESFORCE else self.hubspot


class FieldMapping(_Frozen):
    """One canonical field and how it lives on each side."""

    name: Text
    salesforce: Text
    hubspot: Text
    direction: Annotated[Direction, _one_of(Direction)] = Direction.BOTH
    transforms: tuple[Annotated[Transform, _one_of(Transform)], ...] = ()
    conflict: Annotated[ConflictRule, _one_of(ConflictRule)] | None = None
    validate_as: Annotated[Validator, _one_of(Validator)] | None = Field(None, alias="validate")
    max_length: dict[SideKey, PositiveInt] = Field(default_factory=dict)
    required: frozenset[SideName] = frozenset()
    default_if_blank: dict[SideKey, Text] = Field(default_factory=dict)
    read_only: frozenset[SideName] = frozenset()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _relationship_paths_are_read_only(cls, data: Any) -> Any:
        """A relationship path such as Account.Name is readable through SOQL but not writable on a Contact."""
        if not isinstance(data, dict) or "." not in str(data.get(Side.SALESFORCE, "")):
            return data
        if data.get("direction", Direction.BOTH) != Direction.SALESFORCE_TO_HUBSPOT:
            raise _problem(
                "direction",
                f"{data[Side.SALESFORCE]} is a relationship field, read-only on a Salesforce Contact; "
                f"use {Direction.SALESFORCE_TO_HUBSPOT}",
            )
        read_only = data.get("read_only", [])
        return {**data, "read_only": [*read_only, Side.SALESFORCE] if isinstance(read_only, list) else read_only}

    @model_validator(mode="after")
    def _consistent(self) -> FieldMapping:
        if self.name in RESERVED_NAMES:
            raise _problem("name", f"{self.name!r} is reserved (used by: {', '.join(sorted(RESERVED_NAMES))})")
        if Transform.TRUNCATE in self.transforms and not self.max_length:
            raise _problem("transforms", "truncate needs a max_length")
        if Transform.TRUNCATE in self.transforms and Transform.PHONE_E164 in self.transforms:
            raise _problem("transforms", "a phone number is never truncated (drop truncate)")
        for side, value in self.default_if_blank.items():
            limit = self.max_length.get(side)
            if limit is not None and len(value) > limit:
                raise _problem(f"default_if_blank.{side}", f"longer than max_length ({limit})")
        return self

    def on(self, side: Side) -> str:
        """The field's name on ``side``."""
        return self.salesforce if side == Side.SALESFORCE else self.hubspot

    def writes_to(self, side: Side) -> bool:
        """Whether values of this field are ever written to ``side``."""
        if side in self.read_only:
            return False
        if side == Side.SALESFORCE:
            return self.direction in (Direction.BOTH, Direction.HUBSPOT_TO_SALESFORCE)
        return self.direction in (Direction.BOTH, Direction.SALESFORCE_TO_HUBSPOT)

    @property
    def two_way(self) -> bool:
        """Whether both sides edit this field (the ones the three-way merge and the sync state cover)."""
        return self.writes_to(Side.SALESFORCE) and self.writes_to(Side.HUBSPOT)

    @property
    def truncate_length(self) -> int | None:
        """With the ``truncate`` transform: the smallest max length of the two sides (else None)."""
        if Transform.TRUNCATE not in self.transforms or not self.max_length:
            return None
        return min(self.max_length.values())


class MappingConfig(_Frozen):
    """A validated mapping: fields, link fields, match key, conflict default, delete propagation."""

    version: Annotated[Literal[1], BeforeValidator(lambda v: v if v == 1 else _raise("must be 1"))] = 1
    fields: tuple[FieldMapping, ...] = Field(min_length=1)
    match_on: Text = "email"
    conflict_default: Annotated[ConflictRule, _one_of(ConflictRule)] = ConflictRule.LATEST
    on_counterpart_deleted: Annotated[OnCounterpartDeleted, _one_of(OnCounterpartDeleted)] = OnCounterpartDeleted.KEEP
    # A contact merged away in one CRM whose counterpart stays separate: merge the counterpart into the survivor's
    # counterpart too. HubSpot only (its merge API is REST); Salesforce merges only through SOAP or Apex: reported.
    propagate_merges: bool = Field(False, strict=True)
    link: LinkConfig = Field(default_factory=LinkConfig)
    phone: PhoneConfig = Field(default_factory=PhoneConfig)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_propagate_deletes(cls, data: Any) -> Any:
        """Deprecated ``propagate_deletes``: true reads as ``on_counterpart_deleted: delete``, false as the default."""
        if not isinstance(data, dict) or "propagate_deletes" not in data:
            return data
        data = dict(data)
        propagate = data.pop("propagate_deletes")
        if not isinstance(propagate, bool):
            raise _problem("propagate_deletes", "must be true or false")
        implied = OnCounterpartDeleted.DELETE if propagate else OnCounterpartDeleted.KEEP
        given = data.setdefault("on_counterpart_deleted", implied.value)
        if propagate and given != implied:
            raise _problem("propagate_deletes", f"true contradicts on_counterpart_deleted: {given}")
        return data

    @property
    def propagate_deletes(self) -> bool:
        """Deleting a contact deletes its counterpart (``on_counterpart_deleted: delete``)."""
        return self.on_counterpart_deleted == OnCounterpartDeleted.DELETE

    @model_validator(mode="after")
    def _consistent(self) -> MappingConfig:
        for attr in ("name", Side.SALESFORCE, Side.HUBSPOT):
            seen: dict[str, int] = {}
            for i, item in enumerate(self.fields):
                value = getattr(item, attr)
                if value in seen:
                    raise _problem(f"fields[{i}].{attr}", f"{value!r} already used by fields[{seen[value]}]")
                seen[value] = i
        for i, item in enumerate(self.fields):
            if item.salesforce == self.link.salesforce or item.hubspot == self.link.hubspot:
                raise _problem(f"fields[{i}]", "maps a link field; links are configured under link")
        if self.match_on not in {item.name for item in self.fields}:
            raise _problem("match_on", f"{self.match_on!r} is not the name of a field")
        return self

    def field(self, name: str) -> FieldMapping:
        """The field with canonical ``name``."""
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def match_field(self) -> FieldMapping:
        return self.field(self.match_on)

    def conflict_rule(self, item: FieldMapping) -> ConflictRule:
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

    def fields_on(self, side: Side) -> list[str]:
        """What a read of `side` selects: `salesforce_fields` or `hubspot_properties`."""
        return self.salesforce_fields if side is Side.SALESFORCE else self.hubspot_properties


def _raise(message: str) -> Any:
    raise ValueError(message)


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
    if raw is not None and not isinstance(raw, dict):
        raise MappingError("<root>: must be a mapping")
    try:
        return MappingConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise MappingError(_describe(exc.errors()[0])) from None


# Messages for pydantic's own error types, in the words the rest of the file uses.
_TYPE_MESSAGES = {
    "missing": "required",
    "string_type": "must be a non-empty string",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "tuple_type": "must be a list",
    "frozen_set_type": "must be a list",
    "too_short": "must be a non-empty list",
}
_MODELS_AT: dict[tuple[str, ...], type[BaseModel]] = {
    (): MappingConfig,
    ("link",): LinkConfig,
    ("phone",): PhoneConfig,
    ("fields",): FieldMapping,
}


def _describe(error: Any) -> str:
    """``fields[3].direction: must be one of ...`` from one pydantic error."""
    loc = [part for part in error["loc"] if part != "[key]"]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error["type"] == "mapping":
        context = error["ctx"]
        sub = context["path"]
        path = f"{path}.{sub}" if path and not sub.startswith("fields[") else sub
        return f"{path}: {context['message']}"
    if error["type"] == "extra_forbidden":
        model = _MODELS_AT.get(tuple(part for part in loc[:-1] if isinstance(part, str)))
        allowed = sorted(f.alias or name for name, f in model.model_fields.items()) if model else []
        return f"{path}: unknown key (allowed: {', '.join(allowed)})"
    message = _TYPE_MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
    return f"{path or '<root>'}: {message}"
