"""The sync against the naive per-record script, on the same generated data, in the same run.

For one window of N contacts a side (both sandboxes seeded from the same seed each time):
  1. the DAG (`airflow dags test`, real Redis pool) -> API calls by endpoint, per synced record, against
     the theoretical minimum for batched writes, and the achieved HubSpot request rate against the allowed;
  2. the naive approach (the seed script's shape: one lookup and one write per contact, a fixed one-second
     limiter, retry on 429) with the same real clients -> calls and wall time;
and prints the ratios.

    .venv/bin/python benchmarks/bench_sync.py --contacts 1000 --requests-per-10s 100
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from benchmarks.crm_bench import T, dag_env, endpoint_calls, naive_sync, stats  # noqa: E402
from sandbox.testing import SandboxProcess, start_sandbox  # noqa: E402
from tests.integration.airflow_project import AirflowProject  # noqa: E402


def sandbox_for(tmp: Path, name: str, args: argparse.Namespace) -> SandboxProcess:
    return start_sandbox(
        tmp / name,
        contacts=args.contacts,
        seed=args.seed,
        clock=(T - timedelta(seconds=30)).isoformat(),
        window_minutes=14,
        hubspot_requests_per_10s=args.requests_per_10s,
        hubspot_search_requests_per_s=args.search_per_s,
    )


def run_dag(tmp: Path, sandbox: SandboxProcess, redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    project = AirflowProject(tmp / "airflow")
    project.migrate()
    # The sandboxes start fresh, so the sync state does too: a SQLite file, as `make sync` uses.
    env = dag_env(
        sandbox,
        redis_url,
        f"sqlite:///{tmp / 'sync-state.db'}",
        requests_per_10s=args.requests_per_10s,
        search_per_s=args.search_per_s,
    )
    run = project.dags_test(T.isoformat(), env=env)
    if run.returncode != 0 or run.report is None:
        raise SystemExit(f"DAG run failed:\n{run.log[-4000:]}")
    return {"seconds": run.seconds, "report": run.report}


def minimum_calls(report: dict[str, Any]) -> int:
    """Fewest requests the batched writes could take: ceil(records / batch size) per target and action."""
    sizes = {"hubspot": 100, "salesforce": 200}
    records: Counter[tuple[str, str]] = Counter()
    for key, count in report["outcomes"].items():
        target, action, _status = key.split(".")
        records[target, action] += count
    return sum(math.ceil(count / sizes[target]) for (target, _action), count in records.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--requests-per-10s", type=int, default=100)
    parser.add_argument("--search-per-s", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="only the DAG (e.g. to measure a strict limit)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    redis_port = 6391
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        with sandbox_for(tmp, "dag", args) as sandbox:
            dag = run_dag(tmp, sandbox, f"redis://127.0.0.1:{redis_port}/0", args)
            dag_stats = stats(sandbox)
        naive, naive_stats = {"seconds": 0.0, "outcome": {}}, {"salesforce": {}, "hubspot": {}}
        if not args.no_naive:
            with sandbox_for(tmp, "naive", args) as sandbox:
                naive = naive_sync(sandbox, per_second=max(1, args.requests_per_10s // 10))
                naive_stats = stats(sandbox)
    finally:
        redis.terminate()
    report = dag["report"]
    synced = sum(count for key, count in report["outcomes"].items() if key.endswith(".ok") and ".link." not in key)
    dag_calls, naive_calls = endpoint_calls(dag_stats), endpoint_calls(naive_stats)
    naive_synced = sum(v for k, v in naive["outcome"].items() if k.endswith(("create", "update")))
    print(f"contacts a side: {args.contacts}; HubSpot limit {args.requests_per_10s}/10 s, search {args.search_per_s}/s")
    print(f"\n{'endpoint':70s} {'DAG':>7s} {'naive':>7s}")
    for endpoint in sorted(set(dag_calls) | set(naive_calls)):
        print(f"{endpoint:70s} {dag_calls[endpoint]:7d} {naive_calls[endpoint]:7d}")
    dag_total, naive_total = sum(dag_calls.values()), sum(naive_calls.values())
    print(f"{'total':70s} {dag_total:7d} {naive_total:7d}")
    print(
        f"\nDAG: {synced} records written ({report['outcomes']}), {dag_total} API calls, "
        f"{dag_total / max(synced, 1):.3f} per record"
    )
    write_calls = sum(
        n
        for e, n in dag_calls.items()
        if any(w in e for w in ("batch/upsert", "batch/update", "batch/create", "composite/sobjects"))
    )
    print(f"DAG write calls {write_calls} against a theoretical minimum of {minimum_calls(report)}")
    hs_total = dag_stats["hubspot"]["total"]
    span = max(hs_total["last_at"] - hs_total["first_at"], 1e-9)
    print(
        f"DAG HubSpot: {hs_total['requests']} requests in {span:.1f} s = {hs_total['requests'] / span:.2f}/s "
        f"against {args.requests_per_10s} allowed in any 10 s ({args.requests_per_10s / 10:.2f}/s sustained; a "
        f"span under 10 s may burst above it), {hs_total['429']} answered 429"
    )
    handled = sum(dag_stats[system]["total"]["handler_seconds"] for system in dag_stats)
    print(
        f"sandboxes' own handling time during the DAG run: {handled:.2f} s of {dag['seconds']:.1f} s "
        f"({100 * handled / dag['seconds']:.1f}% of the run's wall time)"
    )
    if args.no_naive:
        return
    print(
        f"naive: {naive_synced} records written ({naive['outcome']}), {naive_total} API calls, "
        f"{naive_total / max(naive_synced, 1):.3f} per record, "
        f"{naive_stats['hubspot']['total']['429']} HubSpot 429s"
    )
    print(
        f"\nwall time: DAG {dag['seconds']:.1f} s (incl. ~8 s Airflow start-up) vs naive {naive['seconds']:.1f} s "
        f"-> naive/DAG {naive['seconds'] / dag['seconds']:.1f}x"
    )
    print(
        f"API calls: naive/DAG {naive_total / max(dag_total, 1):.1f}x; per record naive/DAG "
        f"{(naive_total / max(naive_synced, 1)) / (dag_total / max(synced, 1)):.1f}x"
    )


if __name__ == "__main__":
    main()
