"""The shared hook base: refs per input, batching slices and result logging (pure, no connection)."""

from __future__ import annotations

import logging

import pytest

from crm_sync.hooks.base import ContactsHookMixin, refs_for
from crm_sync.hooks.results import RecordResult


class _Hook(ContactsHookMixin):
    crm = "test"
    log = logging.getLogger("test-hook")


def test_refs_come_from_the_caller_else_the_key_else_the_index():
    items = [{"id": "a"}, {"id": None}]
    assert refs_for(items, ["r1", "r2"], lambda i: i["id"]) == ["r1", "r2"]
    assert refs_for(items, None, lambda i: i["id"]) == ["a", "1"]
    with pytest.raises(ValueError, match="parallel"):
        refs_for(items, ["only one"], lambda i: i["id"])


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
    assert f"test upsert: {expected}" in caplog.text
