"""The one way the hook, the CLI and the tests open a state database (no Airflow)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_S = 30.0


def create_state_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for the state store: pooled with pre-ping; on SQLite, transactions that queue for the lock.

    pysqlite opens transactions lazily and not before DDL, so two processes could both find the tables
    missing, or both read and then deadlock on the upgrade to a write lock. SQLAlchemy's documented
    recipe hands transaction control back to SQLAlchemy, and each transaction starts with
    BEGIN IMMEDIATE: writers queue (up to the busy timeout) instead of failing.
    """
    url = sa.make_url(url)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
