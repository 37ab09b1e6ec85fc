"""Shared fixtures: real services started as processes on loopback for the test session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local_services import postgres_cluster, redis_server

ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its settings at import: give the test session a private, throwaway Airflow home
# with the project wired as in CONTRACT.md, before any test module imports airflow. Always a new one:
# pytest-xdist workers inherit the controller's environment, and no two sessions should share a home.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="crm-sync-airflow-home-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (`make test`) hands out the heaviest work first (tests/xdist_order.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.xdist_order import HeaviestFirstScheduling

    return HeaviestFirstScheduling(config, log)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port, private to this test session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL cluster, private to this test session (tests/local_services.py: initdb, loopback, trust),
    with connections enough for a whole Airflow (scheduler, api-server, dag-processor, triggerer, workers)."""
    with postgres_cluster(max_connections=300) as url:
        yield url
