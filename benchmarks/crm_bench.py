"""What the benchmarks share: the sandboxes' request stats, the Airflow environment of a DAG run, a sync-state
database, and the naive per-record script the DAG is measured against (the seed script's shape).

Imported by `bench_sync.py` and `bench_scale.py` (run from the project root: `.venv/bin/python benchmarks/...`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import requests
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce import Salesforce, format_soql

from sandbox.testing import SandboxProcess

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
HS_PROPS = ["email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company"]
SEARCH_CAP = 10_000  # HubSpot search serves at most this many results per query


def stats(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """Both sandboxes' per-endpoint request stats (admin `stats`: requests, 429, 5xx, handler_seconds)."""
    return {system: sandbox.admin(system, "GET", "stats").json() for system in ("salesforce", "hubspot")}


def reset_stats(sandbox: SandboxProcess) -> None:
    for system in ("salesforce", "hubspot"):
        sandbox.admin(system, "POST", "stats/reset")


def endpoint_calls(snapshot: dict[str, dict[str, Any]]) -> Counter[str]:
    """Requests per `"<system> <METHOD> <endpoint pattern>"`, the `total` rows left out."""
    calls: Counter[str] = Counter()
    for system, rows in snapshot.items():
        for endpoint, row in rows.items():
            if endpoint != "total":
                calls[f"{system} {endpoint}"] += int(row["requests"])
    return calls


def dag_env(
    sandbox: SandboxProcess,
    redis_url: str,
    state_conn: str,
    *,
    requests_per_10s: int | None = None,
    search_per_s: int | None = None,
) -> dict[str, str]:
    """The environment a DAG run needs: both CRM connections (HubSpot's pool sized to the given limits), the
    sandbox CA, the Redis of the rate-limit pool and the sync-state database (an Airflow connection URI)."""
    env = {key: value for key, value in sandbox.env.items() if key.startswith("AIRFLOW_CONN_")}
    if requests_per_10s is not None or search_per_s is not None:
        hubspot_conn = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
        extra = dict(hubspot_conn.get("extra") or {})
        if requests_per_10s is not None:
            extra["requests_per_10s"] = requests_per_10s
        if search_per_s is not None:
            extra["search_requests_per_s"] = search_per_s
        hubspot_conn["extra"] = extra
        env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(hubspot_conn)
    env.update(
        AIRFLOW_CONN_REDIS_DEFAULT=redis_url,
        AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT=state_conn,
        REQUESTS_CA_BUNDLE=sandbox.ca_bundle,
    )
    return env


class FixedWindowLimiter:
    """The seed's limiter: at most N calls per wall-clock second bucket (lets 2N through at edges)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.bucket = int(time.time())
        self.count = 0

    def take(self) -> None:
        while True:
            now = int(time.time())
            if now != self.bucket:
                self.bucket, self.count = now, 0
            if self.count < self.per_second:
                self.count += 1
                return
            time.sleep(self.bucket + 1 - time.time())


def salesforce_client(sandbox: SandboxProcess) -> Salesforce:
    """simple-salesforce on the sandbox org, logged in with its connected app (client credentials): what a user's
    script or another integration would use, outside the sync's hooks."""
    conn = json.loads(sandbox.env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False
    token = session.post(
        f"{conn['extra']['login_url']}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": conn["extra"]["consumer_key"],
            "client_secret": conn["extra"]["consumer_secret"],
        },
    ).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)


def naive_sync(
    sandbox: SandboxProcess,
    *,
    window_end: datetime = T,
    per_second: int | None = None,
    slice_minutes: float | None = None,
) -> dict[str, Any]:
    """The seed script's shape: one lookup and one write per contact, each way, over [window_end - 15 min,
    window_end); 429s slept off and retried.

    `per_second`: its fixed one-second limiter on HubSpot calls (None: no limiter, for a sandbox whose limits
    are lifted). `slice_minutes`: search HubSpot's window in slices of this many minutes, so windows past
    HubSpot's 10,000-results cap are read whole (None: one query, which stops at the cap as the seed did).
    """
    sf = salesforce_client(sandbox)
    hs = HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)
    limiter = FixedWindowLimiter(per_second) if per_second else None
    outcome: Counter[str] = Counter()

    def hubspot(call: Any) -> Any:
        while True:
            if limiter is not None:
                limiter.take()
            try:
                return call()
            except ApiException as exc:
                if exc.status != 429:
                    raise
                outcome["429 slept"] += 1
                time.sleep(1)

    window_start = window_end - timedelta(minutes=15)
    start, end = (moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in (window_start, window_end))
    started = time.perf_counter()
    soql = (
        "SELECT Id, Email, FirstName, LastName, Phone, MobilePhone, Title FROM Contact "
        "WHERE SystemModstamp >= {:literal} AND SystemModstamp < {:literal}"
    )
    for record in sf.query_all_iter(format_soql(soql, start, end)):
        email = (record["Email"] or "").strip().lower()
        properties = {
            "email": email,
            "firstname": record["FirstName"] or "",
            "lastname": record["LastName"] or "",
            "phone": record["Phone"] or "",
            "mobilephone": record["MobilePhone"] or "",
            "jobtitle": record["Title"] or "",
        }
        try:
            found = hubspot(lambda e=email: hs.crm.contacts.basic_api.get_by_id(e, id_property="email"))
            hubspot(lambda f=found, p=properties: hs.crm.contacts.basic_api.update(f.id, {"properties": p}))
            outcome["hubspot update"] += 1
        except ApiException as exc:
            if exc.status == 404:
                try:
                    hubspot(lambda p=properties: hs.crm.contacts.basic_api.create({"properties": p}))
                    outcome["hubspot create"] += 1
                except ApiException:
                    outcome["hubspot error"] += 1
            else:
                outcome["hubspot error"] += 1
    step = timedelta(minutes=slice_minutes) if slice_minutes else window_end - window_start
    contacts: list[Any] = []
    lower = window_start
    while lower < window_end:
        upper = min(lower + step, window_end)
        window = {
            "filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": lower.strftime("%Y-%m-%dT%H:%M:%SZ")},
                {"propertyName": "lastmodifieddate", "operator": "LT", "value": upper.strftime("%Y-%m-%dT%H:%M:%SZ")},
            ]
        }
        after, found_in_slice = None, 0
        while True:
            body = {"filterGroups": [window], "properties": HS_PROPS, "limit": 100}
            if after:
                body["after"] = after
            page = hubspot(lambda b=body: hs.crm.contacts.search_api.do_search(b))
            contacts.extend(page.results)
            found_in_slice += len(page.results)
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after or found_in_slice >= SEARCH_CAP:
                break
        if found_in_slice >= SEARCH_CAP:
            outcome["search capped at 10,000"] += 1
        lower = upper
    for contact in contacts:
        props = contact.properties
        email = (props.get("email") or "").strip().lower()
        record = {
            "Email": email,
            "FirstName": props.get("firstname"),
            "LastName": props.get("lastname") or "[not provided]",
            "Phone": props.get("phone"),
            "MobilePhone": props.get("mobilephone"),
            "Title": props.get("jobtitle"),
        }
        try:
            found = sf.query(format_soql("SELECT Id FROM Contact WHERE Email = {}", email))["records"]
            if found:
                sf.Contact.update(found[0]["Id"], record)
                outcome["salesforce update"] += 1
            else:
                sf.Contact.create(record)
                outcome["salesforce create"] += 1
        except Exception:  # the naive script logs and moves on
            outcome["salesforce error"] += 1
    return {"seconds": time.perf_counter() - started, "outcome": dict(outcome)}
