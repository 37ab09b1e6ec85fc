"""The view's HTML escapes what CRMs and users send (a contact's name is data, not markup)."""

from __future__ import annotations

from crm_sync.health.page import contact_page


def test_values_and_the_query_are_escaped() -> None:
    history = {
        "query": "<script>alert(1)</script>",
        "ids": ["003X"],
        "events": [
            {
                "run_id": "r1",
                "window": "[a, b)",
                "target": "hubspot",
                "action": "reject",
                "source": "salesforce:003X",
                "target_id": None,
                "matched_by": None,
                "reason": "FirstName too long",
                "fields_written": {"firstname": "<img src=x onerror=alert(1)>"},
                "answers": [],
            }
        ],
    }
    html = contact_page(history, None)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'data-key="decision" class="l bad">reject<' in html
