"""SyncStateHook: connection URIs (sqlite, postgres), extras -> retry policy, a missing connection, a real database."""

import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowNotFoundException

from crm_sync.state.hook import SyncStateHook
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.schema import metadata


def hook_for(monkeypatch, uri, conn_id="crm_sync_state_default"):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    return SyncStateHook(conn_id)


def test_defaults():
    assert SyncStateHook.default_conn_name == "crm_sync_state_default"
    assert SyncStateHook.conn_name_attr == "state_conn_id"
    assert SyncStateHook.hook_name == "CRM sync state"
    assert SyncStateHook().state_conn_id == "crm_sync_state_default"


def test_sqlite_uri_with_an_absolute_path_opens_that_file(monkeypatch, tmp_path):
    path = tmp_path / "state.db"
    hook = hook_for(monkeypatch, f"sqlite:///{path}")
    assert hook.url.get_backend_name() == "sqlite"
    assert hook.url.database == str(path)
    assert hook.policy == RetryPolicy()
    assert hook.get_store().queue_size() == {"pending": 0, "parked": 0}
    assert set(sa.inspect(sa.create_engine(f"sqlite:///{path}")).get_table_names()) >= {
        "crm_sync_pairs",
        "crm_sync_retry_queue",
    }
    assert hook.get_store() is hook.get_store()


def test_sqlite_json_connection_with_the_path_in_host(monkeypatch, tmp_path):
    path = tmp_path / "demo.db"
    hook = hook_for(monkeypatch, f'{{"conn_type": "sqlite", "host": "{path}"}}', conn_id="state_json")
    assert hook.url.database == str(path)
    assert hook.test_connection()[0] is True


def test_postgres_uri_parts_libpq_extras_and_policy_extras(monkeypatch):
    hook = hook_for(
        monkeypatch,
        "postgres://sync:p%40ss@db.internal:5433/crm_state?sslmode=require&retry_base_minutes=5"
        "&retry_cap_minutes=120&retry_max_attempts=3&retry_lease_minutes=90&cursor=dictcursor",
    )
    url = hook.url
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "sync",
        "p@ss",
        "db.internal",
        5433,
        "crm_state",
    )
    assert dict(url.query) == {"sslmode": "require"}
    assert "p@ss" not in url.render_as_string(hide_password=True)
    assert hook.policy == RetryPolicy(base_minutes=5, cap_minutes=120, max_attempts=3, lease_minutes=90)


def test_bad_policy_extras_are_named(monkeypatch):
    hook = hook_for(monkeypatch, "postgres://h/db?retry_max_attempts=many")
    with pytest.raises(ValueError, match="retry_max_attempts"):
        _ = hook.policy


def test_other_conn_types_are_refused(monkeypatch):
    hook = hook_for(monkeypatch, "mysql://h/db")
    with pytest.raises(ValueError, match="postgres or sqlite"):
        _ = hook.url


def test_sqlite_without_a_path_is_refused(monkeypatch):
    hook = hook_for(monkeypatch, '{"conn_type": "sqlite"}')
    with pytest.raises(ValueError, match="no database file"):
        _ = hook.url


def test_a_missing_connection_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT", raising=False)
    with pytest.raises(AirflowNotFoundException, match="crm_sync_state_default") as info:
        SyncStateHook().get_store()
    assert "AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT=" in str(info.value)


def test_real_postgres_through_the_connection(monkeypatch, postgres_url):
    uri = sa.make_url(postgres_url).set(drivername="postgres").render_as_string(hide_password=False)
    hook = hook_for(monkeypatch, f"{uri}?retry_max_attempts=2")
    try:
        ok, message = hook.test_connection()
        assert ok, message
        assert "postgresql" in message
        assert hook.get_store().policy.max_attempts == 2
    finally:
        metadata.drop_all(hook.engine)
        hook.engine.dispose()


def test_unreachable_database_fails_the_connection_test(monkeypatch):
    from tests.local_services import free_port

    hook = hook_for(monkeypatch, f"postgres://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    ok, message = hook.test_connection()
    assert not ok
    assert "OperationalError" in message
