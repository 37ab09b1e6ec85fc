"""The view's HTML: values escaped, each section naming its run, rejects with their own outcome, the org's budget."""

from __future__ import annotations

import re
from typing import Any

from crm_sync.health.page import contact_page, overview_page


def event(action: str, answers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "run_id": "manual__2026-11-30T02:22:52.427930+00:00",
        "window": "[2026-11-28T09:43:00+00:00, 2026-11-28T10:00:00+00:00)",
        "target": "hubspot",
        "action": action,
        "source": "salesforce:003X",
        "target_id": "501",
        "matched_by": None,
        "reason": "",
        "fields_written": {},
        "answers": answers,
        **extra,
    }


def run(run_id: str, outcomes: dict[str, int]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "data_interval_end": "2026-11-28T10:00:00+00:00",
        "window": "[2026-11-28T09:43:00+00:00, 2026-11-28T10:00:00+00:00)",
        "dry_run": False,
        "extracted": {"salesforce": 3, "hubspot": 2},
        "decisions": {"hubspot.update": 1},
        "outcomes": outcomes,
        "api": {
            side: {"calls": 4, "waits": 0, "wait_seconds": 0, "throttled": 0} for side in ("salesforce", "hubspot")
        },
        "rejects": 0,
        "lag_seconds": 145395.2,
        "org_budgets": {},
    }


def test_values_and_the_query_are_escaped() -> None:
    history = {
        "query": "<script>alert(1)</script>",
        "ids": ["003X"],
        "events": [
            event(
                "reject", [], reason="FirstName too long", fields_written={"firstname": "<img src=x onerror=alert(1)>"}
            )
        ],
    }
    html = contact_page(history, None)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'data-key="decision" class="l bad">reject<' in html


def test_a_reject_row_shows_its_own_outcome_and_its_sibling_update_the_answer() -> None:
    ok = {"action": "update", "ok": True, "target_id": "501", "code": None, "message": "", "dry_run": False}
    history = {"query": "003X", "ids": ["003X", "501"], "events": [event("reject", []), event("update", [ok])]}
    html = contact_page(history, None)
    reject_row, update_row = html.split('data-key="decision"')[1:3]
    assert "not sent: rejected by the sync" in reject_row and ">ok (update" not in reject_row
    assert 'class="l text ok">ok (update, id 501)<' in update_row
    text = re.sub(r"<[^>]+>", "", html)
    assert "manual 2026-11-30 02:22:52" in text and "2026-11-28 09:43 – 10:00" in text, "times readable"
    assert "02:22:52.4" not in text and "+00:00" not in text


def test_the_answers_section_names_its_run_and_says_when_it_sent_nothing() -> None:
    newest = run("backfill__2026-11-28T09:45:00+00:00", {})
    older = run("backfill__2026-11-28T09:30:00+00:00", {"hubspot.update.ok": 1})
    html = overview_page([newest, older], [], None, {})
    assert "What the CRMs answered: backfill 2026-11-28 09:45, window 2026-11-28 09:43 – 10:00" in html
    assert "This run sent nothing to the CRMs." in html
    html = overview_page([older], [], None, {})
    assert 'data-key="hubspot.update.ok">1<' in html and 'data-key="hubspot.update.rejected">0<' in html


def test_the_daily_budget_is_the_orgs_own_figure_when_the_header_gave_one() -> None:
    daily = {"used": 0, "limit": 15000, "window_seconds": 86400.0}
    reported = {**daily, "org_used": 30, "org_maximum": 100_000, "ceiling": 80_000}
    pools = {"salesforce": {"account": "salesforce:salesforce_default", "paused_seconds": 0.0, "limits": {}}}
    pools["salesforce"]["limits"]["daily_api_requests"] = reported
    html = overview_page([], [], None, pools)
    assert 'data-key="salesforce.daily_api_requests.used">30<' in html
    assert 'data-key="salesforce.daily_api_requests.maximum">100,000<' in html
    assert "the sync stops at 80,000" in html and "15,000" not in html
    # Before the first header: the pool's own count against the allowance it was given.
    pools["salesforce"]["limits"]["daily_api_requests"] = {**daily, "used": 6}
    html = overview_page([], [], None, pools)
    assert 'data-key="salesforce.daily_api_requests.maximum">15,000<' in html and "1 d (this pool" in html
