"""The deployment shape in docker-compose.yaml: CeleryExecutor on PostgreSQL and Redis, the project mounted,
every long-running service health-checked and started in order. `make test` also validates the file with
Debian's docker-compose (`config -q`); this reads what that cannot judge."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
LONG_RUNNING = ["postgres", "redis", *AIRFLOW_SERVICES]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source of a service's short-syntax volumes (sources may hold `${VAR:-x}`)."""
    parsed = (re.fullmatch(r"(.+):(/[^:]+)(?::ro|:rw)?", volume) for volume in service["volumes"])
    return {match.group(2): match.group(1) for match in parsed}


def broker_db(url: str) -> int:
    """Celery's broker URL names its database in the path."""
    return int(urlparse(url).path.lstrip("/") or 0)


def hook_db(uri: str) -> int:
    """The database RedisHook selects for a connection URI: its `db` extra (RedisHook ignores the URI's path)."""
    from airflow.models.connection import Connection

    return int(Connection(uri=uri).extra_dejson.get("db") or 0)


def test_every_component_of_a_celery_deployment_is_there(services) -> None:
    expected = {"postgres", "redis", "airflow-init", "sandbox", *AIRFLOW_SERVICES}
    assert set(services) == expected
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "airflow-init"])
def test_airflow_services_run_celery_on_postgres_and_redis(services, name) -> None:
    env = services[name]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:airflow@postgres/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["PYTHONPATH"].split(":") == ["/opt/airflow", "/opt/airflow/plugins"]


def test_broker_and_rate_limit_pool_share_redis_on_separate_dbs(services) -> None:
    env = services["airflow-worker"]["environment"]
    broker, pool = env["AIRFLOW__CELERY__BROKER_URL"], env["AIRFLOW_CONN_REDIS_DEFAULT"]
    assert urlparse(broker).hostname == urlparse(pool).hostname == "redis"
    assert broker_db(broker) != hook_db(pool)


def test_redis_keeps_queued_events_across_restarts_and_memory_pressure(services) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "/data" in mounts(services["redis"])


def test_sync_state_is_its_own_database_created_by_the_postgres_service(services) -> None:
    env = services["airflow-worker"]["environment"]
    state = urlparse(env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"])
    metadata = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (state.scheme, state.hostname) == ("postgres", "postgres")
    assert state.path != metadata.path
    init_scripts = [
        ROOT / source
        for target, source in mounts(services["postgres"]).items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    ]
    created = {m for path in init_scripts for m in re.findall(r"CREATE DATABASE (\w+)", path.read_text())}
    assert state.path.lstrip("/") in created


def test_image_is_built_from_the_official_image_with_the_pinned_requirements(services) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2\b", dockerfile, re.M)
    assert "-r /opt/airflow/project-requirements/requirements.txt" in dockerfile
    assert "-c /opt/airflow/project-requirements/constraints.txt" in dockerfile
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        assert services[name]["build"] == ".", name
        assert not services[name]["environment"].get("_PIP_ADDITIONAL_REQUIREMENTS"), name


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "airflow-init"])
def test_project_folders_are_mounted_where_airflow_looks(services, name) -> None:
    targets = mounts(services[name])
    for folder in ("dags", "plugins", "include"):
        assert targets[f"/opt/airflow/{folder}"].endswith(f"/{folder}"), folder
        assert (ROOT / folder).is_dir()
    # Every worker reads and writes the same staged run data when staging is on local disk.
    default_base = re.fullmatch(r"\$\{\w+:-(.+)\}", services[name]["environment"]["AIRFLOW__CRM_SYNC__STAGING_BASE"])
    assert targets[urlparse(default_base.group(1)).path] == "staging"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthchecks(services, name) -> None:
    check = services[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["retries"] > 0


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_start_after_healthy_backends_and_a_finished_init(services, name) -> None:
    depends = services[name]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"


def test_workers_are_scalable_and_wait_for_the_api_server(services) -> None:
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_init_migrates_creates_the_admin_and_the_pools(services) -> None:
    init = services["airflow-init"]
    script = init["command"][-1]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "/entrypoint airflow version" in script  # the entrypoint migrates and creates the user
    assert re.search(r"airflow pools set crm_sync_hubspot \d+", script)
    assert re.search(r"airflow pools set crm_sync_salesforce \d+", script)


def test_sandboxes_are_an_optional_profile(services) -> None:
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in services[name] for name in LONG_RUNNING)
