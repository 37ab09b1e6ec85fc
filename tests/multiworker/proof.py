"""Multi-worker proof, without Docker: the deployment shape as local processes.

PostgreSQL (metadata DB and sync-state DB), Redis (Celery broker db 0, rate-limit pool db 1), moto's S3 as
the staging store, both CRM sandboxes with a HubSpot limit strict enough to bind (10 requests per 10 s);
Airflow's api-server, scheduler, dag-processor, triggerer and two CeleryExecutor workers. The DAG is unpaused
(its scheduled run) while a backfill of several earlier windows runs beside it. Checks: every run succeeded,
no task instance failed or needed a second try (the proof injects no fault), no contact was created twice,
the shared Redis pool made HubSpot calls wait (the runs' reports, `api.hubspot_rate_limit_waited_acquires`),
and the HubSpot sandbox, by its own count, never saw more requests in any rolling window than its limit
(its peaks, `total.rate_limits` in its admin stats) and never answered 429.

    .venv/bin/python -m tests.multiworker.proof          # or: bash scripts/multiworker_proof.sh
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sandbox.testing import SandboxProcess, start_sandbox
from tests.integration.s3_staging import S3Staging
from tests.local_services import (
    create_database,
    free_port,
    metadata_db_env,
    moto_s3_server,
    postgres_cluster,
    postgres_conn_uri,
    redis_server,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "crm_contact_sync"
WINDOW = timedelta(minutes=15)
BACKFILL_WINDOWS = 4
WORKERS = 2
HUBSPOT_PER_10S = 10  # strict enough that the pool must hold calls back (30 never bound)
CONTACTS = 600
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: The report's HubSpot pool figures the summary adds up (`api.hubspot_rate_limit_<figure>`).
POOL_FIGURES = ("acquires", "waited_acquires", "wait_seconds", "throttled_responses", "pauses", "too_long")


@dataclass
class Summary:
    runs: dict[str, str]  # run id -> state
    windows: list[str]
    failed_tasks: list[str]  # "run_id task_id" of task instances that failed for good
    retried_tasks: list[str]  # task instances that needed more than one try, with their earlier tries' states
    workers_used: dict[str, int]
    hubspot: dict[str, Any]  # the sandbox's `total` stats row, `rate_limits` (its rolling windows' peaks) included
    pool: dict[str, dict[str, Any]]  # run id -> the report's HubSpot rate-limit pool figures (None: no report)
    salesforce_requests: int
    duplicates: dict[str, int]
    seconds: float
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        states = Counter(self.runs.values())
        return [
            f"runs: {len(self.runs)} ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})",
            f"windows synced: {', '.join(self.windows)}",
            f"failed task instances: {len(self.failed_tasks)} {self.failed_tasks}",
            f"task instances with more than one try: {len(self.retried_tasks)} {self.retried_tasks}",
            f"task instances per celery worker: {self.workers_used}",
            f"hubspot: {self.hubspot['requests']} requests, {self.hubspot['429']} answered 429 "
            f"(the sandbox answers 429 to any request over its rolling limit of {HUBSPOT_PER_10S} per 10 s)",
            *(f"hubspot sandbox peak, {line}" for line in peak_lines(self.hubspot.get("rate_limits") or {})),
            pool_line(self.pool),
            f"salesforce: {self.salesforce_requests} requests",
            f"duplicates: {self.duplicates}",
            f"wall time: {self.seconds:.0f} s",
            "OK" if not self.problems else "PROBLEMS: " + "; ".join(self.problems),
        ]


def quarter_floor(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def airflow_env(
    home: Path,
    pg: str,
    redis: str,
    staging: dict[str, str],
    sandbox: SandboxProcess,
    db_prefix: str = "",
    metadata_template: str | None = None,
) -> dict[str, str]:
    """The compose file's environment, pointed at local processes; `staging` sets the staging store (e.g.
    `S3Staging.env`); `db_prefix` names the metadata and sync-state databases apart from others on `pg`;
    `metadata_template` names an already migrated metadata database on `pg` to start from a copy of
    (then `start_airflow(..., migrated=True)`)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "PYTEST_"))}
    redis_root = redis.rsplit("/", 1)[0]
    api_port = free_port()
    metadata = create_database(pg, f"{db_prefix}airflow", template=metadata_template)
    env = {
        **base,
        **{k: v for k, v in sandbox.env.items() if k.startswith("AIRFLOW_CONN_")},
        **staging,
        "REQUESTS_CA_BUNDLE": sandbox.ca_bundle,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        **metadata_db_env(metadata),
        "AIRFLOW__CELERY__BROKER_URL": f"{redis_root}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": "multiworker-proof-shared-secret",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW_CONN_REDIS_DEFAULT": f"{redis_root}/1",
        "AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT": postgres_conn_uri(create_database(pg, f"{db_prefix}crm_sync_state")),
    }
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    out = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def start(stack: ExitStack, env: dict[str, str], logs: Path, name: str, *args: str) -> None:
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen([AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    stack.callback(stop)


def start_airflow(
    stack: ExitStack, env: dict[str, str], logs: Path, workers: int, deadline: float, migrated: bool = False
) -> None:
    """Migrate the metadata DB and create the load pools (unless `migrated`: a copy of a database that has both),
    start the api-server, scheduler, dag-processor, triggerer and `workers` Celery workers (stopped when `stack`
    closes), wait until the DAG is parsed, and unpause it."""
    if not migrated:
        airflow(env, "db", "migrate", timeout=600)
        airflow(env, "pools", "set", "crm_sync_hubspot", "4", "HubSpot load tasks")
        airflow(env, "pools", "set", "crm_sync_salesforce", "4", "Salesforce load tasks")
    start(stack, env, logs, "api-server", "api-server")
    start(stack, env, logs, "scheduler", "scheduler")
    start(stack, env, logs, "dag-processor", "dag-processor")
    start(stack, env, logs, "triggerer", "triggerer")
    for n in range(1, workers + 1):
        worker_env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        hostname = f"worker{n}@%h"
        start(
            stack,
            worker_env,
            logs,
            f"worker{n}",
            "celery",
            "worker",
            "--celery-hostname",
            hostname,
            "--concurrency",
            "4",
        )
    wait_for_port(int(env["AIRFLOW__API__PORT"]), 120, "api-server")
    # Read from the metadata DB: each `airflow dags list` would cost an Airflow start-up (seconds of CPU).
    parsed = "SELECT count(*) FROM dag JOIN serialized_dag USING (dag_id) WHERE dag.dag_id = :dag"
    while not metadata_rows(env, parsed)[0][0]:
        if time.monotonic() > deadline:
            raise TimeoutError("the dag-processor never parsed the DAG")
        time.sleep(0.5)
    airflow(env, "dags", "unpause", DAG_ID)


def list_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    """The DAG's runs, from the metadata DB (the CLI's JSON output can carry log lines)."""
    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT run_id, logical_date, state, run_type FROM dag_run WHERE dag_id = :dag"), {"dag": DAG_ID}
        ).mappings()
        runs = [{**row, "logical_date": row["logical_date"].astimezone(UTC).isoformat()} for row in rows]
    engine.dispose()
    return runs


def metadata_rows(env: dict[str, str], query: str) -> list[Any]:
    """Rows of one query on the metadata DB, `:dag` bound to the DAG id."""
    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query), {"dag": DAG_ID}).all()
    engine.dispose()
    return list(rows)


def failed_tasks(env: dict[str, str]) -> list[str]:
    """Task instances that failed for good; a run can still succeed without them (e.g. a non-leaf task's
    failure that its downstream trigger rule tolerates), so they are checked on their own."""
    rows = metadata_rows(env, "SELECT run_id, task_id FROM task_instance WHERE dag_id = :dag AND state = 'failed'")
    return sorted(f"{run_id} {task_id}" for run_id, task_id in rows)


def wait_for_runs(env: dict[str, str], expected: set[str], deadline: float) -> list[dict[str, Any]]:
    """Poll until every expected logical date has a run, a scheduled run exists, and none is queued or running."""
    while True:
        runs = list_runs(env)
        dates = {run["logical_date"][:16] for run in runs}
        scheduled = any(run["run_type"] == "scheduled" for run in runs)
        if expected <= dates and scheduled and all(run["state"] in ("success", "failed") for run in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs not finished in time: {[(r['run_id'], r['state']) for r in runs]}")
        time.sleep(1)


def duplicate_counts(sandbox: SandboxProcess) -> dict[str, int]:
    """People held twice: a Salesforce email (case-folded) or a link value on more than one live record."""
    sf = [row for row in sandbox.admin("salesforce", "GET", "records").json()["contacts"] if not row["IsDeleted"]]
    hs = [row for row in sandbox.admin("hubspot", "GET", "records").json()["contacts"] if not row["archived"]]

    def extra(values: list[str | None]) -> int:
        return sum(n - 1 for n in Counter(v for v in values if v).values())

    return {
        "salesforce_email": extra([(row["Email"] or "").strip().lower() for row in sf]),
        "salesforce_link": extra([row["HubSpot_Contact_Id__c"] for row in sf]),
        "hubspot_link": extra([row["properties"].get("salesforce_contact_id") for row in hs]),
    }


def peak_lines(rate_limits: dict[str, dict[str, Any]]) -> list[str]:
    """The sandbox's own busiest rolling interval per limit, against the limit."""
    return [
        f"{name}: {peak['peak_offered']} requests asked, {peak['peak_admitted']} admitted in the busiest rolling "
        f"{peak['window_seconds']:g} s; limit {peak['limit']}"
        for name, peak in sorted(rate_limits.items())
    ]


def pool_line(pool: dict[str, dict[str, Any] | None]) -> str:
    reports = {run_id: stat for run_id, stat in pool.items() if stat is not None}
    total = {key: sum(stat.get(key, 0) for stat in reports.values()) for key in POOL_FIGURES}
    longest = max((stat.get("max_wait_seconds", 0) for stat in reports.values()), default=0)
    return (
        f"hubspot rate-limit pool (runs' reports, {len(reports)} of {len(pool)}): {total['waited_acquires']} of "
        f"{total['acquires']} acquires waited ({total['wait_seconds']:.1f} s, longest {longest} s), 429s "
        f"{total['throttled_responses']}, pauses {total['pauses']}, deferred {total['too_long']}; waits per run "
        + str({run_id: (stat or {}).get("waited_acquires") for run_id, stat in sorted(pool.items())})
    )


def retried_tasks(env: dict[str, str]) -> list[str]:
    """Task instances that took more than one try, even when the last one succeeded (a retry hides a failure
    from the run's state and from `failed_tasks`); earlier tries' states come from task_instance_history."""
    columns = "run_id, task_id, map_index, try_number, state"
    current = metadata_rows(env, f"SELECT {columns} FROM task_instance WHERE dag_id = :dag AND try_number > 1")
    earlier = metadata_rows(env, f"SELECT {columns} FROM task_instance_history WHERE dag_id = :dag ORDER BY try_number")
    history: dict[tuple[str, str, int], list[str]] = {}
    for run_id, task_id, map_index, try_number, state in earlier:
        history.setdefault((run_id, task_id, map_index), []).append(f"try {try_number} {state}")
    return sorted(
        f"{run_id} {task_id}{f'[{map_index}]' if map_index >= 0 else ''} try {try_number} {state} "
        f"(earlier: {', '.join(history.get((run_id, task_id, map_index), [])) or 'not in history'})"
        for run_id, task_id, map_index, try_number, state in current
    )


def pool_stats(env: dict[str, str], run_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each run's HubSpot rate-limit pool figures, from its report (the `report` task's XCom): the pool's
    `waited_acquires`, `wait_seconds` ... as `api.hubspot_rate_limit_<figure>`. None for a run without one."""
    rows = metadata_rows(
        env,
        "SELECT run_id, value FROM xcom "
        "WHERE dag_id = :dag AND task_id = 'report' AND key = 'return_value' AND map_index = -1",
    )
    pools: dict[str, dict[str, Any] | None] = dict.fromkeys(run_ids)
    prefix = "hubspot_rate_limit_"
    for run_id, value in rows:
        report = json.loads(value) if isinstance(value, str | bytes) else value
        api = (report or {}).get("api") or {}
        pools[run_id] = {key.removeprefix(prefix): figure for key, figure in api.items() if key.startswith(prefix)}
    return pools


def tasks_per_worker(logs: Path) -> dict[str, int]:
    """How many task workloads each Celery worker received (its own log)."""
    return {
        path.stem: path.read_text(errors="replace").count("] received") for path in sorted(logs.glob("worker*.log"))
    }


def run_proof(workdir: Path, timeout: float = 1500) -> Summary:
    started = time.monotonic()
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The backfill takes BACKFILL_WINDOWS windows (logical dates first ... end - 2 windows); the scheduler adds
    # the DAG's scheduled run for a later window once unpaused. Seeded contacts span all of them.
    end = quarter_floor(datetime.now(UTC))
    first = end - (BACKFILL_WINDOWS + 1) * WINDOW
    backfilled = {(first + n * WINDOW).isoformat()[:16] for n in range(BACKFILL_WINDOWS)}
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_cluster(max_connections=300))
        redis = stack.enter_context(redis_server(workdir))
        s3 = S3Staging.create(stack.enter_context(moto_s3_server(logs / "moto.log")), "crm-sync-multiworker")
        # Seeded contacts are modified from the first window on, until 30 s before the last quarter hour.
        sandbox = stack.enter_context(
            start_sandbox(
                workdir / "sandbox",
                contacts=CONTACTS,
                seed=21,
                clock=(end - timedelta(seconds=30)).isoformat(),
                window_minutes=(end - first).total_seconds() / 60 - 1,
                hubspot_requests_per_10s=HUBSPOT_PER_10S,
            )
        )
        seeded_email_duplicates = duplicate_counts(sandbox)["salesforce_email"]
        env = airflow_env(workdir / "airflow-home", pg, redis, s3.env, sandbox)
        deadline = time.monotonic() + timeout
        start_airflow(stack, env, logs, WORKERS, deadline)
        last = first + (BACKFILL_WINDOWS - 1) * WINDOW
        backfill = ["--from-date", first.isoformat(), "--to-date", last.isoformat()]
        airflow(env, "backfill", "create", "--dag-id", DAG_ID, *backfill, "--max-active-runs", "2")
        runs = wait_for_runs(env, backfilled, deadline)
        hubspot_total = sandbox.admin("hubspot", "GET", "stats").json()["total"]  # rate_limits: the peaks
        salesforce_total = sandbox.admin("salesforce", "GET", "stats").json()["total"]
        duplicates = duplicate_counts(sandbox)
        duplicates["salesforce_email"] -= seeded_email_duplicates
        summary = Summary(
            runs={run["run_id"]: run["state"] for run in runs},
            windows=sorted(run["logical_date"][:16] for run in runs),
            failed_tasks=failed_tasks(env),
            retried_tasks=retried_tasks(env),
            workers_used=tasks_per_worker(logs),
            hubspot=hubspot_total,
            pool=pool_stats(env, [run["run_id"] for run in runs]),
            salesforce_requests=salesforce_total["requests"],
            duplicates=duplicates,
            seconds=time.monotonic() - started,
        )
    if any(state != "success" for state in summary.runs.values()):
        summary.problems.append("a run did not succeed")
    if summary.failed_tasks:
        summary.problems.append("task instances failed")
    if summary.retried_tasks:
        summary.problems.append("task instances needed a retry (the proof injects no fault)")
    if not backfilled <= set(summary.windows):
        summary.problems.append(f"backfilled windows missing: {sorted(backfilled - set(summary.windows))}")
    if not any(run_id.startswith("scheduled__") for run_id in summary.runs):
        summary.problems.append("no scheduled run")
    if any(summary.duplicates.values()):
        summary.problems.append("duplicates created")
    if summary.hubspot["429"]:
        summary.problems.append("HubSpot answered 429: its limit was exceeded")
    summary.problems.extend(limit_problems(summary.hubspot.get("rate_limits")))
    missing = sorted(run_id for run_id, stat in summary.pool.items() if stat is None)
    if missing:
        summary.problems.append(f"runs without a report: {missing}")
    if not sum((stat or {}).get("waited_acquires", 0) for stat in summary.pool.values()):
        summary.problems.append("the HubSpot rate-limit pool never waited: the limit did not bind, so proves nothing")
    if sum(1 for n in summary.workers_used.values() if n) < WORKERS:
        summary.problems.append("fewer Celery workers ran tasks than were started")
    return summary


def limit_problems(rate_limits: dict[str, dict[str, Any]] | None) -> list[str]:
    """The sandbox's peaks against its limits: more asked than the limit means the workers together outran it."""
    if not rate_limits or "requests_per_10s" not in rate_limits:
        return ["the HubSpot sandbox reported no rate-limit peaks"]
    problems = []
    configured = rate_limits["requests_per_10s"]["limit"]
    if configured != HUBSPOT_PER_10S:
        problems.append(f"the HubSpot sandbox's 10 s limit is {configured}, not {HUBSPOT_PER_10S}")
    for name, peak in sorted(rate_limits.items()):
        if max(peak["peak_offered"], peak["peak_admitted"]) > peak["limit"]:
            problems.append(
                f"HubSpot {name}: {peak['peak_offered']} requests in a rolling {peak['window_seconds']:g} s, "
                f"over the limit of {peak['limit']}"
            )
    return problems


def main() -> int:
    # A SIGTERM unwinds like an exception, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="crm-sync-multiworker-"))
    summary = run_proof(workdir)
    print("\n".join(summary.lines()))
    print(f"logs: {workdir / 'logs'}")
    return 0 if not summary.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
