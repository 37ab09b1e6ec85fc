"""People editing contacts in the sandboxes at a chosen instant, through the CRMs' own REST APIs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import requests

from sandbox.testing import SandboxProcess


def at(sandbox: SandboxProcess, moment: datetime) -> None:
    """Set the sandboxes' shared (frozen) clock: what is written next is stamped with ``moment``."""
    sandbox.admin("hubspot", "POST", "clock", {"set": moment.isoformat()})


def _salesforce_session(sandbox: SandboxProcess) -> tuple[requests.Session, str]:
    conn = json.loads(sandbox.env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    extra = conn.get("extra", {})
    extra = json.loads(extra) if isinstance(extra, str) else extra
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_bundle
    token = session.post(
        f"{sandbox.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": extra["consumer_key"],
            "client_secret": extra["consumer_secret"],
        },
        timeout=30,
    )
    token.raise_for_status()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session, str(extra.get("version", "62.0"))


def edit_salesforce(sandbox: SandboxProcess, contact_id: str, fields: dict[str, Any]) -> None:
    session, version = _salesforce_session(sandbox)
    with session:
        resp = session.patch(
            f"{sandbox.salesforce_url}/services/data/v{version}/sobjects/Contact/{contact_id}", json=fields, timeout=30
        )
    resp.raise_for_status()


def _hubspot_write(sandbox: SandboxProcess, method: str, path: str, properties: dict[str, Any]) -> dict[str, Any]:
    with requests.Session() as session:
        session.trust_env = False
        resp = session.request(
            method,
            f"{sandbox.hubspot_url}/crm/v3/objects/contacts{path}",
            json={"properties": properties},
            headers={"Authorization": f"Bearer {sandbox.hubspot_token}"},
            timeout=30,
        )
    resp.raise_for_status()
    return resp.json()


def edit_hubspot(sandbox: SandboxProcess, contact_id: str, properties: dict[str, Any]) -> None:
    _hubspot_write(sandbox, "PATCH", f"/{contact_id}", properties)


def create_hubspot(sandbox: SandboxProcess, properties: dict[str, Any]) -> str:
    """A contact created through HubSpot's API (search sees it only after the index delay); returns its id."""
    return str(_hubspot_write(sandbox, "POST", "", properties)["id"])


class CrmEditor:
    """Many people editing contacts one at a time, each edit stamped at its own instant: the shared clock is
    set, then one REST call (one Salesforce session and one HubSpot session for all edits). Use as a context
    manager. HubSpot's rate limit applies to these calls like any other."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox
        self._salesforce, self._version = _salesforce_session(sandbox)
        self._hubspot = requests.Session()
        self._hubspot.trust_env = False
        self._hubspot.headers["Authorization"] = f"Bearer {sandbox.hubspot_token}"

    def salesforce(self, moment: datetime, contact_id: str, fields: dict[str, Any]) -> None:
        at(self.sandbox, moment)
        resp = self._salesforce.patch(
            f"{self.sandbox.salesforce_url}/services/data/v{self._version}/sobjects/Contact/{contact_id}",
            json=fields,
            timeout=30,
        )
        resp.raise_for_status()

    def hubspot(self, moment: datetime, contact_id: str, properties: dict[str, Any]) -> None:
        at(self.sandbox, moment)
        resp = self._hubspot.patch(
            f"{self.sandbox.hubspot_url}/crm/v3/objects/contacts/{contact_id}",
            json={"properties": properties},
            timeout=30,
        )
        resp.raise_for_status()

    def close(self) -> None:
        self._salesforce.close()
        self._hubspot.close()

    def __enter__(self) -> CrmEditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seed_pair(sandbox: SandboxProcess, moment: datetime, sf: dict[str, Any], hs: dict[str, Any]) -> tuple[str, str]:
    """One unlinked contact on each side, stamped ``moment``; returns (Salesforce Id, HubSpot id)."""
    stamp = moment.isoformat()
    sf_ids = sandbox.admin("salesforce", "POST", "seed", {"contacts": [{**sf, "LastModifiedDate": stamp}]}).json()
    hs_ids = sandbox.admin(
        "hubspot", "POST", "seed", {"contacts": [{"properties": hs, "createdAt": stamp, "updatedAt": stamp}]}
    ).json()
    assert not sf_ids.get("rejected") and not hs_ids.get("rejected"), (sf_ids, hs_ids)
    return sf_ids["ids"][0], hs_ids["ids"][0]


def salesforce_contact(sandbox: SandboxProcess, contact_id: str) -> dict[str, Any]:
    (row,) = [c for c in sandbox.admin("salesforce", "GET", "records").json()["contacts"] if c["Id"] == contact_id]
    return row


def hubspot_contact(sandbox: SandboxProcess, contact_id: str) -> dict[str, Any]:
    (row,) = [c for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"] if c["id"] == contact_id]
    return row["properties"]
