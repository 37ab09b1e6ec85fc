"""The event-driven DAG's task on real runs (`airflow dags test`; sandboxes, Redis, PostgreSQL): events from the queue
synced through the windowed DAG's code and sync state, acknowledged once synced, and nothing left for the next
windowed run to write."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from crm_sync.events.queue import ContactEventQueue
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side
from sandbox.testing import SandboxProcess
from tests.integration.airflow_project import AirflowProject, DagRun
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import (
    at,
    edit_hubspot,
    edit_salesforce,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_sync import writes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENT_DAG = "crm_contact_sync_events"
T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
ANN_SF = {"Email": "ann@example.com", "FirstName": "Ann", "LastName": "Lee", "Title": "Engineer"}
ANN_HS = {"email": "ann@example.com", "firstname": "Ann", "lastname": "Lee", "jobtitle": "Engineer"}
BOB_SF = {"Email": "bob@example.com", "FirstName": "Bob", "LastName": "Ray", "Title": "Analyst"}
BOB_HS = {"email": "bob@example.com", "firstname": "Bob", "lastname": "Ray", "jobtitle": "Analyst"}


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn):
    """Empty sandboxes on a frozen clock, Redis (the queue and the rate-limit pool) and a fresh sync state."""
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    return airflow_project, sandbox, crm_env(sandbox, clean_redis, state_conn), clean_redis


def queue_on(redis_url: str) -> ContactEventQueue:
    """The queue as the DAG's task finds it: `redis_default` is the URL's host, db 0 (RedisHook reads `db` from the
    extras, not the URL's path)."""
    return ContactEventQueue(redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0"))


def event(side: Side, contact_id: str, moment: datetime, kind: EventKind = EventKind.CHANGED) -> ContactEvent:
    return ContactEvent(side, contact_id, kind, int(moment.timestamp() * 1000), f"test:{side}:{contact_id}:{moment}")


def api_calls(sandbox: SandboxProcess) -> dict[str, int]:
    """Requests per endpoint since the stats were reset, by the sandboxes' own count; Salesforce's token requests
    left out (its API limits do not count them)."""
    return {
        f"{system} {endpoint}": row["requests"]
        for system in ("salesforce", "hubspot")
        for endpoint, row in sandbox.admin(system, "GET", "stats").json().items()
        if endpoint != "total" and row["requests"] and "oauth2/token" not in endpoint
    }


def echo_from_the_poll(
    sandbox: SandboxProcess, env: dict[str, str], queue: ContactEventQueue, monkeypatch: pytest.MonkeyPatch
) -> list[ContactEvent]:
    """What the triggerer's Salesforce poll reads 10 s after the run's writes (made at T + 3 min), from T + 2.5 min."""
    from crm_sync.events.sf_poll import SalesforceChangePoll
    from crm_sync.hooks.contacts import contacts_hook

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    hook = contacts_hook(Side.SALESFORCE, "salesforce_default", redis_conn_id="redis_default")
    now = T + 3 * MINUTE + 10 * SECOND
    poll = SalesforceChangePoll(
        hook, queue.client, conn_id="salesforce_default", first_lookback=40 * SECOND, now=lambda: now
    )
    return poll.poll(lambda events: None)


def echo_from_hubspot(contact_id: str, jobtitle: str) -> list[ContactEvent]:
    """HubSpot's webhook for a jobtitle change, as the sandbox sends it."""
    from crm_sync.events.hubspot_payload import parse_delivery

    change = {
        "eventId": 9001,
        "subscriptionId": 1001,
        "portalId": 1,
        "occurredAt": int((T + 3 * MINUTE).timestamp() * 1000),
        "subscriptionType": "contact.propertyChange",
        "objectId": int(contact_id),
        "propertyName": "jobtitle",
        "propertyValue": jobtitle,
        "changeSource": "API",
    }
    return parse_delivery([change]).events


def windowed(project: AirflowProject, sandbox: SandboxProcess, env: dict[str, str], window_end: datetime) -> DagRun:
    at(sandbox, window_end + MINUTE)
    run = project.dags_test(window_end.isoformat(), env=env)
    assert run.report is not None, run.log[-5000:]
    return run


def event_run(
    project: AirflowProject, sandbox: SandboxProcess, env: dict[str, str], moment: datetime
) -> dict[str, Any]:
    """One run of the event DAG at `moment` (the sandboxes' clock); its report."""
    at(sandbox, moment)
    settings = {"AIRFLOW__CRM_SYNC__EVENTS_BATCH_SECONDS": "0", "AIRFLOW__CRM_SYNC__EVENTS_RUN_SECONDS": "1"}
    run = project.dags_test(moment.isoformat(), env={**env, **settings}, dag_id=EVENT_DAG)
    assert run.returncode == 0 and run.report is not None, run.log[-5000:]
    return run.report


def test_events_sync_both_ways_and_leave_the_next_window_nothing_to_write(world, monkeypatch) -> None:
    project, sandbox, env, redis_url = world
    ann_sf, ann_hs = seed_pair(sandbox, T - 20 * MINUTE, ANN_SF, ANN_HS)
    bob_sf, bob_hs = seed_pair(sandbox, T - 20 * MINUTE, BOB_SF, BOB_HS)
    windowed(project, sandbox, env, T)  # pairs them: both linked, snapshots recorded
    at(sandbox, T + 2 * MINUTE)
    edit_salesforce(sandbox, ann_sf, {"Title": "Staff Engineer"})
    edit_hubspot(sandbox, bob_hs, {"jobtitle": "Lead Analyst", "phone": "+14155550123"})
    queue = queue_on(redis_url)
    queue.add([event(Side.SALESFORCE, ann_sf, T + 2 * MINUTE), event(Side.HUBSPOT, bob_hs, T + 2 * MINUTE)])

    for system in ("salesforce", "hubspot"):
        sandbox.admin(system, "POST", "stats/reset")
    report = event_run(project, sandbox, env, T + 3 * MINUTE)
    calls = api_calls(sandbox)

    assert salesforce_contact(sandbox, bob_sf)["Title"] == "Lead Analyst"
    assert salesforce_contact(sandbox, bob_sf)["Phone"] == "+14155550123"
    assert hubspot_contact(sandbox, ann_hs)["jobtitle"] == "Staff Engineer"
    assert report["events"] == report["acknowledged"] == 2
    (batch,) = report["batches"]
    assert batch["read"] == {"salesforce": 2, "hubspot": 2}  # each event's contact and its counterpart, once
    assert writes({"decisions": batch["decisions"]}) == {"hubspot.update": 1, "salesforce.update": 1}
    # One read by id per CRM (the counterparts came in the same read) and one write per CRM, by the CRMs' count.
    assert calls == {
        "salesforce POST /services/data/v{version}/composite/?": 1,
        "salesforce PATCH /services/data/v{version}/composite/sobjects/?": 1,
        "hubspot POST /crm/v3/objects/contacts/batch/read": 1,
        "hubspot POST /crm/v3/objects/contacts/batch/update": 1,
    }
    assert queue.lag() == 0 and queue.pending()["count"] == 0

    # The run's writes come back as events: HubSpot's webhook for Ann's jobtitle, the Salesforce poll seeing Bob's
    # row. Both say what the run wrote: acknowledged unread, no second batch of reads.
    echoes = [*echo_from_the_poll(sandbox, env, queue, monkeypatch), *echo_from_hubspot(ann_hs, "Staff Engineer")]
    assert queue.add(echoes) == 2
    for system in ("salesforce", "hubspot"):
        sandbox.admin(system, "POST", "stats/reset")
    report = event_run(project, sandbox, env, T + 3 * MINUTE + 20 * SECOND)
    assert (report["events"], report["echoes"], report["acknowledged"], report["batches"]) == (2, 2, 2, [])
    assert api_calls(sandbox) == {}
    assert queue.lag() == 0 and queue.pending()["count"] == 0

    after = windowed(project, sandbox, env, T + 15 * MINUTE)  # the window holding both edits and the sync's writes
    assert writes(after.report) == {}, after.report["decisions"]


def test_a_run_with_an_empty_queue_spends_no_call(world) -> None:
    project, sandbox, env, _ = world
    report = event_run(project, sandbox, env, T)
    assert report["events"] == 0 and report["batches"] == []
    assert not any(n for key, n in report["api"].items() if key.endswith("_api_calls"))


def test_merge_privacy_deletion_archive_and_restore_events_go_through_the_identity_handling(world, state_conn) -> None:
    from tests.integration.test_dag_identity_deletes import hubspot, live_hubspot, tombstone_of
    from tests.integration.test_dag_merges import merge_hubspot

    project, sandbox, env, redis_url = world
    people = [("ann", ANN_SF, ANN_HS), ("bob", BOB_SF, BOB_HS)]
    people += [
        (name, {**ANN_SF, "Email": f"{name}@example.com"}, {**ANN_HS, "email": f"{name}@example.com"})
        for name in ("cid", "dan")
    ]
    pairs = {name: seed_pair(sandbox, T - 20 * MINUTE, sf, hs) for name, sf, hs in people}
    windowed(project, sandbox, env, T)
    (sf_ann, hs_ann), (sf_bob, hs_bob), (sf_cid, hs_cid), (sf_dan, hs_dan) = (
        pairs[name] for name in ("ann", "bob", "cid", "dan")
    )
    queue = queue_on(redis_url)
    at(sandbox, T + 2 * MINUTE)
    merged = merge_hubspot(sandbox, hs_ann, hs_bob)
    hubspot(sandbox, "POST", "/gdpr-delete", {"objectId": hs_cid})
    hubspot(sandbox, "DELETE", f"/{hs_dan}")
    moment = T + 2 * MINUTE
    queue.add(
        [
            ContactEvent(Side.HUBSPOT, merged, EventKind.MERGED, int(moment.timestamp() * 1000), "m", (hs_ann, hs_bob)),
            event(Side.HUBSPOT, hs_cid, moment, EventKind.PRIVACY_DELETED),
            event(Side.HUBSPOT, hs_dan, moment, EventKind.DELETED),
        ]
    )
    event_run(project, sandbox, env, T + 3 * MINUTE)

    assert salesforce_contact(sandbox, sf_ann)["HubSpot_Contact_Id__c"] == merged  # the primary's pair moved
    assert hubspot_contact(sandbox, merged)["salesforce_contact_id"] == sf_ann
    kinds = {
        cid: (tombstone_of(state_conn, "hubspot", cid) or {}).get("kind") for cid in (hs_ann, hs_bob, hs_cid, hs_dan)
    }
    assert kinds == {hs_ann: "merged", hs_bob: "merged", hs_cid: "privacy_deleted", hs_dan: "archived"}
    assert sorted(row["id"] for row in live_hubspot(sandbox)) == [merged], "re-created in HubSpot"

    at(sandbox, T + 5 * MINUTE)
    assert sandbox.admin("hubspot", "POST", "restore", {"ids": [hs_dan]}).json()["restored"] == [hs_dan]
    at(sandbox, T + 6 * MINUTE)
    for contact in (sf_bob, sf_cid, sf_dan):
        edit_salesforce(sandbox, contact, {"Title": "Manager"})
    queue.add(
        [event(Side.HUBSPOT, hs_dan, T + 5 * MINUTE, EventKind.RESTORED)]
        + [event(Side.SALESFORCE, contact, T + 6 * MINUTE) for contact in (sf_bob, sf_cid, sf_dan)]
    )
    event_run(project, sandbox, env, T + 7 * MINUTE)

    assert tombstone_of(state_conn, "hubspot", hs_dan) is None, "the restore was not seen"
    assert hubspot_contact(sandbox, hs_dan)["jobtitle"] == "Manager", "the restored pair did not resume"
    assert sorted(row["id"] for row in live_hubspot(sandbox)) == sorted([merged, hs_dan]), "bob or cid re-created"
    after = windowed(project, sandbox, env, T + 15 * MINUTE)
    assert writes(after.report) == {}, after.report["decisions"]
