"""The event task's queue on a real Redis: a retry takes the failed try's entries over at once, a first try waits
for the lease (another run may still hold them); Salesforce's merged-away rows picked from a read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import redis
from airflow.sdk import DAG

from crm_sync.events.queue import ContactEventQueue
from crm_sync.operators.events import SyncContactEventsOperator, merged_away
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side


@pytest.fixture
def events_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    conn = {"conn_type": "redis", "host": host, "port": int(port), "extra": {"db": 3}}
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_REDIS", json.dumps(conn))
    client = redis.Redis(host=host, port=int(port), db=3)
    client.flushdb()
    return client


def task() -> SyncContactEventsOperator:
    with DAG("crm_contact_sync_events", schedule=None):
        return SyncContactEventsOperator(
            task_id="sync_events", mapping_path="include/mappings/contacts.yaml", redis_conn_id="events_redis"
        )


def test_a_retry_takes_the_failed_trys_entries_over_at_once(events_redis: redis.Redis) -> None:
    operator = task()
    event = ContactEvent(Side.HUBSPOT, "101", EventKind.CHANGED, 0, "e1")
    ContactEventQueue(events_redis).add([event])
    first = operator._queue({"ti": SimpleNamespace(try_number=1)})
    assert [c.event for c in first.claim(operator.dag_id, 10)] == [event]  # the first try claims, then fails
    assert first.claim(operator.dag_id, 10) == []  # within the lease nobody takes it, not even a new run
    retry = operator._queue({"ti": SimpleNamespace(try_number=2)})
    assert [c.event for c in retry.claim(operator.dag_id, 10)] == [event]


def test_merged_away_rows_are_the_deleted_ones_naming_a_master() -> None:
    read = pd.DataFrame(
        {
            "Id": ["003A", "003L", "003D"],
            "IsDeleted": [False, True, True],
            "MasterRecordId": [None, "003A", None],
            "SystemModstamp": pd.to_datetime(["2026-12-06T10:00:00Z"] * 3, utc=True),
        }
    )
    assert merged_away(read).to_dict("records") == [
        {"Id": "003L", "MasterRecordId": "003A", "SystemModstamp": pd.Timestamp("2026-12-06T10:00:00Z")}
    ]
    assert merged_away(read.drop(columns=["MasterRecordId"])).empty  # a read without the field names no merge


def test_a_landed_write_is_recorded_as_the_contact_now_holds_it_a_refused_or_linked_one_not() -> None:
    from crm_sync.hooks.results import RecordResult
    from crm_sync.operators.events import landed_digests
    from include.sync_logic.event_echoes import ROW, row_digest, value_digest

    frame = pd.DataFrame(
        {
            "source_id": ["003A", "003B", "003C"],
            "target_id": ["101", "102", None],
            "payload": [json.dumps({"jobtitle": "Lead", "phone": "+1"}), json.dumps({"jobtitle": "X"}), "{}"],
        }
    )
    results = [
        RecordResult("003A", "101", ok=True, error_code="INVALID", refused_fields="phone"),
        RecordResult("003B", "102", ok=False, error_code="INVALID"),
        RecordResult("003C", "105", ok=True, existing_id="105"),  # linked to an existing contact: nothing written
    ]
    empty = pd.DataFrame(columns=["id"])
    assert landed_digests(Side.HUBSPOT, frame, results, empty, []) == {
        "101": {"jobtitle": value_digest("jobtitle", "Lead")}
    }
    read = pd.DataFrame({"Id": ["003X"], "LastName": ["Byron"], "Title": ["Countess"]})
    sf_frame = pd.DataFrame(
        {"source_id": ["101"], "target_id": ["003X"], "payload": [json.dumps({"LastName": "Lovelace"})]}
    )
    landed = landed_digests(
        Side.SALESFORCE, sf_frame, [RecordResult("101", "003X", ok=True)], read, ["LastName", "Title"]
    )
    assert landed == {"003X": {ROW: row_digest({"LastName": "Lovelace", "Title": "Countess"}, ["LastName", "Title"])}}


def test_echoes_among_claimed_events_are_picked_by_the_recorded_writes(events_redis: redis.Redis) -> None:
    from crm_sync.events.echo_ledger import EchoLedger
    from crm_sync.events.queue import ClaimedEvent
    from crm_sync.operators.events import drop_echoes
    from include.sync_logic.event_echoes import value_digest

    ledger = EchoLedger(events_redis)
    ledger.record(Side.HUBSPOT, {"101": {"jobtitle": value_digest("jobtitle", "Lead")}})

    def change(contact_id: str, value: str) -> ClaimedEvent:
        event = ContactEvent(
            Side.HUBSPOT,
            contact_id,
            EventKind.CHANGED,
            0,
            f"e{contact_id}{value}",
            (),
            "jobtitle",
            value_digest("jobtitle", value),
        )
        return ClaimedEvent(f"1-{contact_id}{len(value)}", event)

    ours, human, other = change("101", "Lead"), change("101", "Leader"), change("102", "Lead")
    logged: list[str] = []
    assert drop_echoes([ours, human, other], ledger, logged.append) == [ours]
    assert logged == ["1 of 3 claimed events are echoes of our own writes, acknowledged unread: {'hubspot': 1}"]


def test_a_micro_batch_is_claimed_when_full_or_when_its_oldest_event_is_old_enough(
    events_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from crm_sync.operators import events as events_module

    monkeypatch.setattr(events_module, "BLOCK_MS", 200)
    with DAG("crm_contact_sync_events", schedule=None):
        operator = SyncContactEventsOperator(
            task_id="sync_events",
            mapping_path="include/mappings/contacts.yaml",
            redis_conn_id="events_redis",
            max_batch=3,
            batch_seconds=0.6,
            run_seconds=10,
        )
    queue = operator._queue({"ti": SimpleNamespace(try_number=1)})

    def changed(n: int) -> list[ContactEvent]:
        return [ContactEvent(Side.HUBSPOT, str(100 + i), EventKind.CHANGED, 0, f"b{n}-{i}") for i in range(n)]

    queue.add(changed(1))
    started = time.monotonic()
    assert len(operator._next_batch(queue, started)) == 1
    assert time.monotonic() - started >= 0.5  # one event waits until it is batch_seconds old
    queue.add(changed(4))
    added = time.monotonic()
    assert len(operator._next_batch(queue, added)) == 3  # a full batch goes at once
    assert time.monotonic() - added < 0.5
    assert len(operator._next_batch(queue, added)) == 1  # the one left over waits for its age
    assert time.monotonic() - added >= 0.5
    started = time.monotonic()
    assert operator._next_batch(queue, started) == []  # nothing comes: the run ends after BLOCK_MS
    assert time.monotonic() - started < 1.5


def test_a_create_records_the_link_the_link_back_writes_on_its_source() -> None:
    from crm_sync.hooks.results import RecordResult
    from crm_sync.operators.events import link_back_digests
    from include.sync_logic.event_echoes import ROW, row_digest, value_digest

    results = [RecordResult("003A", "201", ok=True, created=True), RecordResult("003B", None, ok=False)]
    read = pd.DataFrame({"Id": ["003A", "003B"], "LastName": ["Byron", "Ray"], "HubSpot_Contact_Id__c": [None, None]})
    fields = ["LastName", "HubSpot_Contact_Id__c"]
    # HubSpot created 201 from Salesforce 003A: the link-back writes 201 into 003A's link field.
    assert link_back_digests(Side.SALESFORCE, "HubSpot_Contact_Id__c", results, read, fields) == {
        "003A": {ROW: row_digest({"LastName": "Byron", "HubSpot_Contact_Id__c": "201"}, fields)}
    }
    hs_results = [RecordResult("201", "003N", ok=True, created=True)]
    assert link_back_digests(Side.HUBSPOT, "salesforce_contact_id", hs_results, pd.DataFrame(columns=["id"]), []) == {
        "201": {"salesforce_contact_id": value_digest("salesforce_contact_id", "003N")}
    }
