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
