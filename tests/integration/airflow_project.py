"""Runs the real DAG with `airflow dags test` in a private Airflow home (the tests give it a PostgreSQL metadata DB),
as a user would; the tests' projects fork those runs from a warm Airflow process (`warm_airflow`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.warm_airflow import WarmAirflow
from tests.local_services import metadata_db_env

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "crm_contact_sync"


@dataclass
class DagRun:
    """What one `airflow dags test` left behind."""

    returncode: int
    log: str
    seconds: float
    staging: Path
    report: dict[str, Any] | None = field(default=None)


class AirflowProject:
    """The project root as the Airflow project, with its own AIRFLOW_HOME; connections come from env.

    The metadata DB is `metadata_url` (a SQLAlchemy psycopg URL of an empty PostgreSQL database), else a
    SQLite file in the home (benchmarks read theirs directly). With `warm`, `dags_test` forks its runs from a warm
    Airflow process started at the first run (the benchmarks keep a process of its own a run: they measure it).
    """

    def __init__(self, home: Path, metadata_url: str | None = None, *, warm: bool = False) -> None:
        self.home = home
        self.metadata_url = metadata_url or f"sqlite:///{home / 'airflow.db'}"
        self.home.mkdir(parents=True, exist_ok=True)
        self._runs = 0
        self._warm = warm
        self._server: WarmAirflow | None = None

    def close(self) -> None:
        """Stop the warm Airflow process, if one was started."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "PYTEST_"))
        }
        base.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PYTHONPATH=f"{ROOT}:{ROOT / 'plugins'}",
            **metadata_db_env(self.metadata_url),
        )
        base.update(extra or {})
        return base

    def airflow(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 600) -> str:
        out = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env(extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def migrate(self) -> None:
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "crm_sync_hubspot", "4", "HubSpot load tasks")
        self.airflow("pools", "set", "crm_sync_salesforce", "4", "Salesforce load tasks")

    def dags_test(
        self,
        logical_date: str,
        conf: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 900,
        staging_base: str | None = None,
        watch: Callable[[int], AbstractContextManager[Any]] | None = None,
        dag_id: str = DAG_ID,
    ) -> DagRun:
        """One run; each gets its own local staging base so its report is easy to find, unless `staging_base`
        (e.g. an s3:// URL) is given: then `report` stays None and the caller reads the store. `watch` gets the
        `airflow dags test` process id and is entered while the process runs (a benchmark's memory sampler)."""
        self._runs += 1
        staging = self.home / f"staging-{self._runs:03d}"
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["-c", json.dumps(conf)]
        run_env = self.env({**(env or {}), "AIRFLOW__CRM_SYNC__STAGING_BASE": staging_base or f"file://{staging}"})
        started = time.perf_counter()
        if self._warm and self._server is None:
            self._server = WarmAirflow(self.env(), ROOT, self.home / "warm-airflow.log")
        if self._server is not None and self._server.serves(run_env):
            log_path = self.home / f"dags-test-{self._runs:03d}.log"
            on_start = watch or (lambda pid: nullcontext())
            returncode = self._server.run(args, run_env, log_path, timeout, on_start)
            log = log_path.read_text()
        else:
            returncode, log = self._run_process(args, run_env, timeout, watch)
        reports = sorted(staging.glob(f"{dag_id}/*/report.json"))
        return DagRun(
            returncode=returncode,
            log=log,
            seconds=time.perf_counter() - started,
            staging=staging,
            report=json.loads(reports[-1].read_text()) if reports else None,
        )

    @staticmethod
    def _run_process(
        args: list[str],
        env: dict[str, str],
        timeout: float,
        watch: Callable[[int], AbstractContextManager[Any]] | None,
    ) -> tuple[int, str]:
        """`airflow <args>` as a process of its own: its exit code and output."""
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with watch(proc.pid) if watch else nullcontext():
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        return proc.returncode, stdout + stderr
