"""What each task returns (its XCom) and the next tasks read: one TypedDict per task, so both ends share a shape.

XCom stays plain JSON: sides and actions travel as their string values, rows stay in staged files (only their
URLs travel), and keys holding a side are the `Side` values. The DAG file wires each consumer to its producer's
`.output` (an XComArg): a task that failed left no XCom, and its consumer reads None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

# Per-hook request and rate-limit counters, keys prefixed by the side (`salesforce_api_calls`, ...), summed by
# the report.
ApiStats = Mapping[str, float]


class ExtractResult(TypedDict):
    """One side's contacts of the window (or all of them), staged as Parquet parts."""

    side: str
    paths: list[str]
    count: int
    window_start: str  # ISO timestamps of the window read
    window_end: str
    full_resync: bool
    api: ApiStats


class Tombstones(TypedDict):
    """Contacts found gone (each reported once, by the run that found it) or back, and the look-up calls spent."""

    found: list[str]
    restored: list[str]
    api_calls: dict[str, int]


class ReconcileResult(TypedDict):
    """The try's folder and its staged decision and baseline parts (one each per partition), with counts."""

    folder: str
    decisions: list[str]
    baseline: list[str]
    partitions: int
    counts: dict[str, int]  # `<target>.<action>` decisions
    in_window: dict[str, int]  # contacts each side's extract read
    retries_due: dict[str, int]  # due retry-queue entries taken, by source side
    snapshots_read: int
    baseline_recorded: int
    known_pairs: int  # the sync state's pairs before this run: each CRM's size from below
    tombstones: Tombstones
    # A window only (a full resync reads every contact: nothing settled to drop, no read plan, no merge follow).
    settled_in_window: NotRequired[dict[str, int]]
    read_plan: NotRequired[dict[str, dict[str, Any]]]
    merges: NotRequired[dict[str, int]]
    api: ApiStats


class GateResult(TypedDict):
    """The mass-change gate's verdict on a run it let through."""

    blocked: bool
    let_through: bool
    share: float  # the largest CRM's share of its contacts updated or deleted


class BatchDescriptor(TypedDict):
    """One staged batch file of writes: one action through one API."""

    url: str
    action: str
    api: str
    rows: int


# One mapped load task's batches; a plan task returns a list of them to expand the load over.
Shard = list[BatchDescriptor]


class LoadTotals(TypedDict):
    """One shard's batches sent (or skipped: staged by an earlier attempt of this try) and records answered."""

    batches: int
    skipped_batches: int
    records: int
    ok: int
    rejected: int
    api: ApiStats


class LinkBackResult(TypedDict):
    """Link fields written, by the side whose contacts got them."""

    links: dict[str, int]
    api: ApiStats


class SettleResult(TypedDict):
    """What settle did to the sync state and the retry queue (`settled` False: nothing, and why is logged)."""

    settled: bool
    retry_queue: dict[str, int]  # entries per status after settling
    retries_untried: NotRequired[int]  # entries this try took and never tried: due again
    snapshots_written: NotRequired[int]
    snapshots_deleted: NotRequired[int]
    retries_resolved: NotRequired[int]
    retries_recorded: NotRequired[int]
    retries_by_code: NotRequired[dict[str, int]]
    retries_parked: NotRequired[int]


class PreflightResult(TypedDict):
    """Preflight passed (a problem fails the task instead)."""

    ok: bool


class Rejects(TypedDict):
    """The run's rejects: how many, where all of them are staged, and the first few."""

    count: int
    path: str
    first: list[dict[str, Any]]


# The run report, as report.json holds it ("try" is a keyword, hence the functional form).
SyncReport = TypedDict(
    "SyncReport",
    {
        "dag_id": str,
        "run_id": str,
        "try": str,
        "staged": str | None,  # the try's folder with its decisions/ and results/ (None: reconcile never ran)
        "window": str,
        "data_interval": dict[str, str],
        "direction": str,
        "dry_run": bool,
        "log_pii": bool,
        "extracted": dict[str, int],
        "decisions": dict[str, int],
        "settled_in_window": dict[str, int],
        "read_plan": dict[str, dict[str, Any]],
        "tombstones": Mapping[str, Any],  # Tombstones, or empty when reconcile never ran
        "merges": dict[str, int],
        "outcomes": dict[str, int],
        "api": ApiStats,
        "sync_state": dict[str, Any],
        "lag_seconds": float,
        "retry_queue": dict[str, int] | None,
        "rate_limit_pool": dict[str, Any],
        "rejects": Rejects,
    },
)


class ReportResult(SyncReport):
    """The report and where it was written."""

    report_path: str
