"""The sObjects the sandbox models: Contact (standard fields the sync uses plus the link field) and a
small Account so Contact.Account.Name resolves. Lengths follow Salesforce's Contact field reference:
Email 80, FirstName 40, LastName 80, Phone/MobilePhone 40, Title 128. HubSpot_Contact_Id__c is the
project's custom field: Text(255) (the longest custom text field; HubSpot ids are short numbers),
External ID, Unique (case-insensitive, Salesforce's default for unique text).

The org's link field is process-wide configuration, read once at import from the environment the CLI
sets (`--salesforce-link-field`, `--salesforce-link-field-attributes`): another name, no such field
(an org where nobody created it), or a field that is not an External ID or not Unique.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from sandbox.salesforce import LINK_ATTRIBUTES_ENV, LINK_FIELD_ENV
from sandbox.salesforce.ids import ACCOUNT_PREFIX, CONTACT_PREFIX
from sandbox.salesforce.soql import ObjectInfo


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: str  # SOAP/describe type: id, reference, string, email, phone, boolean, datetime
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    unique: bool = False
    external_id: bool = False
    required: bool = False  # required on create (not nillable and no default)
    reference_to: str | None = None
    relationship_name: str | None = None

    def describe(self) -> dict:
        soap = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "boolean": "xsd:boolean",
            "datetime": "xsd:dateTime",
        }.get(self.type, "xsd:string")
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "byteLength": self.length * 3,
            "nillable": self.nillable,
            "unique": self.unique,
            "externalId": self.external_id,
            "createable": self.createable,
            "updateable": self.updateable,
            "filterable": True,
            "sortable": True,
            "idLookup": self.type == "id" or self.external_id or self.name == "Email",
            "custom": self.name.endswith("__c"),
            "caseSensitive": False,
            "defaultedOnCreate": self.type in ("boolean",) or not self.createable,
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship_name,
            "soapType": soap,
        }


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("IsDeleted", "Deleted", "boolean", nillable=False, createable=False, updateable=False),
        FieldDef("CreatedDate", "Created Date", "datetime", nillable=False, createable=False, updateable=False),
        FieldDef(
            "LastModifiedDate", "Last Modified Date", "datetime", nillable=False, createable=False, updateable=False
        ),
        FieldDef("SystemModstamp", "System Modstamp", "datetime", nillable=False, createable=False, updateable=False),
    ]


@dataclass(frozen=True)
class ObjectDef:
    name: str
    label: str
    key_prefix: str
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive lookup, as Salesforce resolves field names."""
        return self._by_lower_name.get(name.lower())

    @cached_property
    def _by_lower_name(self) -> dict[str, FieldDef]:
        return {f.name.lower(): f for f in self.fields}

    @cached_property
    def field_map(self) -> dict[str, FieldDef]:
        return {f.name: f for f in self.fields}

    def info(self) -> ObjectInfo:
        relationships = {
            f.relationship_name: (f.name, f.reference_to) for f in self.fields if f.relationship_name and f.reference_to
        }
        return ObjectInfo(self.name, {f.name: f.type for f in self.fields}, relationships)


ACCOUNT = ObjectDef(
    "Account",
    "Account",
    ACCOUNT_PREFIX,
    (
        FieldDef("Id", "Account ID", "id", 18, nillable=False, createable=False, updateable=False),
        FieldDef("Name", "Account Name", "string", 255, nillable=False, required=True),
        *_system_fields(),
    ),
)

DEFAULT_LINK_FIELD = "HubSpot_Contact_Id__c"
LINK_ATTRIBUTES = ("external_id", "unique")


def _link_fields() -> tuple[FieldDef, ...]:
    """The custom link field as configured: `LINK_FIELD_ENV` names it ("" = absent), `LINK_ATTRIBUTES_ENV`
    lists which of external_id / unique it has (default both)."""
    name = os.environ.get(LINK_FIELD_ENV, DEFAULT_LINK_FIELD)
    if not name:
        return ()
    attributes = set(filter(None, os.environ.get(LINK_ATTRIBUTES_ENV, ",".join(LINK_ATTRIBUTES)).split(",")))
    if attributes - set(LINK_ATTRIBUTES):
        raise ValueError(f"link field attributes must be among {LINK_ATTRIBUTES}, got {sorted(attributes)}")
    return (
        FieldDef(
            name,
            "HubSpot Contact Id",
            "string",
            255,
            unique="unique" in attributes,
            external_id="external_id" in attributes,
        ),
    )


CONTACT = ObjectDef(
    "Contact",
    "Contact",
    CONTACT_PREFIX,
    (
        FieldDef("Id", "Contact ID", "id", 18, nillable=False, createable=False, updateable=False),
        FieldDef("AccountId", "Account ID", "reference", 18, reference_to="Account", relationship_name="Account"),
        FieldDef(
            "MasterRecordId",
            "Master Record ID",
            "reference",
            18,
            createable=False,
            updateable=False,
            reference_to="Contact",
            relationship_name="MasterRecord",
        ),
        FieldDef("FirstName", "First Name", "string", 40),
        FieldDef("LastName", "Last Name", "string", 80, nillable=False, required=True),
        FieldDef("Name", "Full Name", "string", 121, nillable=False, createable=False, updateable=False),
        FieldDef("Email", "Email", "email", 80),
        FieldDef("Phone", "Business Phone", "phone", 40),
        FieldDef("MobilePhone", "Mobile Phone", "phone", 40),
        FieldDef("Title", "Title", "string", 128),
        *_link_fields(),
        *_system_fields(),
    ),
)

OBJECTS: dict[str, ObjectDef] = {"Contact": CONTACT, "Account": ACCOUNT}
LINK: FieldDef | None = next((f for f in CONTACT.fields if f.name.endswith("__c")), None)
OBJECT_INFOS: dict[str, ObjectInfo] = {name: obj.info() for name, obj in OBJECTS.items()}


def object_def(name: str) -> ObjectDef | None:
    lowered = name.lower()
    return next((obj for key, obj in OBJECTS.items() if key.lower() == lowered), None)
