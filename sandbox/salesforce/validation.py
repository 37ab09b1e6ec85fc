"""Salesforce's own save-time checks on Contact/Account field values, with the real error codes and
message texts: INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE, REQUIRED_FIELD_MISSING, STRING_TOO_LONG,
INVALID_EMAIL_ADDRESS, MALFORMED_ID. Uniqueness (DUPLICATE_VALUE) needs the data, so the store does it.

As in Salesforce, leading/trailing white space is trimmed and an empty string stores as null, so ""
for LastName is a missing required field.
All field-level problems of one record are reported together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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

    def as_result(self) -> dict:
        """Shape used inside SaveResult/UpsertResult/DeleteResult `errors`."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_rest(self) -> dict:
        """Shape of a top-level REST error body element."""
        return {"message": self.message, "errorCode": self.status_code, "fields": self.fields}


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
