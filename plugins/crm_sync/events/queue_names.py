"""The names every reader and writer of the contact-event queue shares (no Redis import: the trigger's async
client, the sync queue and the health view read the same keys).

All keys carry the Redis Cluster hash tag `{crm_sync:events}`, so the queue's Lua script may touch the stream
and the dedupe keys in one call.
"""

from __future__ import annotations

from crm_sync.settings import DEFAULTS

REDIS_CONN_ID = DEFAULTS.redis_conn_id  # not hooks.pools': that imports redis, and DAG files import these names
"""The Airflow connection of the deployed Redis the queue lives on."""

STREAM_KEY = "crm_sync:{crm_sync:events}:stream"
"""The Redis Stream of `ContactEvent` entries (fields: `ContactEvent.to_fields`)."""

GROUP = "crm_sync_event_runs"
"""The consumer group the event-driven runs claim entries through (created idempotently, from the stream's start)."""

SEEN_KEY_PREFIX = "crm_sync:{crm_sync:events}:seen:"
"""`<prefix><side>:<event_id>` marks an event already queued (SET with a TTL): duplicate deliveries stop there."""

DEDUPE_TTL_SECONDS = 26 * 3600
"""How long an event id is remembered: HubSpot retries a delivery for up to 24 hours."""

MAX_LENGTH = 100_000
"""The stream's approximate cap (entries not yet acknowledged; acknowledged ones are deleted)."""

LEASE_MS = 5 * 60 * 1000
"""How long a claimed entry stays with its consumer before another may take it over (a crashed run's entries)."""

WROTE_KEY_PREFIX = "crm_sync:{crm_sync:events}:wrote:"
"""`<prefix><side>:<contact id>`: a hash of digests (field name -> sha256) of the event run's last write of the
contact, which its echo is told by (`include.sync_logic.event_echoes`); never the values."""

ROW_FIELDS_KEY = "crm_sync:{crm_sync:events}:salesforce-row-fields"
"""The Salesforce fields (JSON list) a recorded row digest covers: the poll selects and digests the same ones."""

ECHO_TTL_SECONDS = 3600
"""How long a write's digests are kept: its echoes arrive within seconds (HubSpot's retries within hours)."""
