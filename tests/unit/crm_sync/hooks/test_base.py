"""The shared hook base: refs per input, batching slices and result logging (pure, no connection)."""

from __future__ import annotations

import logging

import pytest

from crm_sync.hooks.base import ContactsHookMixin, parallel_refs
from crm_sync.hooks.results import RecordResult
from crm_sync.ratelimit import WaitStats
from include.sync_logic.sides import Side


class _Hook(ContactsHookMixin):
    side = Side.HUBSPOT
    log = logging.getLogger("test-hook")


def test_refs_are_the_callers_one_per_input():
    items = [{"id": "a"}, {"id": None}]
    assert parallel_refs(items, ["r1", "r2"]) == ["r1", "r2"]
    with pytest.raises(ValueError, match="parallel"):
        parallel_refs(items, ["only one"])


def test_api_stats_prefix_the_calls_and_the_pools_waits_with_the_side():
    hook = _Hook()
    hook.api_calls = 7
    hook.__dict__["rate_limit_pool"] = type("Pool", (), {"stats": WaitStats()})()
    stats = hook.api_stats()
    assert stats["hubspot_api_calls"] == 7 and stats["hubspot_rate_limit_acquires"] == 0
    assert all(key.startswith("hubspot_") for key in stats)


def test_write_in_batches_covers_every_input_once_and_logs_codes_without_values(caplog):
    hook = _Hook()
    seen: list[slice] = []

    def write(part: slice) -> list[RecordResult]:
        seen.append(part)
        return [
            RecordResult(ref=str(i), target_id=None, ok=i % 2 == 0, error_code=None if i % 2 == 0 else "CONFLICT")
            for i in range(part.start, part.stop)
        ]

    with caplog.at_level(logging.INFO, logger="test-hook"):
        results = hook.write_in_batches("upsert", 250, 100, write)
    assert [(p.start, p.stop) for p in seen] == [(0, 100), (100, 200), (200, 250)]
    assert [r.ref for r in results] == [str(i) for i in range(250)]
    expected = "250 records, 125 ok, 125 failed, 0 written without refused fields, 0 permanent refusals (CONFLICT 125)"
    assert f"hubspot upsert: {expected}" in caplog.text
