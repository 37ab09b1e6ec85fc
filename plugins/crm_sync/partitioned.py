"""Reconcile staged parts partition by partition, so a task's memory follows the partition, not the org.

A first pass reads only what relates contacts (ids, links, emails) from every part and splits the
contacts into partitions that keep each pair and each duplicate group whole (`include.sync_logic.
partition`). Then each partition is read from the parts, reconciled against its own snapshots, and
written as one part of the decisions and one of the baseline. A window of ordinary size is one partition.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm_sync.settings import DEFAULTS
from crm_sync.staging import iter_frames, write_frame
from include.sync_logic.canonical import identity_columns
from include.sync_logic.decisions import decision_counts
from include.sync_logic.partition import components, partition_numbers
from include.sync_logic.reconcile import Reconciliation, reconcile
from include.sync_logic.sides import Direction, Side

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from include.sync_logic.mapping import MappingConfig

IDENTITY = ["sf_id", "hs_id", "email_key"]
SnapshotReader = Callable[["pd.Series", "pd.Series"], "pd.DataFrame"]


@dataclass
class PartitionedReconciliation:
    """URLs of the decision and baseline parts (one each per partition) and what the log and report need."""

    decisions: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    snapshots_read: int = 0
    partitions: int = 0


def reconcile_staged(
    parts: dict[Side, list[str]],
    mapping: MappingConfig,
    *,
    direction: Direction,
    read_snapshots: SnapshotReader,
    folder: ObjectStoragePath,
    partition_contacts: int = DEFAULTS.partition_contacts,
    log: Callable[[str], None] = lambda line: None,
    tombstones: pd.DataFrame | None = None,
) -> PartitionedReconciliation:
    """Reconcile every staged contact of both sides (a full resync), one partition at a time.

    `tombstones` (contacts gone from one side) go to every partition; each takes those of its counterparts.
    """
    import pandas as pd

    whole, lengths = {}, {}
    for side in Side:
        identity = [identity_columns(frame, side, mapping) for frame in iter_frames(parts[side])]
        lengths[side] = [len(frame) for frame in identity]
        whole[side] = pd.concat(identity, ignore_index=True) if identity else pd.DataFrame(columns=IDENTITY)
        del identity
    sizes = {side: len(whole[side]) for side in Side}
    partitions = max(1, math.ceil(max(sizes.values()) / partition_contacts))
    labels = dict(zip(Side, components(whole[Side.SALESFORCE], whole[Side.HUBSPOT]), strict=True))
    del whole
    numbers = {side: _per_part(partition_numbers(labels[side], partitions), lengths[side]) for side in Side}
    log(
        f"Partitioned reconcile: {sizes[Side.SALESFORCE]} Salesforce + {sizes[Side.HUBSPOT]} HubSpot contacts "
        f"in {partitions} partitions of about {partition_contacts} a side"
    )
    out = PartitionedReconciliation(partitions=partitions)
    columns = {Side.SALESFORCE: mapping.salesforce_fields, Side.HUBSPOT: ["id", *mapping.hubspot_properties]}
    for number in range(partitions):
        frames = {side: _partition(parts[side], numbers[side], number, columns[side]) for side in Side}
        sf, hs = frames[Side.SALESFORCE], frames[Side.HUBSPOT]
        snapshots = read_snapshots(sf["Id"].astype(str), hs["id"].astype(str))
        changed = {Side.SALESFORCE: sf["Id"].astype(str), Side.HUBSPOT: hs["id"].astype(str)}
        result = reconcile_frames(sf, hs, changed, mapping, direction, snapshots, tombstones)
        write_partition(out, number, result, folder)
        out.snapshots_read += len(snapshots)
        log(f"Partition {number + 1}/{partitions}: {len(sf)} + {len(hs)} contacts")
    return out


def _per_part(numbers: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    """The partition numbers cut back into one array per staged part."""
    out, start = [], 0
    for length in lengths:
        out.append(numbers[start : start + length])
        start += length
    return out


def _partition(urls: list[str], numbers: list[np.ndarray], number: int, columns: list[str]) -> pd.DataFrame:
    """The rows of one partition, read part by part."""
    import pandas as pd

    rows: list[pd.DataFrame] = [frame[numbers[i] == number] for i, frame in enumerate(iter_frames(urls))]
    rows = [frame for frame in rows if len(frame)]
    if rows:
        return pd.concat(rows, ignore_index=True)
    return pd.DataFrame(columns=columns)


def reconcile_frames(
    sf: pd.DataFrame,
    hs: pd.DataFrame,
    changed: dict[Side, pd.Series],
    mapping: MappingConfig,
    direction: Direction,
    snapshots: pd.DataFrame,
    tombstones: pd.DataFrame | None = None,
) -> Reconciliation:
    """One reconcile of frames in hand; ``changed``: the candidates' ids per side (the rest are counterparts)."""
    return reconcile(
        sf,
        hs,
        sf_changed_ids=changed[Side.SALESFORCE],
        hs_changed_ids=changed[Side.HUBSPOT],
        mapping=mapping,
        direction=direction,
        snapshots=snapshots,
        tombstones=tombstones,
    )


def write_partition(
    out: PartitionedReconciliation, number: int, result: Reconciliation, folder: ObjectStoragePath
) -> None:
    """Stage one partition's decisions and baseline as parts ``number`` and add up its counts."""
    import numpy as np

    out.partitions = max(out.partitions, number + 1)
    decisions = result.decisions
    out.decisions.append(write_frame(folder / "decisions" / f"part-{number:05d}.parquet", decisions))
    out.baseline.append(write_frame(folder / "baseline" / f"part-{number:05d}.parquet", result.baseline))
    out.counts.update(decision_counts(decisions))
    out.conflicts += int(np.count_nonzero(decisions["conflict"].to_numpy(dtype=bool))) if len(decisions) else 0
