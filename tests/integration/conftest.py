"""Integration fixtures: the CRM sandboxes as real processes, and the real Airflow with a SQLite metadata DB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from sandbox.testing import SandboxProcess, start_sandbox
from tests.integration.airflow_project import AirflowProject


@pytest.fixture(scope="session")
def airflow_project(tmp_path_factory: pytest.TempPathFactory) -> AirflowProject:
    project = AirflowProject(tmp_path_factory.mktemp("airflow-project"))
    project.migrate()
    return project


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


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The session's redis-server, emptied: each test starts with a fresh rate-limit pool."""
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def crm_env(sandbox: SandboxProcess, redis_url: str) -> dict[str, str]:
    """The connections a DAG run needs: both sandboxes (and their CA) and the test Redis."""
    env = {key: value for key, value in sandbox.env.items() if key.startswith("AIRFLOW_CONN_")}
    env["REQUESTS_CA_BUNDLE"] = sandbox.ca_bundle
    env["AIRFLOW_CONN_REDIS_DEFAULT"] = redis_url
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
