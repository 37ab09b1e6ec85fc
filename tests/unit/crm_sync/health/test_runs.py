"""The runs table's order and the budgets it reads from a report (pure: reports as the report task writes them)."""

from __future__ import annotations

from typing import Any

from crm_sync.health.runs import by_data_interval, org_budgets, run_summary


def report(run_id: str, end: str | None, **extra: Any) -> dict[str, Any]:
    interval = {"data_interval": {"start": "x", "end": end}} if end else {}
    return {"run_id": run_id, "window": f"[..., {end})", **interval, **extra}


def test_a_backfill_that_finished_out_of_order_is_listed_newest_data_interval_first() -> None:
    # As run_folders gives them: the report written last first.
    written = [
        report("backfill__2026-11-28T10:15:00+00:00", "2026-11-28T10:30:00+00:00"),
        report("backfill__2026-11-28T10:45:00+00:00", "2026-11-28T11:00:00+00:00"),
        report("manual__2026-11-28T09:00:01.5+00:00", "2026-11-28T09:00:00+00:00"),
        report("backfill__2026-11-28T10:30:00+00:00", "2026-11-28T10:45:00+01:00"),  # 09:45 UTC
        report("old-report-without-interval", None),
        report("backfill__2026-11-28T10:00:00+00:00", "2026-11-28T10:15:00+00:00"),
        report("another-old-report", None),
    ]
    ordered = [run["run_id"] for run in by_data_interval(written)]
    assert ordered == [
        "backfill__2026-11-28T10:45:00+00:00",
        "backfill__2026-11-28T10:15:00+00:00",
        "backfill__2026-11-28T10:00:00+00:00",
        "backfill__2026-11-28T10:30:00+00:00",
        "manual__2026-11-28T09:00:01.5+00:00",
        "old-report-without-interval",
        "another-old-report",
    ]
    assert run_summary(written[0])["data_interval_end"] == "2026-11-28T10:30:00+00:00", "the chart's label"


def test_two_tries_of_one_interval_keep_the_order_they_were_written_in() -> None:
    runs = [report(f"try-{n}", "2026-11-28T10:00:00+00:00") for n in (3, 2, 1)]
    assert [run["run_id"] for run in by_data_interval(runs)] == ["try-3", "try-2", "try-1"]


def test_org_budgets_are_the_vendor_reported_figures_only() -> None:
    pools = {
        "salesforce": {
            "account": "salesforce:salesforce_default",
            "limits": {
                "daily_api_requests": {
                    "used": 0,
                    "limit": 15000,
                    "window_seconds": 86400.0,
                    "org_used": 30,
                    "org_maximum": 100_000,
                    "ceiling": 80_000,
                },
                "requests_per_s": {"used": 1, "limit": 10, "window_seconds": 1.0},
            },
        },
        "hubspot": {"account": "hubspot:hubspot_default", "limits": {"requests_per_10s": {"used": 3, "limit": 100}}},
        "broken": {"error": "ConnectionError: Redis down"},
    }
    assert org_budgets(pools) == {
        "salesforce": {"daily_api_requests": {"used": 30, "maximum": 100_000, "ceiling": 80_000}},
        "hubspot": {},
    }
    # Before the first Limit Info header the pool has no org figures: nothing to show as the org's.
    del pools["salesforce"]["limits"]["daily_api_requests"]["org_maximum"]
    assert org_budgets(pools)["salesforce"] == {}
