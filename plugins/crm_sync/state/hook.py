"""The sync-state database behind the Airflow connection `crm_sync_state_default`.

Conn type `postgres` (deployment; psycopg 3): host, port, login, password, schema = database name,
libpq extras such as `sslmode` passed on. Conn type `sqlite` (the local demo): the file path in host
or schema, e.g. `AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT='sqlite:////abs/path/state.db'`.
Extras `retry_base_minutes`, `retry_cap_minutes`, `retry_max_attempts`, `retry_lease_minutes` shape the retry
queue's policy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from crm_sync.settings import DEFAULTS
from crm_sync.state.engine import create_state_engine
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.store import SyncStateStore

log = logging.getLogger(__name__)

POSTGRES_DRIVER = "postgresql+psycopg"
# Connection extras handed to libpq as they are; other extras (Airflow's own, the retry policy) are not.
LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options")
_POLICY_EXTRAS = {
    "retry_base_minutes": ("base_minutes", float),
    "retry_cap_minutes": ("cap_minutes", float),
    "retry_max_attempts": ("max_attempts", int),
    "retry_lease_minutes": ("lease_minutes", float),
}


def state_url(conn: Any) -> sa.URL:
    """The SQLAlchemy URL for an Airflow connection of type postgres or sqlite."""
    conn_type = conn.conn_type
    if conn_type in ("postgres", "postgresql"):
        query = {key: str(value) for key, value in conn.extra_dejson.items() if key in LIBPQ_EXTRAS}
        return sa.URL.create(
            POSTGRES_DRIVER,
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query=query,
        )
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ValueError(f"sqlite connection {conn.conn_id!r} names no database file (host or schema)")
        return sa.URL.create("sqlite", database=path)
    raise ValueError(
        f"connection {conn.conn_id!r}: the sync state needs conn type postgres or sqlite, not {conn_type!r}"
    )


def policy_from_extras(extras: Mapping[str, Any]) -> RetryPolicy:
    """The retry policy, with the connection's extras (strings when they came from a URI) over the defaults."""
    settings: dict[str, Any] = {}
    for key, (field, convert) in _POLICY_EXTRAS.items():
        if extras.get(key) is None:
            continue
        try:
            settings[field] = convert(extras[key])
        except ValueError:
            raise ValueError(f"connection extra {key}: {extras[key]!r} is not a {convert.__name__}") from None
    return RetryPolicy(**settings)


class SyncStateHook(BaseHook):
    """Opens the sync-state database of a connection and hands out its `SyncStateStore`.

    :param state_conn_id: the connection (conn type postgres or sqlite).
    """

    conn_name_attr = "state_conn_id"
    default_conn_name = DEFAULTS.state_conn_id
    conn_type = "postgres"
    hook_name = "CRM sync state"

    def __init__(self, state_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.state_conn_id = state_conn_id

    @cached_property
    def _connection(self) -> Any:
        try:
            return self.get_connection(self.state_conn_id)
        except AirflowNotFoundException as exc:
            variable = f"AIRFLOW_CONN_{self.state_conn_id.upper()}"
            raise AirflowNotFoundException(
                f"The sync-state connection {self.state_conn_id!r} is not defined. Define it in Airflow, or e.g. "
                f"{variable}='postgresql://user:password@host:5432/crm_sync' "
                f"(or {variable}='sqlite:////absolute/path/crm_sync_state.db' for a local demo)."
            ) from exc

    @cached_property
    def url(self) -> sa.URL:
        return state_url(self._connection)

    @cached_property
    def policy(self) -> RetryPolicy:
        return policy_from_extras(self._connection.extra_dejson)

    @cached_property
    def engine(self) -> sa.Engine:
        log.info("sync state: %s (connection %s)", self.url.render_as_string(hide_password=True), self.state_conn_id)
        return create_state_engine(self.url)

    def get_store(self) -> SyncStateStore:
        """The store, its tables created on the first call of this hook."""
        return self._store

    @cached_property
    def _store(self) -> SyncStateStore:
        store = SyncStateStore(self.engine, self.policy)
        store.create_schema()
        return store

    def test_connection(self) -> tuple[bool, str]:
        """Reach the database and count the retry queue (Airflow's connection test)."""
        try:
            sizes = self.get_store().queue_size()
        except Exception as exc:  # the UI shows the reason instead of a stack trace
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"sync state reachable ({self.engine.dialect.name}); retry queue {sizes}"
