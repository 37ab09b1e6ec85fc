"""Salesforce's own save-time checks on Contact/Account field values, with the real error codes and
message texts: INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE, REQUIRED_FIELD_MISSING, STRING_TOO_LONG,
INVALID_EMAIL_ADDRESS, MALFORMED_ID. Uniqueness (DUPLICATE_VALUE) needs the data, so the store does it.
The org's own rules, set through the admin API, come after those checks (`OrgRules`): validation rules
(FIELD_CUSTOM_VALIDATION_EXCEPTION) and duplicate rules (DUPLICATES_DETECTED).

As in Salesforce, leading/trailing white space is trimmed and an empty string stores as null, so ""
for LastName is a missing required field.
All field-level problems of one record are reported together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.schema import ObjectDef

# Salesforce's documented email syntax: local part of letters, digits and !#$%&'*/=?^_+-`{|}~ with
# dots between (not first or last), an @, then a dotted domain of letters, digits and hyphens.
_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*/=?^_+\-`{|}~]+"
EMAIL_RE = re.compile(rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}")


@dataclass
class RecordError:
    """One entry of a Salesforce `errors` array."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)
    duplicate_result: dict[str, Any] | None = None  # a DuplicateError's matches (DUPLICATES_DETECTED only)

    def as_result(self) -> dict:
        """Shape used inside SaveResult/UpsertResult/DeleteResult `errors`."""
        result = {"statusCode": self.status_code, "message": self.message, "fields": self.fields}
        return {**result, "duplicateResult": self.duplicate_result} if self.duplicate_result else result

    def as_rest(self) -> dict:
        """Shape of a top-level REST error body element."""
        body = {"message": self.message, "errorCode": self.status_code, "fields": self.fields}
        return {"duplicateResult": self.duplicate_result, **body} if self.duplicate_result else body


class RecordFailed(Exception):
    """A record could not be saved; carries every error found for it."""

    def __init__(self, errors: list[RecordError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def clean_values(obj: ObjectDef, values: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Validate client-supplied field values and return them under canonical names, "" as None.

    Raises RecordFailed with all errors found.
    """
    cleaned: dict[str, Any] = {}
    errors: list[RecordError] = []
    for name, raw in values.items():
        if name == "attributes":
            continue
        fdef = obj.field(name)
        if fdef is None:
            raise RecordFailed([RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")])
        writable = fdef.createable if creating else fdef.updateable
        if not writable:
            errors.append(
                RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {fdef.name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.",
                    [fdef.name],
                )
            )
            continue
        if isinstance(raw, dict | list):
            raise RecordFailed(
                [
                    RecordError(
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of string from "
                        f"{'START_OBJECT' if isinstance(raw, dict) else 'START_ARRAY'} value for field "
                        f"{fdef.name}",
                    )
                ]
            )
        value = None if raw is None else (str(raw).lower() if isinstance(raw, bool) else str(raw).strip())
        if value == "":
            value = None
        if value is not None and fdef.type == "reference":
            normalized = normalize_id(value)
            if normalized is None:
                errors.append(
                    RecordError("MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {value}", [fdef.name])
                )
                continue
            value = normalized
        if value is not None and fdef.length and len(value) > fdef.length:
            errors.append(
                RecordError(
                    "STRING_TOO_LONG",
                    f"{fdef.label}: data value too large: {value} (max length={fdef.length})",
                    [fdef.name],
                )
            )
            continue
        if value is not None and fdef.type == "email" and not EMAIL_RE.fullmatch(value):
            errors.append(
                RecordError("INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {value}", [fdef.name])
            )
            continue
        cleaned[fdef.name] = value
    failed = {name for error in errors for name in error.fields}
    missing = [
        f.name
        for f in obj.fields
        if f.required and f.name not in failed and (creating or f.name in cleaned) and cleaned.get(f.name) is None
    ]
    if missing:
        errors.insert(
            0, RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        )
    if errors:
        raise RecordFailed(errors)
    return cleaned


# ---- the org's own rules (admin-configured) ---------------------------------------------------------------

DUPLICATE_HEADER = "Sforce-Duplicate-Rule-Header"


def header_allows_save(value: str | None) -> bool:
    """`allowSave=true` in a Sforce-Duplicate-Rule-Header (fields split by ";" or ","); absent: false,
    the documented default for every field of the header."""
    for part in re.split(r"[;,]", value or ""):
        name, _, setting = part.partition("=")
        if name.strip().lower() == "allowsave":
            return setting.strip().lower() == "true"
    return False


@dataclass(frozen=True)
class DuplicateRule:
    """A Contact duplicate rule with an exact, case-insensitive matching rule on `match_fields`.

    action "allow": Allow with Alert, so a save goes through only when the caller sends allowSave=true
    (REST, Composite, sObject Collections); "block": Block, whatever the caller sends. Bulk API ingest
    jobs never carry the header, so an alert-only rule blocks their rows too.
    """

    name: str
    match_fields: tuple[str, ...] = ("Email",)
    action: Literal["allow", "block"] = "allow"
    message: str = "Use one of these records?"
    on_update: bool = True

    @classmethod
    def from_admin(cls, body: dict[str, Any]) -> DuplicateRule:
        action = body.get("action", "allow")
        if action not in ("allow", "block"):
            raise ValueError("a duplicate rule's action is 'allow' (with alert) or 'block'")
        fields = tuple(body.get("match_fields") or ("Email",))
        return cls(
            name=str(body["name"]),
            match_fields=fields,
            action=action,
            message=str(body.get("message") or cls.message),
            on_update=bool(body.get("on_update", True)),
        )


@dataclass(frozen=True)
class ValidationRule:
    """A Contact validation rule refusing `field` equal (case-insensitively) to `refused_value`.

    The error shows at `field` (named in the error's `fields`) unless `at_top` (Top of Page: `fields` empty).
    """

    name: str
    field: str
    refused_value: str
    message: str
    at_top: bool = False

    @classmethod
    def from_admin(cls, body: dict[str, Any]) -> ValidationRule:
        return cls(
            name=str(body["name"]),
            field=str(body["field"]),
            refused_value=str(body["refused_value"]),
            message=str(body.get("message") or f"{body['field']} must not be {body['refused_value']}"),
            at_top=bool(body.get("at_top", False)),
        )


@dataclass
class OrgRules:
    """The org's validation and duplicate rules on Contact, run after the system checks of a save."""

    duplicate_rules: list[DuplicateRule] = field(default_factory=list)
    validation_rules: list[ValidationRule] = field(default_factory=list)

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Admin API: `{"duplicate_rules": [...], "validation_rules": [...]}` replaces the given lists."""
        if "duplicate_rules" in body:
            self.duplicate_rules = [DuplicateRule.from_admin(rule) for rule in body["duplicate_rules"]]
        if "validation_rules" in body:
            self.validation_rules = [ValidationRule.from_admin(rule) for rule in body["validation_rules"]]
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return {
            "duplicate_rules": [
                rule.__dict__ | {"match_fields": list(rule.match_fields)} for rule in self.duplicate_rules
            ],
            "validation_rules": [rule.__dict__ for rule in self.validation_rules],
        }

    def check(
        self,
        row: dict[str, Any],
        *,
        creating: bool,
        allow_save: bool,
        matches: Callable[[DuplicateRule, dict[str, Any]], Iterable[str]],
    ) -> None:
        """Raise RecordFailed when a validation rule fires (every one that does), else when a duplicate rule
        finds matches (`matches(rule, row)`: the ids of other live Contacts equal on the rule's fields)."""
        failed = [rule for rule in self.validation_rules if _equal(row.get(rule.field), rule.refused_value)]
        if failed:
            raise RecordFailed(
                [
                    RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [] if rule.at_top else [rule.field])
                    for rule in failed
                ]
            )
        for rule in self.duplicate_rules:
            if not creating and not rule.on_update:
                continue
            if rule.action == "allow" and allow_save:
                continue
            if any(row.get(name) is None for name in rule.match_fields):
                continue
            found = list(matches(rule, row))
            if found:
                raise RecordFailed([_duplicate_error(rule, found)])


def _equal(value: Any, refused: str) -> bool:
    return value is not None and str(value).strip().casefold() == refused.strip().casefold()


def _duplicate_error(rule: DuplicateRule, ids: list[str]) -> RecordError:
    """DUPLICATES_DETECTED with the DuplicateResult Salesforce attaches (REST and SOAP): the rule, whether the
    caller may override it, and per matching rule the matched records' ids (includeRecordDetails=false)."""
    match_records = [
        {
            "additionalInformation": [],
            "fieldDiffs": [],
            "matchConfidence": 100.0,
            "record": {"attributes": {"type": "Contact", "url": f"/services/data/v66.0/sobjects/Contact/{i}"}, "Id": i},
        }
        for i in ids
    ]
    result = {
        "allowSave": rule.action == "allow",
        "duplicateRule": rule.name,
        "duplicateRuleEntityType": "Contact",
        "errorMessage": rule.message,
        "matchResults": [
            {
                "entityType": "Contact",
                "errors": [],
                "matchEngine": "ExactMatchEngine",
                "matchRecords": match_records,
                "rule": f"{rule.name}_Match",
                "size": len(ids),
                "success": True,
            }
        ],
    }
    return RecordError("DUPLICATES_DETECTED", rule.message, [], result)
