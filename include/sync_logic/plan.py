"""Cutting write decisions into API-sized batches and batches into shards for dynamic task mapping.

Pure data in, pure data out: the lead's operators write the batch files and map over the shards.
One shard is one mapped task instance, so their number is bounded (the scheduler pays per task).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.sync_logic.sides import WRITE_ACTIONS, Side

HUBSPOT_BATCH = "hubspot_batch"
SALESFORCE_COLLECTIONS = "salesforce_collections"
SALESFORCE_BULK = "salesforce_bulk"
# Above this many records of one action: one Salesforce Bulk API 2.0 job (writes), or a Bulk query (a window's
# reads); the Salesforce connection extra `bulk_threshold` overrides it for both.
SALESFORCE_BULK_THRESHOLD = 10_000


@dataclass(frozen=True)
class PlanConfig:
    """Batch sizes of the APIs and the bounds of the plan."""

    hubspot_batch_size: int = 100  # inputs per HubSpot batch create/update/archive call
    salesforce_batch_size: int = 200  # records per sObject Collections request
    salesforce_bulk_threshold: int = SALESFORCE_BULK_THRESHOLD
    max_shards: int = 16

    def __post_init__(self) -> None:
        for name in ("hubspot_batch_size", "salesforce_batch_size", "salesforce_bulk_threshold", "max_shards"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class TargetPlan:
    """The writes of one target, batched and sharded.

    ``writes``: the write decisions with ``batch`` and ``api`` columns; ``batches``: one row per
    batch (batch, action, api, size); ``shards``: batch numbers per shard.
    """

    target: Side
    writes: pd.DataFrame
    batches: pd.DataFrame
    shards: list[list[int]]

    @property
    def empty(self) -> bool:
        return self.writes.empty


def plan_target(decisions: pd.DataFrame, target: Side, config: PlanConfig | None = None) -> TargetPlan:
    """Batch the create/update/delete decisions for ``target`` (one action per batch) and shard them."""
    if target not in {side.value for side in Side}:
        raise ValueError(f"target must be {Side.HUBSPOT} or {Side.SALESFORCE}, not {target!r}")
    config = config or PlanConfig()
    mine = decisions[(decisions["target"] == target) & decisions["action"].isin(WRITE_ACTIONS)]
    # Stable order: by action (as listed), then source id, so a rerun cuts the same batches.
    order = mine["action"].map({a: i for i, a in enumerate(WRITE_ACTIONS)})
    mine = mine.assign(_order=order).sort_values(["_order", "source_id"], kind="stable").drop(columns="_order")
    writes: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    next_batch = 0
    for action in WRITE_ACTIONS:
        group = mine[mine["action"] == action]
        if group.empty:
            continue
        api, size = _api(target, len(group), config)
        numbers = next_batch + np.arange(len(group)) // size
        writes.append(group.assign(batch=numbers, api=api))
        counts = np.bincount(numbers - next_batch)
        rows.extend(
            {"batch": next_batch + i, "action": action, "api": api, "size": int(c)} for i, c in enumerate(counts)
        )
        next_batch += len(counts)
    frame = pd.concat(writes) if writes else mine.assign(batch=pd.Series(dtype="int64"), api="")
    batches = pd.DataFrame(rows, columns=["batch", "action", "api", "size"])
    return TargetPlan(
        target=target,
        writes=frame.reset_index(drop=True),
        batches=batches,
        shards=assign_shards(batches["size"].tolist(), config.max_shards),
    )


def _api(target: Side, count: int, config: PlanConfig) -> tuple[str, int]:
    """The API and the batch size for ``count`` records of one action."""
    if target == Side.HUBSPOT:
        return HUBSPOT_BATCH, config.hubspot_batch_size
    if count > config.salesforce_bulk_threshold:
        return SALESFORCE_BULK, count  # one ingest job for the whole action
    return SALESFORCE_COLLECTIONS, config.salesforce_batch_size


def assign_shards(sizes: list[int], max_shards: int) -> list[list[int]]:
    """Group batch numbers (positions in ``sizes``) into at most ``max_shards`` balanced shards.

    Largest batch first onto the lightest shard (ties: lower shard number), so shard loads differ
    by at most the largest batch and the result depends only on the sizes. No empty shards.
    """
    if max_shards < 1:
        raise ValueError("max_shards must be at least 1")
    count = min(max_shards, len(sizes))
    heap = [(0, shard) for shard in range(count)]
    shards: list[list[int]] = [[] for _ in range(count)]
    for batch in sorted(range(len(sizes)), key=lambda b: (-sizes[b], b)):
        load, shard = heapq.heappop(heap)
        shards[shard].append(batch)
        heapq.heappush(heap, (load + sizes[batch], shard))
    return [sorted(shard) for shard in shards]
