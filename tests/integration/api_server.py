"""Airflow's real api-server in the test's private AIRFLOW_HOME, on a free port, with the simple auth manager."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.integration.airflow_project import AirflowProject
from tests.local_services import free_port


@dataclass(frozen=True)
class ApiServer:
    url: str
    username: str
    password: str


@contextmanager
def api_server(project: AirflowProject, env: dict[str, str], logs: Path) -> Iterator[ApiServer]:
    """`airflow api-server` (one worker) with user `admin` (role admin); its generated password is read back."""
    port = free_port()
    passwords = project.home / "simple_auth_manager_passwords.json.generated"
    server_env = project.env(
        {
            **env,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    with (logs / "api-server.log").open("w") as log:
        process = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"api-server exited:\n{(logs / 'api-server.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok and passwords.exists():
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or too busy to answer in 2 s
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"api-server not up in 180 s:\n{(logs / 'api-server.log').read_text()[-3000:]}")
        yield ApiServer(url, "admin", json.loads(passwords.read_text())["admin"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
