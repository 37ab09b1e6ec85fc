"""Benchmark: reconcile of a full resync with and without the sync state, and the state's own reads and writes.

Generates N contacts per side (overlapping people, linked and unlinked pairs, one-sided changes,
conflicts, bad emails, too-long names, duplicates, deletes). Each reconcile runs in its own child
process (so each peak memory is its own) on the same staged Parquet files:

1. a first sync (no state): decisions and the baseline;
2. the state store records that baseline plus every planned create/update as if the CRMs confirmed it,
   then reads the snapshots back (all of them, and by the ids a run would ask for);
3. the same full resync again, now with the state as the merge base (the staged data is unchanged, so
   this measures the merge's cost, not its outcome).

    .venv/bin/python benchmarks/bench_reconcile.py [--contacts 200000] [--seed 7] [--state-url URL]

``--state-url`` is a SQLAlchemy URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres),
``--postgres`` starts a private PostgreSQL cluster for the run; default: a SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "plugins"))

from include.sync_logic.mapping import load_mapping  # noqa: E402
from include.sync_logic.reconcile import reconcile  # noqa: E402

MAPPING_PATH = ROOT / "include" / "mappings" / "contacts.yaml"
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")
FIRST = np.array(["Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo", "Ned"])
LAST = np.array(["Lee", "Park", "Smith", "Okafor", "Nguyen", "Garcia", "Müller", "O'Neil", "Rossi", "Kim"])
TITLES = np.array(["CEO", "CTO", "Engineer", "Buyer", "Head of Ops", None], dtype=object)
COMPANIES = np.array(["Acme", "Globex", "Initech", "Umbrella", "Hooli", None], dtype=object)


# --------------------------------------------------------------------------- data


def generate(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged frames of both sides, shaped as the extracts write them (README: staged frames)."""
    rng = np.random.default_rng(seed)
    linked, unlinked = int(n * 0.6), int(n * 0.1)
    overlap = linked + unlinked
    idx = np.arange(n)
    sf_ids = np.char.add("003", np.char.zfill(idx.astype(str), 15))
    hs_ids = (10_000_000 + idx).astype(str)

    emails = np.char.add(np.char.add("person", idx.astype(str)), "@example.com").astype(object)
    first = FIRST[rng.integers(0, len(FIRST), n)].astype(object)
    last = LAST[rng.integers(0, len(LAST), n)].astype(object)
    title = TITLES[rng.integers(0, len(TITLES), n)]
    company = COMPANIES[rng.integers(0, len(COMPANIES), n)]
    digits = rng.integers(2_000_000_000, 9_999_999_999, n).astype(str)
    sf_phone = np.array([f"({d[:3]}) {d[3:6]}-{d[6:]}" for d in digits], dtype=object)
    hs_phone = np.char.add("+1", digits).astype(object)
    sf_time = T0 + pd.to_timedelta(rng.integers(0, 15 * 60, n), unit="s")
    hs_time = T0 + pd.to_timedelta(rng.integers(0, 15 * 60, n), unit="s")

    sf = pd.DataFrame(
        {
            "Id": sf_ids,
            "Email": emails.copy(),
            "FirstName": first.copy(),
            "LastName": last.copy(),
            "Phone": sf_phone,
            "MobilePhone": None,
            "Title": title.copy(),
            "Account.Name": company,
            "HubSpot_Contact_Id__c": np.where(idx < linked, hs_ids, None),
            "SystemModstamp": sf_time,
            "LastModifiedDate": sf_time,
            "IsDeleted": False,
        }
    )
    hs_emails = emails.copy()
    hs_emails[overlap:] = np.char.add(np.char.add("hs", idx[overlap:].astype(str)), "@example.com")
    hs = pd.DataFrame(
        {
            "id": hs_ids,
            "email": np.where(rng.random(n) < 0.3, np.char.upper(hs_emails.astype(str)), hs_emails),
            "firstname": first.copy(),
            "lastname": last.copy(),
            "phone": hs_phone,
            "mobilephone": "",
            "jobtitle": np.where(pd.isna(title), "", title),
            "company": np.where(pd.isna(company), "", company),
            "salesforce_contact_id": np.where(idx < linked * 0.95, sf_ids, None),
            "lastmodifieddate": hs_time,
            "archived": False,
        }
    )
    pair = idx < overlap
    roll = rng.random(n)
    sf.loc[pair & (roll < 0.20), "FirstName"] = "Changed"  # Salesforce-side edits
    hs.loc[pair & (roll >= 0.20) & (roll < 0.40), "jobtitle"] = "Director"  # HubSpot-side edits
    both = pair & (roll >= 0.40) & (roll < 0.45)  # conflicts: both sides edited the last name
    sf.loc[both, "LastName"] = "SfName"
    hs.loc[both, "lastname"] = "HsName"
    rest = ~pair
    sf.loc[rest & (roll < 0.01), "Email"] = "broken@"  # invalid emails
    hs.loc[rest & (roll >= 0.01) & (roll < 0.015), "lastname"] = "x" * 95  # too long for Salesforce
    dup = np.flatnonzero(rest & (roll >= 0.02) & (roll < 0.025))
    sf.loc[dup, "Email"] = sf.loc[dup - 1, "Email"].to_numpy()  # duplicates inside Salesforce
    sf.loc[(idx < linked) & (roll >= 0.9) & (roll < 0.905), "IsDeleted"] = True
    hs.loc[rest & (roll >= 0.5) & (roll < 0.7), "lastname"] = ""  # HubSpot contacts without a last name
    return sf, hs


# --------------------------------------------------------------------------- runs


def peak_rss_mib() -> float:
    """This process's own peak (VmHWM): ru_maxrss survives execve, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(phase: str, workdir: Path) -> None:
    """Reconcile the staged files (with the snapshots file in phase "state"); write timing, memory, outputs."""
    mapping = load_mapping(MAPPING_PATH)
    sf = pd.read_parquet(workdir / "sf.parquet")
    hs = pd.read_parquet(workdir / "hs.parquet")
    snapshots = pd.read_parquet(workdir / "snapshots.parquet") if phase == "state" else None
    baseline = _current_rss_mb()
    start = time.perf_counter()
    result = reconcile(sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=mapping, snapshots=snapshots)
    elapsed = time.perf_counter() - start
    result.decisions.to_parquet(workdir / f"{phase}-decisions.parquet")
    result.baseline.to_parquet(workdir / f"{phase}-baseline.parquet")
    stats = {"seconds": elapsed, "peak_rss_mb": peak_rss_mib(), "baseline_rss_mb": baseline}
    (workdir / f"{phase}.json").write_text(json.dumps(stats))


def confirmed_pairs(decisions: pd.DataFrame) -> list[pd.DataFrame]:
    """The snapshot rows a perfect load would confirm: every create and update, one frame per target."""
    frames = []
    for target in ("hubspot", "salesforce"):
        rows = decisions[(decisions["target"] == target) & decisions["action"].isin(["create", "update"])]
        target_id = rows["target_id"].fillna("new-" + rows["source_id"])
        sf_id, hs_id = (rows["source_id"], target_id) if target == "hubspot" else (target_id, rows["source_id"])
        frames.append(pd.DataFrame({"salesforce_id": sf_id, "hubspot_id": hs_id, "field_values": rows["agreed"]}))
    return frames


def state_phase(workdir: Path, url: str) -> dict[str, float]:
    """Write the first sync's baseline and confirmed writes into the store, then read them back."""
    from crm_sync.state.engine import create_state_engine
    from crm_sync.state.store import SyncStateStore

    store = SyncStateStore(create_state_engine(url))
    store.create_schema()
    store.delete_snapshots(store.read_all_snapshots()["salesforce_id"])
    frames = [pd.read_parquet(workdir / "first-baseline.parquet")]
    frames += confirmed_pairs(pd.read_parquet(workdir / "first-decisions.parquet"))
    timings: dict[str, float] = {"rows_written": float(sum(len(frame) for frame in frames))}
    start = time.perf_counter()
    for frame in frames:
        store.merge_snapshots(frame, run_id="bench")
    timings["write_s"] = time.perf_counter() - start
    start = time.perf_counter()
    snapshots = store.read_all_snapshots()
    timings["read_all_s"] = time.perf_counter() - start
    timings["rows_read"] = float(len(snapshots))
    start = time.perf_counter()
    store.read_snapshots(snapshots["salesforce_id"], snapshots["hubspot_id"])
    timings["read_by_ids_s"] = time.perf_counter() - start
    snapshots.drop(columns=["synced_at"]).to_parquet(workdir / "snapshots.parquet")
    timings["peak_rss_mb"] = peak_rss_mib()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=200_000, help="contacts per side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state-url", help="SQLAlchemy URL of the state database (default: a SQLite file)")
    parser.add_argument("--postgres", action="store_true", help="start a private PostgreSQL cluster for the state")
    parser.add_argument("--child", choices=["first", "state"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workdir)
        return
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_reconcile_")))
        if args.postgres:
            from tests.local_services import postgres_cluster

            args.state_url = stack.enter_context(postgres_cluster())
        sf, hs = generate(args.contacts, args.seed)
        sf.to_parquet(workdir / "sf.parquet")
        hs.to_parquet(workdir / "hs.parquet")
        rows = len(sf) + len(hs)
        url = args.state_url or f"sqlite:///{workdir / 'state.db'}"
        print(f"{len(sf):,} Salesforce + {len(hs):,} HubSpot contacts, full resync; state: {url.split('://')[0]}")
        results: dict[str, dict[str, float]] = {}
        for phase in ("first", "state"):
            if phase == "state":
                results["store"] = state_phase(workdir, url)
            subprocess.run([sys.executable, __file__, "--child", phase, "--workdir", str(workdir)], check=True)
            results[phase] = json.loads((workdir / f"{phase}.json").read_text())
        for phase, label in (("first", "reconcile, no state"), ("state", "reconcile with state")):
            res = results[phase]
            print(
                f"{label:>22}: {res['seconds']:7.2f} s  {rows / res['seconds']:>9,.0f} rows/s  peak RSS "
                f"{res['peak_rss_mb']:,.0f} MiB ({res['peak_rss_mb'] - res['baseline_rss_mb']:+,.0f} over the frames)"
            )
        store = results["store"]
        print(
            f"{'state writes':>22}: {store['write_s']:7.2f} s  {store['rows_written'] / store['write_s']:>9,.0f} rows/s"
            f"  ({store['rows_written']:,.0f} snapshot rows: baseline + confirmed writes)"
        )
        print(
            f"{'state reads':>22}: {store['read_all_s']:7.2f} s all ({store['rows_read']:,.0f} pairs), "
            f"{store['read_by_ids_s']:.2f} s by ids; peak RSS of the store phase {store['peak_rss_mb']:,.0f} MiB"
        )
        state_s = store["write_s"] + store["read_all_s"]
        print(f"state I/O against the reconcile it serves: {state_s / results['state']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
