"""Benchmark: the sync-state store at full-resync size, on PostgreSQL and on SQLite.

For N pairs with 7 canonical fields each: merge_snapshots into an empty store (inserts), again with
3 changed fields per pair (the in-database JSON merge), read_snapshots by all N Salesforce ids, by all
N HubSpot ids, and read_all_snapshots. Each database runs in its own child process, so each peak RSS
is its own. PostgreSQL is a private cluster started for the run (as the tests do) unless --postgres-url.

    .venv/bin/python benchmarks/bench_state.py [--pairs 200000] [--databases postgresql sqlite]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import pandas as pd  # noqa: E402

from crm_sync.state.engine import create_state_engine  # noqa: E402
from crm_sync.state.schema import metadata  # noqa: E402
from crm_sync.state.store import SyncStateStore  # noqa: E402

FIELDS = ["email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company"]


def pairs_frame(n: int, *, changed: bool) -> pd.DataFrame:
    """N linked pairs; all 7 fields, or (changed) 3 of them with new values."""
    if changed:
        values = [{"firstname": f"Ann{i}", "phone": f"+1 555 {i:07d}", "jobtitle": None} for i in range(n)]
    else:
        values = [
            {
                "email": f"contact{i}@example.com",
                "firstname": "Ann",
                "lastname": f"Lee-{i}",
                "phone": f"+1 415 {i:07d}",
                "mobilephone": None,
                "jobtitle": "Head of Operations",
                "company": "Acme Widgets",
            }
            for i in range(n)
        ]
    return pd.DataFrame(
        {
            "salesforce_id": [f"003{i:015d}" for i in range(n)],
            "hubspot_id": [str(10_000_000 + i) for i in range(n)],
            "field_values": [json.dumps(value) for value in values],
        }
    )


def measure(url: str, n: int) -> dict[str, Any]:
    """Run every step once against `url` (tables dropped first and after); seconds and rows/s per step."""
    engine = create_state_engine(url)
    metadata.drop_all(engine)
    store = SyncStateStore(engine)
    store.create_schema()
    first, second = pairs_frame(n, changed=False), pairs_frame(n, changed=True)
    steps: dict[str, float] = {}

    def timed(name: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = action()
        steps[name] = time.perf_counter() - start
        return result

    timed("merge_snapshots (insert)", lambda: store.merge_snapshots(first, run_id="bench-1"))
    timed("merge_snapshots (merge 3 fields)", lambda: store.merge_snapshots(second, run_id="bench-2"))
    by_sf = timed(
        "read_snapshots (salesforce ids)", lambda: store.read_snapshots(salesforce_ids=first["salesforce_id"])
    )
    by_hs = timed("read_snapshots (hubspot ids)", lambda: store.read_snapshots(hubspot_ids=first["hubspot_id"]))
    everything = timed("read_all_snapshots", store.read_all_snapshots)
    assert len(by_sf) == len(by_hs) == len(everything) == n
    middle = n // 2
    merged = json.loads(everything.set_index("salesforce_id").loc[f"003{middle:015d}", "field_values"])
    assert set(merged) == set(FIELDS) and merged["phone"] == f"+1 555 {middle:07d}", merged
    metadata.drop_all(engine)
    engine.dispose()
    return {
        "pairs": n,
        "steps": {
            name: {"seconds": round(seconds, 2), "rows_per_s": round(n / seconds)} for name, seconds in steps.items()
        },
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_child(url: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, "--pairs", str(n)], stdout=subprocess.PIPE, text=True, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--databases", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql", "sqlite"])
    parser.add_argument("--postgres-url", help="an existing database (its crm_sync_* tables are dropped!)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.pairs)))
        return 0
    with ExitStack() as stack:
        urls = {}
        if "postgresql" in args.databases:
            if args.postgres_url:
                urls["postgresql"] = args.postgres_url
            else:
                from tests.local_services import postgres_cluster

                urls["postgresql"] = stack.enter_context(postgres_cluster())
        if "sqlite" in args.databases:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-state-"))
            urls["sqlite"] = f"sqlite:///{folder}/state.db"
        for name, url in urls.items():
            result = run_child(url, args.pairs)
            print(
                f"{name}: {result['pairs']:,} pairs, {len(FIELDS)} fields each, peak RSS {result['peak_rss_mib']} MiB"
            )
            for step, figures in result["steps"].items():
                print(f"  {step:<34} {figures['seconds']:>7.2f} s  {figures['rows_per_s']:>9,} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
