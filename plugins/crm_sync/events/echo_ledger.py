"""The event run's record of its own writes in Redis, so their echoes are acknowledged unread (no Airflow here).

Per contact written, the digests `include.sync_logic.event_echoes` makes (field name -> sha256, never a value),
under `queue_names.WROTE_KEY_PREFIX`, for `ECHO_TTL_SECONDS`. A contact's next write replaces its record, and a
batch that reads a contact forgets it first: what was read is the news now, so an older write's digest can no
longer pass a later edit back to the same value off as an echo. The Salesforce fields a row digest covers are kept
beside it for the poll, which selects and digests the same ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from crm_sync.events import queue_names
from crm_sync.events.queue import as_text
from include.sync_logic.sides import Side


class EchoLedger:
    """The record on one Redis client (the queue's)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = queue_names.WROTE_KEY_PREFIX,
        row_fields_key: str = queue_names.ROW_FIELDS_KEY,
        ttl_seconds: int = queue_names.ECHO_TTL_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.row_fields_key = row_fields_key
        self.ttl_seconds = ttl_seconds

    def key(self, side: Side, contact_id: str) -> str:
        return f"{self.prefix}{side}:{contact_id}"

    def record(self, side: Side, writes: Mapping[str, Mapping[str, str]]) -> None:
        """Per contact id its write's digests, each replacing the contact's earlier record. One round trip."""
        if not writes:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for contact_id, digests in writes.items():
                key = self.key(side, contact_id)
                pipe.delete(key)
                if digests:
                    fields: dict[Any, Any] = dict(digests)  # redis-py's Mapping key type is a union: invariant
                    pipe.hset(key, mapping=fields)
                    pipe.expire(key, self.ttl_seconds)
            pipe.execute()

    def forget(self, side: Side, contact_ids: Sequence[str]) -> None:
        """Drop the records of contacts just read."""
        if contact_ids:
            self.client.delete(*(self.key(side, contact_id) for contact_id in contact_ids))

    def recorded(self, contacts: Sequence[tuple[Side, str]]) -> dict[tuple[Side, str], dict[str, str]]:
        """The records of these contacts that exist. One round trip."""
        wanted = list(dict.fromkeys(contacts))
        if not wanted:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for side, contact_id in wanted:
                pipe.hgetall(self.key(side, contact_id))
            found: list[Any] = pipe.execute()
        return {
            contact: {as_text(name): as_text(value) for name, value in digests.items()}
            for contact, digests in zip(wanted, found, strict=True)
            if digests
        }

    def set_row_fields(self, fields: Sequence[str]) -> None:
        self.client.set(self.row_fields_key, json.dumps(list(fields)))

    def row_fields(self) -> list[str]:
        """The Salesforce fields recorded row digests cover (none before the first event run)."""
        stored = self.client.get(self.row_fields_key)
        return [str(name) for name in json.loads(stored)] if stored is not None else []
