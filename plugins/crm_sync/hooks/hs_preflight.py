"""What a HubSpot portal needs before the sync can run, and the exact fix for each gap (one sentence each).

Scopes are private-app scopes (HubSpot's scopes reference): reading and writing contacts, reading
property definitions, and writing them only to let the preflight create the link property. The link
property must require unique values (`hasUniqueValue`): upserts by a property without them are refused.
"""

from __future__ import annotations

from typing import Any

READ_CONTACTS = "crm.objects.contacts.read"
WRITE_CONTACTS = "crm.objects.contacts.write"
READ_SCHEMAS = "crm.schemas.contacts.read"
WRITE_SCHEMAS = "crm.schemas.contacts.write"
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"  # private app tokens; needs no scope

_SCOPES_UI = "HubSpot > Settings > Integrations > Private Apps > (the sync's app) > Scopes"
_PROPERTIES_UI = "HubSpot > Settings > Properties > Contact properties > Create property"


def scope_fix(scope: str) -> str:
    return f"The HubSpot private app token lacks the scope {scope}: tick it under {_SCOPES_UI} and commit the change."


def missing_property_fix(name: str) -> str:
    return (
        f"HubSpot has no contact property {name!r} and the token may not create it: create it under "
        f"{_PROPERTIES_UI} (field type single-line text, internal name {name}, 'Require unique values for this "
        f"property' ticked), or add the scope {WRITE_SCHEMAS} so the preflight creates it."
    )


def not_unique_fix(name: str) -> str:
    return (
        f"The HubSpot contact property {name!r} does not require unique values, so HubSpot refuses upserts by it: "
        f"create a single-line text property with 'Require unique values for this property' ticked under "
        f"{_PROPERTIES_UI} and set link.hubspot in the mapping to its internal name."
    )


def link_property_definition(name: str) -> dict[str, Any]:
    """The property the preflight creates: text, unique, holding the Salesforce Contact Id."""
    return {
        "name": name,
        "label": "Salesforce Contact ID",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "hasUniqueValue": True,
        "description": "Salesforce Contact Id of the linked contact (written by the CRM sync).",
    }
