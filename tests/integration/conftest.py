"""Integration fixtures: the CRM sandboxes as real processes, and the real Airflow with a PostgreSQL metadata DB."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from sandbox.testing import SandboxProcess, start_sandbox
from tests.integration.airflow_project import AirflowProject
from tests.integration.s3_staging import S3Staging
from tests.local_services import create_database, moto_s3_server, postgres_conn_uri


@pytest.fixture(scope="session")
def airflow_metadata_template(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> str:
    """The name of a metadata database on the session's PostgreSQL that `airflow db migrate` and the load pools
    were applied to once; projects start from a copy of it (CREATE DATABASE ... TEMPLATE copies files in well
    under a second, where a migration and the pool commands take three Airflow CLI runs)."""
    name = "airflow_migrated_template"
    url = create_database(postgres_url, name)
    AirflowProject(tmp_path_factory.mktemp("airflow-template"), metadata_url=url).migrate()
    return name


@pytest.fixture(scope="session")
def new_airflow_project(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, airflow_metadata_template: str
) -> Iterator[Callable[[], AirflowProject]]:
    """Make a migrated Airflow project with its own home and its own metadata database on the session's
    PostgreSQL, as a deployment has (SQLite is Airflow's development-only backend); its DAG runs fork from a warm
    Airflow process, stopped at the session's end."""

    made: list[AirflowProject] = []

    def make() -> AirflowProject:
        name = f"airflow_{uuid.uuid4().hex[:12]}"
        metadata = create_database(postgres_url, name, template=airflow_metadata_template)
        made.append(AirflowProject(tmp_path_factory.mktemp("airflow-project"), metadata_url=metadata, warm=True))
        return made[-1]

    yield make
    for project in made:
        project.close()


@pytest.fixture(scope="session")
def airflow_project(new_airflow_project: Callable[[], AirflowProject]) -> AirflowProject:
    return new_airflow_project()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxProcess]]:
    """Start `python -m sandbox serve` with the given options; every one started is stopped after the test."""
    started: list[SandboxProcess] = []

    def start(**opts: Any) -> SandboxProcess:
        process = start_sandbox(tmp_path / f"sandbox-{len(started)}", **opts)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server, a real process on loopback, private to this test session."""
    with moto_s3_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as endpoint:
        yield endpoint


@pytest.fixture
def s3_staging(s3_endpoint: str) -> S3Staging:
    """An empty bucket on the session's S3 server and the settings that stage a run there."""
    return S3Staging.create(s3_endpoint, f"crm-sync-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The session's redis-server, emptied: each test starts with a fresh rate-limit pool."""
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture
def new_state_conn(postgres_url: str) -> Callable[..., str]:
    """Make an empty sync-state database on the session's PostgreSQL; returns its Airflow connection URI
    (keyword arguments become connection extras, e.g. ``retry_base_minutes``)."""

    def make(**extras: Any) -> str:
        uri = postgres_conn_uri(create_database(postgres_url, f"crm_sync_state_{uuid.uuid4().hex[:12]}"))
        query = "&".join(f"{key}={value}" for key, value in extras.items())
        return uri + (f"?{query}" if query else "")

    return make


@pytest.fixture
def state_conn(new_state_conn: Callable[..., str]) -> str:
    """An empty sync-state database of this test's own."""
    return new_state_conn()


def crm_env(sandbox: SandboxProcess, redis_url: str, state_conn: str | None = None) -> dict[str, str]:
    """The connections hooks need (both sandboxes and their CA, the test Redis); a DAG run also needs a
    sync-state database (``state_conn``)."""
    env = {key: value for key, value in sandbox.env.items() if key.startswith("AIRFLOW_CONN_")}
    env["REQUESTS_CA_BUNDLE"] = sandbox.ca_bundle
    env["AIRFLOW_CONN_REDIS_DEFAULT"] = redis_url
    if state_conn:
        env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"] = state_conn
    return env


@contextmanager
def wired_sandbox(state_dir: Path, redis_url: str, db: int, clock: datetime, **opts: Any) -> Iterator[SandboxProcess]:
    """Both sandboxes with a frozen clock, exported as the Airflow connections hooks read, on a private Redis db;
    `opts` are further sandbox flags."""
    sandbox = start_sandbox(state_dir, freeze_clock=True, clock=clock.isoformat(), **opts)
    redis_db = f"{redis_url.rsplit('/', 1)[0]}/{db}"
    redis.Redis.from_url(redis_db).flushdb()
    patch = pytest.MonkeyPatch()
    for key, value in crm_env(sandbox, redis_db).items():
        patch.setenv(key, value)
    try:
        yield sandbox
    finally:
        patch.undo()
        sandbox.stop()
