"""Per-record refusals sorted by whether sending the same data again can ever pass, and which fields they name.

A permanent refusal comes from the record's own data against the target's rules (a validation rule, field
security, a restricted picklist, a duplicate rule, a taken email): retrying it unchanged only spends calls
and keeps the contact's other fields from flowing, so it is parked until the contact's data changes. Anything
else (a locked row, an unprocessed bulk row, a code not listed here) stays transient and is retried.
Salesforce codes: SOAP API Developer Guide, StatusCode; HubSpot: the `error` of each property-values problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_sync.hooks.hs_errors import CONFLICTS, property_problems

# Salesforce statusCodes that name the record's data, not the moment it was sent.
SALESFORCE_PERMANENT = frozenset(
    {
        "DUPLICATES_DETECTED",
        "DUPLICATE_VALUE",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
    }
)
# Of those, the ones where leaving the named field(s) out lets the rest of the record save.
SALESFORCE_FIELD_VALUE = frozenset(
    {
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "STRING_TOO_LONG",
    }
)


@dataclass(frozen=True)
class Refusal:
    """One record's refusal: the CRM's code and text, whether it is permanent, and the fields it names
    (only when every error of the record names its fields and leaving them out may let the rest save)."""

    code: str
    message: str
    permanent: bool
    fields: tuple[str, ...] = ()


def salesforce_refusal(errors: Sequence[Mapping[str, Any]]) -> Refusal:
    """A failed SaveResult's `errors`: the first code, every message (a duplicate's matched ids added)."""
    codes = [str(e.get("statusCode") or "UNKNOWN") for e in errors] or ["UNKNOWN"]
    message = "; ".join(_salesforce_message(e) for e in errors)
    fields = [str(f) for e in errors for f in e.get("fields") or []]
    droppable = all(code in SALESFORCE_FIELD_VALUE for code in codes) and all(e.get("fields") for e in errors)
    return Refusal(
        code=codes[0],
        message=message,
        permanent=all(code in SALESFORCE_PERMANENT for code in codes),
        fields=tuple(dict.fromkeys(fields)) if droppable else (),
    )


def salesforce_bulk_refusal(code: str) -> bool:
    """Whether a Bulk API failedResults code (sf__Error's prefix) is permanent; Bulk names no fields."""
    return code in SALESFORCE_PERMANENT


def duplicate_ids(error: Mapping[str, Any]) -> list[str]:
    """The Salesforce ids a DUPLICATES_DETECTED error's duplicateResult matched (empty when it has none)."""
    result = error.get("duplicateResult") or {}
    return [
        str(record["record"]["Id"])
        for match in result.get("matchResults") or []
        for record in match.get("matchRecords") or []
        if (record.get("record") or {}).get("Id")
    ]


def _salesforce_message(error: Mapping[str, Any]) -> str:
    text = str(error.get("message") or "")
    if error.get("statusCode") != "DUPLICATES_DETECTED":
        return text
    rule = (error.get("duplicateResult") or {}).get("duplicateRule")
    ids = duplicate_ids(error)
    named = f"duplicate rule {rule}" if rule else "a duplicate rule"
    matches = f"matches Salesforce {', '.join(ids)}" if ids else "matched records not named (Bulk API)"
    return f"{text} ({named}; {matches})"


def hubspot_refusal(category: str | None, message: str | None) -> Refusal:
    """A record-level HubSpot error: conflicts (either shape) and invalid property values are permanent; the
    properties a property-values message names can be left out (a conflict cannot: it is the record's identity)."""
    code = category or "UNKNOWN"
    if code in CONFLICTS:
        return Refusal(code, message or "", permanent=True)
    problems = property_problems(message)
    if code == "VALIDATION_ERROR" and problems:
        names = [str(p["name"]) for p in problems if p.get("name")]
        return Refusal(
            code,
            message or "",
            permanent=True,
            fields=tuple(dict.fromkeys(names)) if len(names) == len(problems) else (),
        )
    return Refusal(code, message or "", permanent=False)
