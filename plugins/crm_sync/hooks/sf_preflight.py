"""What a Contact describe says about the link field, as sentences an admin can act on.

The sync upserts on the link field, so Salesforce must know it as an External ID (upsert refuses other
fields), Unique (else an upsert can match two contacts) and editable by the integration user. Describe
reports each (`externalId`, `unique`, `createable`/`updateable`; a field hidden by field-level security
is left out of describe altogether): REST API "sObject Describe", "API Field Properties".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FIELDS_PAGE = "Setup > Object Manager > Contact > Fields & Relationships"


def link_field_problems(described_fields: Sequence[Mapping[str, Any]], field: str) -> list[str]:
    """Each reason `field` cannot serve as the link, with its fix; empty when it can."""
    found = next((f for f in described_fields if str(f.get("name", "")).lower() == field.lower()), None)
    if found is None:
        return [
            f"Contact has no field {field} visible to the integration user. In {FIELDS_PAGE}, create Text(18) "
            f"field {field}, External ID, Unique (or, if it exists, give the integration user's permission set "
            "Edit access to it in Field-Level Security)."
        ]
    name = found["name"]
    problems = []
    if found.get("type") != "string":
        problems.append(
            f"Contact.{name} is a {found.get('type')} field, not Text. In {FIELDS_PAGE}, create Text(18) field "
            f"{name}, External ID, Unique, and point the mapping's link.salesforce at it."
        )
    if not found.get("externalId"):
        problems.append(
            f"Contact.{name} is not an External ID, so upserts on it are refused. In {FIELDS_PAGE}, edit {name} "
            "and tick External ID."
        )
    if not found.get("unique"):
        problems.append(
            f"Contact.{name} is not Unique, so an upsert can match two contacts. In {FIELDS_PAGE}, edit {name} "
            "and tick Unique (Do not allow duplicate values)."
        )
    if not (found.get("createable") and found.get("updateable")):
        problems.append(
            f"The integration user cannot edit Contact.{name}. In {FIELDS_PAGE} > {name} > Set Field-Level "
            "Security, give the integration user's profile or permission set Edit access."
        )
    return problems
