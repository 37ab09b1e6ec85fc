"""The record of the event run's writes on a real Redis: digests per contact (never a value), replaced by the next
write, forgotten when the contact is read again, expiring after the TTL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from crm_sync.events.echo_ledger import EchoLedger
from include.sync_logic.event_echoes import ROW, value_digest
from include.sync_logic.sides import Side

REDIS_DB = 4


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}") as conn:
        conn.flushdb()
        yield conn


def test_a_recorded_write_is_found_by_side_and_id_and_holds_no_value(client: redis.Redis) -> None:
    ledger = EchoLedger(client, ttl_seconds=60)
    digests = {"email": value_digest("email", "ada@example.com")}
    ledger.record(Side.HUBSPOT, {"101": digests})
    ledger.record(Side.SALESFORCE, {"101": {ROW: "r"}})  # the same id on the other CRM is another contact
    assert ledger.recorded([(Side.HUBSPOT, "101"), (Side.SALESFORCE, "101"), (Side.HUBSPOT, "102")]) == {
        (Side.HUBSPOT, "101"): digests,
        (Side.SALESFORCE, "101"): {ROW: "r"},
    }
    stored = b"".join(key + b"".join(client.hgetall(key).values()) for key in client.scan_iter())
    assert b"ada" not in stored
    assert 0 < client.ttl(ledger.key(Side.HUBSPOT, "101")) <= 60


def test_the_next_write_replaces_the_record_and_a_read_forgets_it(client: redis.Redis) -> None:
    ledger = EchoLedger(client, ttl_seconds=60)
    ledger.record(Side.HUBSPOT, {"101": {"email": "a", "phone": "p"}, "102": {"email": "b"}})
    ledger.record(Side.HUBSPOT, {"101": {"email": "c"}})
    assert ledger.recorded([(Side.HUBSPOT, "101")]) == {(Side.HUBSPOT, "101"): {"email": "c"}}
    ledger.forget(Side.HUBSPOT, ["101", "103"])
    assert ledger.recorded([(Side.HUBSPOT, "101"), (Side.HUBSPOT, "102")]) == {(Side.HUBSPOT, "102"): {"email": "b"}}


def test_the_row_fields_are_shared_with_the_poll(client: redis.Redis) -> None:
    ledger = EchoLedger(client)
    assert ledger.row_fields() == []
    ledger.set_row_fields(["Email", "LastName"])
    assert EchoLedger(client).row_fields() == ["Email", "LastName"]
