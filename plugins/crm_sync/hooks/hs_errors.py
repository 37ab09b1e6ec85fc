"""HubSpot's refusals sorted by what they are about: one record, or the whole call.

Only record-level errors (a bad value in one input, a duplicate or taken email, a missing target) may be narrowed down
by splitting a batch and end as per-record rejects. Everything else (a spent daily limit, a missing
scope, an upsert key that is not a unique property, a property that does not exist, a broken
connection) would fail every record the same way: it is raised for Airflow's retry, with a text that
names the fix and never a property value (HubSpot echoes emails in its messages).
Bodies as HubSpot documents them: `Property values were not valid: [{..., "error": "PROPERTY_DOESNT_EXIST",
"name": ...}]`, `Unable to perform update/upsert by non-unique 0-1 property <name> ...`, 403
`MISSING_SCOPES` with `errors[].context.requiredScopes`, 429 `policyName: DAILY`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

SCHEMA_ERRORS = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
# A taken email or unique value: category CONFLICT, or OBJECT_ALREADY_EXISTS in newer answers (same 409).
CONFLICTS = ("CONFLICT", "OBJECT_ALREADY_EXISTS")
_PROPERTY_VALUES = "Property values were not valid: "
_NON_UNIQUE = re.compile(r"Unable to perform update/upsert by non-unique \S+ property (?P<name>\S+)")


class HubSpotError(Exception):
    """A permanent HubSpot API error, with HubSpot's own status, category and message.

    The message is kept as an attribute, not in the text: HubSpot echoes property values (emails)
    in it, and exception text ends up in task logs. `detail` is a value-free explanation.
    """

    def __init__(self, status: int, category: str | None, message: str | None, detail: str = "") -> None:
        super().__init__(f"HubSpot API error: HTTP {status} {category}" + (f": {detail}" if detail else ""))
        self.status = status
        self.category = category
        self.message = message

    @property
    def record_level(self) -> bool:
        """True when the error is about an input of the call, so splitting a batch can isolate it."""
        return self.status in (400, 404, 409) and is_record_level(self.category, self.message)


class HubSpotDailyLimitReached(HubSpotError):
    """The account's daily request allowance is spent: nothing helps before it resets."""


def is_record_level(category: str | None, message: str | None) -> bool:
    """A per-input problem (bad value, duplicate, conflict, missing target), not a configuration one."""
    if category in (*CONFLICTS, "OBJECT_NOT_FOUND"):
        return True
    if category != "VALIDATION_ERROR" or not message:
        return False
    if message.startswith(_PROPERTY_VALUES):
        return not schema_problems(message)
    return message.startswith("Duplicate")


def property_problems(message: str | None) -> list[dict[str, Any]]:
    """The problems of a `Property values were not valid: [...]` message (each with error, name, message)."""
    if not message or not message.startswith(_PROPERTY_VALUES):
        return []
    try:
        problems = json.loads(message[len(_PROPERTY_VALUES) :])
    except ValueError:
        return []
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []


def schema_problems(message: str | None) -> list[str]:
    """`PROPERTY_DOESNT_EXIST name` / `READ_ONLY_VALUE name` entries of a property-values message."""
    return [f"{p.get('error')} {p.get('name')}" for p in property_problems(message) if p.get("error") in SCHEMA_ERRORS]


def configuration_detail(category: str | None, message: str | None, body: Mapping[str, Any]) -> str:
    """A value-free sentence naming the fix for a configuration error ('' when there is nothing to add)."""
    if category == "MISSING_SCOPES":
        scopes = sorted(
            {s for e in body.get("errors") or [] for s in ((e or {}).get("context") or {}).get("requiredScopes", [])}
        )
        return (
            f"the private app lacks scope(s) {', '.join(scopes) or '(not named)'}: add them in HubSpot under "
            "Settings > Integrations > Private Apps > the app > Scopes"
        )
    match = _NON_UNIQUE.search(message or "")
    if match:
        return (
            f"idProperty {match['name']} is not a unique property: use a contact property created with "
            "'Require unique values for this property' (hasUniqueValue)"
        )
    problems = schema_problems(message)
    if problems:
        return f"the mapping writes properties HubSpot refuses ({'; '.join(problems)}): create them or fix the mapping"
    return ""
