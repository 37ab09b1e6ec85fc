"""Windowed extracts through the real hooks, clients, Redis pool and sandbox processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from crm_sync.hooks.contacts import ContactWrite
from crm_sync.hooks.hubspot import HubSpotContactsHook
from crm_sync.hooks.salesforce import SalesforceContactsHook
from include.sync_logic.sides import Action
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(minutes=15)
SF_FIELDS = [
    "Id", "Email", "FirstName", "LastName", "Phone", "MobilePhone", "Title", "Account.Name",
    "HubSpot_Contact_Id__c", "SystemModstamp", "LastModifiedDate", "IsDeleted",
]  # fmt: skip
HS_PROPS = ["email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company", "salesforce_contact_id"]


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    """Both sandboxes (frozen clock) and a private Redis db, wired in as Airflow connections."""
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, 3, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def fresh(crm: SandboxProcess) -> SandboxProcess:
    crm.admin("salesforce", "POST", "reset")
    crm.admin("hubspot", "POST", "reset")
    return crm


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# Stamps around the window edges: exactly at START is in, exactly at END is out.
EDGES = {
    "before": START - timedelta(milliseconds=1),
    "at_start": START,
    "inside": START + timedelta(minutes=7),
    "last_ms": END - timedelta(milliseconds=1),
    "at_end": END,
    "after": END + timedelta(minutes=1),
}
INSIDE = {"at_start", "inside", "last_ms"}


def _seed_salesforce(crm: SandboxProcess, stamps: dict[str, datetime]) -> dict[str, str]:
    contacts = [
        {"Email": f"{name}@example.com", "LastName": name, "AccountName": "Acme", "SystemModstamp": _iso(when)}
        for name, when in stamps.items()
    ]
    ids = crm.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()["ids"]
    return dict(zip(stamps, ids, strict=True))


def test_salesforce_window_picks_exactly_its_contacts(fresh):
    # Salesforce datetimes have whole seconds in SOQL, milliseconds in storage: keep edges on seconds.
    stamps = {**EDGES, "last_ms": END - timedelta(seconds=1), "before": START - timedelta(seconds=1)}
    ids = _seed_salesforce(fresh, stamps)
    hook = SalesforceContactsHook()
    frames = list(hook.iter_changed_contacts(SF_FIELDS, START, END))
    frame = pd.concat(frames, ignore_index=True)
    assert set(frame["Id"]) == {ids[name] for name in INSIDE}
    assert list(frame.columns) == SF_FIELDS
    assert (frame["Account.Name"] == "Acme").all()
    assert str(frame["SystemModstamp"].dt.tz) == "UTC" and frame["IsDeleted"].dtype == bool
    assert frame["SystemModstamp"].is_monotonic_increasing


def test_salesforce_rest_and_bulk_agree_and_chunks_stay_bounded(fresh):
    base = START + timedelta(seconds=1)
    stamps = {f"c{i}": base + timedelta(seconds=i % 800) for i in range(2500)}
    stamps["late"] = END + timedelta(seconds=5)
    ids = _seed_salesforce(fresh, stamps)
    expected = {ids[name] for name in stamps if name != "late"}

    rest_hook = SalesforceContactsHook(chunk_rows=1000)
    rest = list(rest_hook.iter_changed_contacts(SF_FIELDS, START, END))
    assert [len(f) for f in rest] == [1000, 1000, 500]
    assert set(pd.concat(rest)["Id"]) == expected

    bulk_hook = SalesforceContactsHook(bulk_threshold=100, chunk_rows=1000, bulk_poll_seconds=0.1)
    bulk = list(bulk_hook.iter_changed_contacts(SF_FIELDS, START, END))  # above the threshold: Bulk API 2.0
    assert max(len(f) for f in bulk) <= 1000
    bulk_frame = pd.concat(bulk, ignore_index=True)
    assert set(bulk_frame["Id"]) == expected and len(bulk_frame) == len(expected)
    assert (bulk_frame["Account.Name"] == "Acme").all()
    assert str(bulk_frame["SystemModstamp"].dt.tz) == "UTC"


def test_salesforce_deleted_contacts_need_include_deleted(fresh):
    ids = _seed_salesforce(fresh, {"keep": START + timedelta(minutes=1), "gone": START + timedelta(minutes=2)})
    hook = SalesforceContactsHook()
    (result,) = hook.write_contacts(
        Action.DELETE, [ContactWrite(ids["gone"])], ["gone"], link_field="HubSpot_Contact_Id__c"
    )
    assert result.ok
    # The delete stamps SystemModstamp with the (frozen) sandbox time: read a window around it.
    window = (NOW - timedelta(hours=2), NOW + timedelta(minutes=1))
    live = pd.concat(list(hook.iter_changed_contacts(SF_FIELDS, *window)))
    assert ids["gone"] not in set(live["Id"])
    every = pd.concat(list(hook.iter_changed_contacts(SF_FIELDS, *window, include_deleted=True)))
    assert every.set_index("Id").loc[ids["gone"], "IsDeleted"]
    bulk = pd.concat(list(hook.iter_changed_contacts(SF_FIELDS, *window, include_deleted=True, use_bulk=True)))
    assert bool(bulk.set_index("Id").loc[ids["gone"], "IsDeleted"]) is True
    # A full resync reads everything with a Bulk API query; the recycle bin only when asked.
    everyone = pd.concat(list(hook.iter_all_contacts(SF_FIELDS)))
    assert set(everyone["Id"]) == {ids["keep"]}
    with_deleted = pd.concat(list(hook.iter_all_contacts(SF_FIELDS, include_deleted=True)))
    assert set(with_deleted["Id"]) == set(ids.values())


def _seed_hubspot(crm: SandboxProcess, stamps: dict[str, datetime]) -> dict[str, str]:
    contacts = [
        {"properties": {"email": f"{name}@example.com", "lastname": name}, "updatedAt": _iso(when)}
        for name, when in stamps.items()
    ]
    result = crm.admin("hubspot", "POST", "seed", json={"contacts": contacts}).json()
    assert not result["rejected"]
    return dict(zip(stamps, result["ids"], strict=True))


def test_hubspot_window_picks_exactly_its_contacts(fresh):
    ids = _seed_hubspot(fresh, EDGES)
    hook = HubSpotContactsHook()
    frame = pd.concat(list(hook.iter_changed_contacts(HS_PROPS, START, END)), ignore_index=True)
    assert set(frame["id"]) == {ids[name] for name in INSIDE}
    assert list(frame.columns) == ["id", *HS_PROPS, "lastmodifieddate", "hs_merged_object_ids", "archived"]
    assert str(frame["lastmodifieddate"].dt.tz) == "UTC" and not frame["archived"].any()


def _extract_hubspot(hook: HubSpotContactsHook) -> tuple[pd.DataFrame, float]:
    began = time.monotonic()
    frame = pd.concat(list(hook.iter_changed_contacts(HS_PROPS, START, END)), ignore_index=True)
    return frame, time.monotonic() - began


def test_hubspot_window_of_batch_written_groups_in_the_fewest_searches(fresh):
    """Batch writes stamp 100 contacts with one timestamp: 1,000 of them are 5 pages of 200 and 5 searches."""
    stamps = {f"b{i}": START + timedelta(seconds=i // 100) for i in range(1_000)}
    ids = _seed_hubspot(fresh, stamps)
    hook = HubSpotContactsHook()
    frame, _ = _extract_hubspot(hook)
    assert len(frame) == frame["id"].nunique() == 1_000 and set(frame["id"]) == set(ids.values())
    assert hook.search_calls == 5


@pytest.mark.slow
def test_hubspot_window_with_12000_contacts_sharing_one_timestamp(fresh, capsys):
    bulk_edit = START + timedelta(minutes=5)
    stamps = {f"pre{i}": START + timedelta(milliseconds=10 * i) for i in range(300)}
    stamps.update({f"bulk{i}": bulk_edit for i in range(12_000)})
    stamps.update({f"post{i}": bulk_edit + timedelta(milliseconds=1 + i) for i in range(300)})
    stamps["outside"] = END
    ids = _seed_hubspot(fresh, stamps)
    fresh.admin("hubspot", "POST", "stats/reset")

    hook = HubSpotContactsHook()
    frame, seconds = _extract_hubspot(hook)
    assert len(frame) == frame["id"].nunique() == 12_600
    assert set(frame["id"]) == {cid for name, cid in ids.items() if name != "outside"}
    stats = fresh.admin("hubspot", "GET", "stats").json()
    with capsys.disabled():
        print(
            f"\n[measure] 12,600 HubSpot contacts (12,000 on one timestamp): {hook.search_calls} search calls, "
            f"{seconds:.1f}s, pool {hook.rate_limit_pool.stats.as_dict()}, sandbox total {stats.get('total')}"
        )
    assert hook.search_calls <= 75  # 12,600 / 200 = 63 pages, plus a few boundary re-reads


@pytest.mark.slow
def test_hubspot_window_with_more_than_10000_distinct_timestamps(fresh, capsys):
    stamps = {f"c{i}": START + timedelta(milliseconds=71 * i) for i in range(10_500)}
    ids = _seed_hubspot(fresh, stamps)
    hook = HubSpotContactsHook()
    frame, seconds = _extract_hubspot(hook)
    assert len(frame) == 10_500 and set(frame["id"]) == set(ids.values())
    with capsys.disabled():
        print(f"\n[measure] 10,500 HubSpot contacts, distinct timestamps: {hook.search_calls} searches, {seconds:.1f}s")
