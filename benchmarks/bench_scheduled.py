"""Phase 1 of `bench_scale` (an initial sync, 20,000 contacts a side, 2,000 people on both) in the deployment
shape instead of `airflow dags test`: the scheduler with CeleryExecutor workers runs independent tasks at once
(both extracts, both CRMs' loads), as it does in production.

The processes are those of the multi-worker proof (`tests/multiworker/proof.py`: PostgreSQL metadata DB,
Redis as Celery broker and rate-limit pool, api-server, scheduler, dag-processor, triggerer, N Celery workers),
with local-file staging as in `bench_scale`, the scheduler's own runs off (`[scheduler] use_job_schedule`) and
one backfill of the window ending at `crm_bench.T`. Prints one table and writes it to `--out`:

- wall: first task instance start to last task instance end (metadata DB);
- operators busy: the time at least one task was inside its operator, from each task log's end of Airflow's
  "Pre Execute" group to its "Post Execute" group: the wall time with Airflow's start-up and hand-offs
  between tasks taken out, whatever ran in parallel;
- the rate-limit floors of `bench_scale` for the calls the sandboxes counted (both buckets overlapped; the
  window read before any write).
Correctness as in `bench_scale`: every contact linked both ways to one with the same email, no duplicate.

    .venv/bin/python benchmarks/bench_scheduled.py                 # 20,000 a side, 2 workers
    .venv/bin/python benchmarks/bench_scheduled.py --contacts 2000 --overlap 200
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from benchmarks.bench_scale import (  # noqa: E402
    MINUTE,
    WINDOW,
    Calls,
    World,
    add_initial_sync_arguments,
    check_linked,
    checkout_commit,
    epoch,
    freeze_clock,
    operator_spans,
    run_clock,
    seeding,
)
from benchmarks.crm_bench import T, dag_env, reset_stats  # noqa: E402
from sandbox.testing import start_sandbox  # noqa: E402
from tests.local_services import postgres_cluster, redis_server  # noqa: E402
from tests.multiworker.proof import DAG_ID, airflow, airflow_env, list_runs, metadata_rows, start_airflow  # noqa: E402

RUN_TIMEOUT = 1800.0


def operator_interval(log: Path) -> tuple[float, float] | None:
    """(start, end) epoch seconds of a task try inside its operator (`operator_spans`), from its JSON-lines
    task log: the task runner's own events (logger `task`)."""

    def markers() -> Iterator[tuple[float, str]]:
        for line in log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("logger") == "task" and event.get("timestamp"):
                yield epoch(event["timestamp"].replace("Z", "+00:00")), str(event.get("event"))

    spans = operator_spans(markers())
    return spans[0] if spans else None


def covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of the intervals (time in which at least one of them was open)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def ratio(seconds: float, floor: float) -> str:
    return f"{seconds / floor:.2f}x" if floor else "n/a (floor 0)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_initial_sync_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (4 task slots each)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_scheduled.md")
    args = parser.parse_args()
    # A SIGTERM unwinds like an exception, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduled-"))
    logs = tmp / "logs"
    logs.mkdir()
    print(f"working in {tmp}", flush=True)
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_cluster(max_connections=300))
        redis = stack.enter_context(redis_server(tmp))
        sandbox = stack.enter_context(
            start_sandbox(
                tmp / "sandbox",
                timeout=300,
                hubspot_requests_per_10s=args.requests_per_10s,
                hubspot_search_requests_per_s=args.search_per_s,
                **seeding(args),
            )
        )
        home = tmp / "airflow-home"
        env = airflow_env(home, pg, redis, {"AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{tmp / 'staging'}"}, sandbox)
        env.update(
            dag_env(
                sandbox,
                env["AIRFLOW_CONN_REDIS_DEFAULT"],
                env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"],
                requests_per_10s=args.requests_per_10s,
                search_per_s=args.search_per_s,
            )
        )
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"  # only the backfill's run
        universe = set().union(*World.read(sandbox).emails())
        deadline = time.monotonic() + RUN_TIMEOUT
        start_airflow(stack, env, logs, args.workers, deadline)  # no CRM call: HubSpot's window stays empty
        run_clock(sandbox, T + MINUTE)
        reset_stats(sandbox)
        start = (T - WINDOW).isoformat()
        conf = json.dumps({"lookback_minutes": args.lookback_minutes})
        airflow(
            env,
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            start,
            "--to-date",
            start,
            "--dag-run-conf",
            conf,
        )
        while not (runs := list_runs(env)) or any(run["state"] not in ("success", "failed") for run in runs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run did not finish: {runs}")
            time.sleep(2)
        calls = Calls.of(sandbox)
        freeze_clock(sandbox)
        problems = check_linked(World.read(sandbox), universe, len(universe))
        problems += [f"run {run['run_id']} {run['state']}" for run in runs if run["state"] != "success"]
        rows = metadata_rows(
            env,
            "SELECT start_date, end_date FROM task_instance "
            "WHERE dag_id = :dag AND start_date IS NOT NULL AND end_date IS NOT NULL",
        )
    intervals = [
        span
        for path in sorted(home.glob("logs/dag_id=*/run_id=*/**/attempt=*.log"))
        if (span := operator_interval(path))
    ]
    wall = max(row.end_date for row in rows).timestamp() - min(row.start_date for row in rows).timestamp()
    busy = covered_seconds(intervals)
    serial = sum(end - start for start, end in intervals)
    floor, bucket = calls.floor(args)
    reading_first = calls.floor_reading_first(args)
    lines = [
        f"# bench_scheduled: an initial sync under the scheduler ({datetime.now().date()})",
        "",
        f"{args.contacts:,} contacts a side ({args.overlap:,} on both), {args.workers} Celery workers, HubSpot "
        f"{args.requests_per_10s} requests / 10 s and {args.search_per_s} searches / s; {len(rows)} task instances, "
        f"{calls.total:,} API calls, {calls.throttled} answered 429. Commit {checkout_commit()}; "
        f"{os.cpu_count()} cores.",
        "",
        "| measure | seconds | / floor "
        + f"{floor:.0f} s ({bucket}) | / floor of reading first {reading_first:.0f} s |",
        "|---|---|---|---|",
        *(
            f"| {name} | {seconds:.1f} | {ratio(seconds, floor)} | {ratio(seconds, reading_first)} |"
            for name, seconds in (
                ("wall (first task start to last task end)", wall),
                ("operators busy (at least one task in its operator)", busy),
                ("operator time summed over tasks (as `airflow dags test` runs them)", serial),
            )
        ),
        "",
        "Correct: every contact linked both ways, no duplicate." if not problems else f"WRONG: {problems}",
    ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {args.out}; logs in {tmp}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
