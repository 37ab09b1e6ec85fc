"""The chart's data from run summaries, and the SVG matplotlib draws from it (real matplotlib, no browser)."""

from __future__ import annotations

from typing import Any

from crm_sync.health.chart import chart_data, runs_chart_svg, writes


def summary(end: str, *, calls: int, budget: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": f"backfill__{end}",
        "data_interval_end": end,
        "extracted": {"salesforce": 10, "hubspot": 5},
        "outcomes": {},
        "rejects": 0,
        "api": {"salesforce": {"calls": calls, "throttled": 0}, "hubspot": {"calls": 2 * calls, "throttled": 1}},
        "org_budgets": {"salesforce": {"daily_api_requests": budget}, "hubspot": {}} if budget else {},
        **extra,
    }


def test_writes_count_accepted_creates_updates_and_deletes_only() -> None:
    outcomes = {
        "hubspot.create.ok": 74,
        "hubspot.create.rejected": 2,
        "hubspot.link.ok": 77,
        "salesforce.update.ok": 72,
        "salesforce.delete.ok": 1,
        "salesforce.create.dry_run": 9,
    }
    assert writes(outcomes) == 74 + 72 + 1


def test_chart_data_runs_left_to_right_oldest_first_with_the_reported_budget() -> None:
    newest_first = [
        summary("2026-11-28T10:30:00+00:00", calls=7, budget={"used": 130, "maximum": 1000, "ceiling": 800}),
        summary("2026-11-28T10:15:00+00:00", calls=5, rejects=3, outcomes={"hubspot.update.ok": 4}),
        summary("2026-11-28T10:00:00+00:00", calls=3, budget={"used": 100, "maximum": 900, "ceiling": 720}),
    ]
    data = chart_data(newest_first)
    assert data["labels"] == ["11-28 10:00", "11-28 10:15", "11-28 10:30"]
    assert data["read"] == [15, 15, 15]
    assert data["writes"] == [0, 4, 0]
    assert data["rejects"] == [0, 3, 0]
    assert data["calls"] == {"salesforce": [3, 5, 7], "hubspot": [6, 10, 14]}
    assert data["throttled"]["hubspot"] == [1, 1, 1]
    # A run whose report holds no header figure leaves a gap, not a zero.
    assert data["budgets"] == {
        "salesforce daily_api_requests": {
            "used": [100, None, 130],
            "maximum": [900, None, 1000],
            "ceiling": [720, None, 800],
        }
    }


def test_the_svg_has_a_panel_per_measure_and_its_text_as_text() -> None:
    runs = [
        summary("2026-11-28T10:15:00+00:00", calls=5, budget={"used": 30123, "maximum": 120000, "ceiling": 96000}),
        summary("2026-11-28T10:00:00+00:00", calls=3),
    ]
    svg = runs_chart_svg(chart_data(runs))
    assert svg.startswith("<svg")
    for text in ("Contacts per run", "API calls per run", "Org-wide daily API budget", "11-28 10:15", "1×429"):
        assert text in svg, text
    assert "100,000" in svg, "the budget axis reads like the tables"
    assert "Org-wide" not in runs_chart_svg(chart_data(runs[1:])), "no budget panel without a reported budget"
