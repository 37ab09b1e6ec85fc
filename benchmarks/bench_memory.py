"""Benchmark: peak memory and time of the tasks that grow with the org, on a full resync of N contacts a side.

The data is bench_reconcile's generator (linked and unlinked pairs, one-sided edits, conflicts, bad
emails, duplicates, deletes), staged as the extract tasks stage it: Parquet parts of 5,000 rows. The sync
state lives in PostgreSQL (a private cluster started for the run). Each step runs in its own child
process calling the same functions the task does, so each peak RSS (VmHWM) is that step's own:

1. reconcile, first sync (empty state)      -> `crm_sync.partitioned.reconcile_staged`
2. plan, per target                          -> `operators.plan.target_writes` + `plan_target`
3. settle, as if every write was confirmed   -> `crm_sync.state.settling.settle_parts` (the results frame
   is built from the write decisions: ok, new ids for creates; the load itself is not run here)
4. reconcile again, with that state          -> the same full resync against a populated state.

Extract and load are bounded by construction (5,000-row pages; one shard of batches per task) and are
measured in the DAG runs, not here.

    .venv/bin/python benchmarks/bench_memory.py --contacts 1000000 [--partition-contacts 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "benchmarks")]

PART_ROWS = 5000
from bench_reconcile import generate, peak_rss_mib  # noqa: E402

STEPS = ["reconcile-first", "plan-hubspot", "plan-salesforce", "settle", "reconcile-state"]


def stage(workdir: Path, contacts: int, seed: int) -> dict[str, list[str]]:
    """Generate both sides and write them as 5,000-row parts, like the extracts."""
    from airflow.sdk import ObjectStoragePath

    from crm_sync.staging import write_frame

    sf, hs = generate(contacts, seed)
    parts: dict[str, list[str]] = {}
    for side, frame in (("salesforce", sf), ("hubspot", hs)):
        folder = ObjectStoragePath(f"file://{workdir}/extract/{side}")
        parts[side] = [
            write_frame(folder / f"part-{n:05d}.parquet", frame.iloc[start : start + PART_ROWS])
            for n, start in enumerate(range(0, len(frame), PART_ROWS))
        ]
    return parts


def child(step: str, workdir: Path, state_url: str, partition_contacts: int) -> None:
    """Run one step in this process and write its seconds and peak RSS."""
    import logging

    logging.disable(logging.INFO)  # the store logs every batch; the table is the output
    from airflow.sdk import ObjectStoragePath

    from crm_sync.state.engine import create_state_engine
    from crm_sync.state.store import SyncStateStore
    from include.sync_logic.mapping import load_mapping
    from include.sync_logic.sides import Direction, Side

    store = SyncStateStore(create_state_engine(state_url))
    parts = json.loads((workdir / "parts.json").read_text())
    mapping = load_mapping(ROOT / "include" / "mappings" / "contacts.yaml")
    started = time.perf_counter()
    extra: dict[str, object] = {}
    if step.startswith("reconcile"):
        from crm_sync.partitioned import reconcile_staged

        out = reconcile_staged(
            {Side.SALESFORCE: parts["salesforce"], Side.HUBSPOT: parts["hubspot"]},
            mapping,
            direction=Direction.BOTH,
            read_snapshots=store.read_snapshots,
            folder=ObjectStoragePath(f"file://{workdir}/{step}"),
            partition_contacts=partition_contacts,
        )
        (workdir / f"{step}.parts.json").write_text(json.dumps({"decisions": out.decisions, "baseline": out.baseline}))
        extra = {"partitions": out.partitions, "decisions": sum(out.counts.values()), "snapshots": out.snapshots_read}
    elif step.startswith("plan"):
        from crm_sync.operators.plan import target_writes
        from include.sync_logic.plan import plan_target

        first = json.loads((workdir / "reconcile-first.parts.json").read_text())
        planned = plan_target(target_writes(first["decisions"], step.split("-")[1]), step.split("-")[1])
        extra = {"writes": len(planned.writes), "batches": len(planned.batches)}
    else:
        from crm_sync.operators.plan import target_writes
        from crm_sync.state.settling import record_baseline, settle_parts

        first = json.loads((workdir / "reconcile-first.parts.json").read_text())
        results = confirmed_results(
            pd.concat([target_writes(first["decisions"], t) for t in ("hubspot", "salesforce")])
        )
        baseline = record_baseline(store, first["baseline"], run_id="bench")  # reconcile's part of the task's work
        totals = settle_parts(store, first["decisions"], results, run_id="bench")
        extra = {"results": len(results), "snapshots_written": baseline + totals.snapshots_written}
    seconds = time.perf_counter() - started
    (workdir / f"{step}.json").write_text(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), **extra}))


def confirmed_results(writes: pd.DataFrame) -> pd.DataFrame:
    """Load results as if the CRMs accepted every write (creates get new ids)."""
    created = writes["action"] == "create"
    return pd.DataFrame(
        {
            "target": writes["target"].to_numpy(),
            "action": writes["action"].to_numpy(),
            "ref": writes["source_id"].astype(str).to_numpy(),
            "target_id": writes["target_id"].where(~created, "new-" + writes["source_id"].astype(str)).to_numpy(),
            "ok": True,
            "error_code": None,
            "message": None,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts per side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partition-contacts", type=int, default=100_000)
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workdir, args.state_url, args.partition_contacts)
        return
    from tests.local_services import postgres_cluster

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_memory_")))
        state_url = stack.enter_context(postgres_cluster())
        from crm_sync.state.engine import create_state_engine
        from crm_sync.state.store import SyncStateStore

        SyncStateStore(create_state_engine(state_url)).create_schema()
        started = time.perf_counter()
        parts = stage(workdir, args.contacts, args.seed)
        (workdir / "parts.json").write_text(json.dumps(parts))
        print(
            f"{args.contacts:,} contacts a side in {len(parts['salesforce'])} + {len(parts['hubspot'])} parts of "
            f"{PART_ROWS:,} (staged in {time.perf_counter() - started:.0f} s); partitions of "
            f"{args.partition_contacts:,} a side; state: PostgreSQL"
        )
        print(f"{'step':>18} {'seconds':>9} {'s per 100k':>11} {'peak RSS MiB':>13}  detail")
        for step in STEPS:
            command = [sys.executable, __file__, "--child", step, "--workdir", str(workdir)]
            command += ["--state-url", state_url, "--partition-contacts", str(args.partition_contacts)]
            subprocess.run(command, check=True)
            res = json.loads((workdir / f"{step}.json").read_text())
            detail = ", ".join(f"{k} {v:,}" for k, v in res.items() if k not in ("seconds", "peak_rss_mib"))
            per = res["seconds"] / (args.contacts / 100_000)
            print(f"{step:>18} {res['seconds']:9.1f} {per:11.2f} {res['peak_rss_mib']:13,.0f}  {detail}", flush=True)


if __name__ == "__main__":
    main()
