"""Hand-made staged rows of both CRMs and sync-state snapshots, shared by the reconcile-side tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from include.sync_logic.mapping import load_mapping

MAPPING = load_mapping(Path(__file__).resolve().parents[4] / "include" / "mappings" / "contacts.yaml")
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")


def at(minutes: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def sf_row(sf_id: str, *, minute: int = 0, link: str | None = None, deleted: bool = False, **values) -> dict:
    row = {
        "Id": sf_id,
        "Email": None,
        "FirstName": None,
        "LastName": None,
        "Phone": None,
        "MobilePhone": None,
        "Title": None,
        "Account.Name": None,
        "HubSpot_Contact_Id__c": link,
        "SystemModstamp": at(minute),
        "LastModifiedDate": at(minute),
        "IsDeleted": deleted,
    }
    row.update(values)
    return row


def hs_row(hs_id: str, *, minute: int = 0, link: str | None = None, archived: bool = False, **values) -> dict:
    row = {
        "id": hs_id,
        "email": "",
        "firstname": "",
        "lastname": "",
        "phone": "",
        "mobilephone": "",
        "jobtitle": "",
        "company": "",
        "salesforce_contact_id": link,
        "lastmodifieddate": at(minute),
        "archived": archived,
    }
    row.update(values)
    return row


def frames(sf_rows: list[dict], hs_rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sf = pd.DataFrame(sf_rows, columns=list(sf_row("x")))
    hs = pd.DataFrame(hs_rows, columns=list(hs_row("x")))
    return sf, hs


def snapshot(sf_id: str, hs_id: str, **values) -> dict:
    """A sync-state row: the canonical values both sides last agreed on."""
    return {"salesforce_id": sf_id, "hubspot_id": hs_id, "field_values": json.dumps(values)}


# ANN_SF/ANN_HS below, as the sync state holds them once synced.
ANN_BASE = {
    "email": "ann@example.com",
    "firstname": "Ann",
    "lastname": "Lee",
    "phone": "+14155550100",
    "mobilephone": None,
    "title": None,
    "company": None,  # one-way, recorded once both CRMs hold it equal
}


ANN_SF = {"Email": "ann@example.com", "FirstName": "Ann", "LastName": "Lee", "Phone": "(415) 555-0100"}
ANN_HS = {"email": " Ann@Example.com", "firstname": "Ann", "lastname": "Lee", "phone": "+14155550100"}
