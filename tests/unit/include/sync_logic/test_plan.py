"""Planning: API-sized batches per target and action, a bounded number of balanced shards."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.sync_logic.plan import (
    HUBSPOT_BATCH,
    SALESFORCE_BULK,
    SALESFORCE_COLLECTIONS,
    PlanConfig,
    assign_shards,
    plan_target,
)
from include.sync_logic.reconcile import DECISION_COLUMNS


def decisions(counts: dict[tuple[str, str], int]) -> pd.DataFrame:
    """``counts[(target, action)]`` decisions with distinct source ids (in reverse order)."""
    rows = []
    for (target, action), count in counts.items():
        for i in reversed(range(count)):
            rows.append(
                {
                    "target": target,
                    "action": action,
                    "source_system": "hubspot" if target == "salesforce" else "salesforce",
                    "source_id": f"{action}-{i:06d}",
                    "target_id": None if action == "create" else f"t-{i}",
                    "payload": "{}",
                    "changed_fields": "",
                    "reason": "",
                    "conflict": False,
                    "matched_by": None,
                }
            )
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def test_hubspot_batches_of_100_one_action_each():
    plan = plan_target(
        decisions({("hubspot", "create"): 250, ("hubspot", "update"): 100, ("hubspot", "skip"): 7}), "hubspot"
    )
    assert plan.batches[["action", "api", "size"]].values.tolist() == [
        ["create", HUBSPOT_BATCH, 100],
        ["create", HUBSPOT_BATCH, 100],
        ["create", HUBSPOT_BATCH, 50],
        ["update", HUBSPOT_BATCH, 100],
    ]
    assert len(plan.writes) == 350 and set(plan.writes["action"]) == {"create", "update"}
    # Deterministic order inside a batch: by source id.
    first = plan.writes[plan.writes["batch"] == 0]["source_id"]
    assert first.tolist() == sorted(first) and first.iloc[0] == "create-000000"


def test_salesforce_collections_of_200_and_bulk_above_the_threshold():
    config = PlanConfig(salesforce_bulk_threshold=1000)
    plan = plan_target(
        decisions({("salesforce", "update"): 1001, ("salesforce", "create"): 401, ("hubspot", "update"): 5}),
        "salesforce",
        config,
    )
    assert plan.batches[["action", "api", "size"]].values.tolist() == [
        ["create", SALESFORCE_COLLECTIONS, 200],
        ["create", SALESFORCE_COLLECTIONS, 200],
        ["create", SALESFORCE_COLLECTIONS, 1],
        ["update", SALESFORCE_BULK, 1001],
    ]
    assert set(plan.writes["target"]) == {"salesforce"}


def test_nothing_to_write_is_an_empty_plan():
    plan = plan_target(decisions({("hubspot", "skip"): 3, ("hubspot", "reject"): 2}), "hubspot")
    assert plan.empty and plan.batches.empty and plan.shards == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        plan_target(decisions({}), "oracle")
    with pytest.raises(ValueError, match="max_shards"):
        PlanConfig(max_shards=0)


def test_shards_are_bounded_balanced_and_deterministic():
    sizes = [100, 100, 100, 50, 200, 10]
    shards = assign_shards(sizes, 3)
    assert shards == assign_shards(sizes, 3)
    assert sorted(b for shard in shards for b in shard) == list(range(len(sizes)))
    assert sorted(sum(sizes[b] for b in shard) for shard in shards) == [160, 200, 200]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 200), max_size=60), max_shards=st.integers(1, 20))
def test_shard_properties(sizes, max_shards):
    shards = assign_shards(sizes, max_shards)
    assert len(shards) == min(max_shards, len(sizes))
    assert all(shards)
    assert sorted(b for shard in shards for b in shard) == list(range(len(sizes)))
    loads = [sum(sizes[b] for b in shard) for shard in shards]
    if loads:
        assert max(loads) - min(loads) <= max(sizes)


@settings(max_examples=100, deadline=None)
@given(
    counts=st.dictionaries(
        st.tuples(st.sampled_from(["hubspot", "salesforce"]), st.sampled_from(["create", "update", "delete", "skip"])),
        st.integers(0, 450),
        max_size=6,
    ),
    target=st.sampled_from(["hubspot", "salesforce"]),
)
def test_every_write_lands_in_exactly_one_batch_of_legal_size(counts, target):
    config = PlanConfig(salesforce_bulk_threshold=300, max_shards=4)
    plan = plan_target(decisions(counts), target, config)
    expected = sum(c for (t, a), c in counts.items() if t == target and a != "skip")
    assert len(plan.writes) == expected
    assert plan.batches["size"].sum() == expected
    assert (plan.writes.groupby("batch")["action"].nunique() == 1).all()
    limit = {HUBSPOT_BATCH: 100, SALESFORCE_COLLECTIONS: 200}
    for row in plan.batches.itertuples():
        assert row.size <= limit.get(row.api, 10**9)
    assert sorted(b for shard in plan.shards for b in shard) == plan.batches["batch"].tolist()
