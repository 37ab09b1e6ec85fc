"""The mass-change gate's arithmetic."""

from __future__ import annotations

import pandas as pd
import pytest

from include.sync_logic.decisions import Reason
from include.sync_logic.gate import GateVerdict, contacts_read, mass_change_verdict, overwriting_counts


def verdict_of(
    counts: dict[str, int],
    read: dict[str, int],
    known_pairs: int = 0,
    *,
    max_share: float = 0.5,
    min_changes: int = 100,
) -> GateVerdict:
    return mass_change_verdict(counts, read, known_pairs=known_pairs, max_share=max_share, min_changes=min_changes)


def test_a_run_updating_most_of_a_crm_is_blocked() -> None:
    verdict = verdict_of(
        {"hubspot.update": 900, "hubspot.create": 50, "salesforce.delete": 30}, {"hubspot": 1000, "salesforce": 1000}
    )
    assert verdict.blocked
    assert [(t.target, t.changes) for t in verdict.targets] == [
        ("hubspot", {"update": 900}),
        ("salesforce", {"delete": 30}),
    ]
    assert verdict.share == pytest.approx(0.9)
    assert "hubspot 900 (update 900) = 90% of 1000 contacts" in verdict.message()
    assert "allow_mass_change=true" in verdict.message()


def test_each_crm_is_judged_against_its_own_contacts() -> None:
    # 60 changes on each side pass the count bar together (120) but not alone (min_changes 100).
    verdict = verdict_of({"hubspot.update": 60, "salesforce.update": 60}, {"hubspot": 60, "salesforce": 60})
    assert not verdict.blocked and verdict.total_changes == 120


def test_creates_and_skips_do_not_count() -> None:
    verdict = verdict_of(
        {"hubspot.create": 1000, "salesforce.skip": 1000, "hubspot.reject": 5}, {"hubspot": 1000}, max_share=0.1
    )
    assert not verdict.blocked
    assert verdict.total_changes == 0 and verdict.targets == ()


def test_the_share_is_strictly_above_the_limit() -> None:
    assert not verdict_of({"hubspot.update": 500}, {"hubspot": 1000}, min_changes=10).blocked
    assert verdict_of({"hubspot.update": 501}, {"hubspot": 1000}, min_changes=10).blocked


def test_tiny_runs_pass_whatever_their_share() -> None:
    verdict = verdict_of({"salesforce.update": 7}, {"salesforce": 7}, min_changes=20)
    assert not verdict.blocked
    assert verdict.message().startswith("mass-change gate passed")


def test_changes_with_nothing_known_count_as_everything() -> None:
    assert verdict_of({"hubspot.delete": 50}, {}, max_share=0.9, min_changes=10).share == 1.0
    assert verdict_of({}, {}, max_share=0.9, min_changes=10).share == 0.0


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_share"):
        verdict_of({}, {"hubspot": 10}, max_share=1.5, min_changes=0)


def test_contacts_read_counts_sources_and_their_counterparts_once_per_side() -> None:
    decisions = pd.DataFrame(
        {
            "target": ["hubspot", "salesforce", "hubspot", "salesforce"],
            "source_system": ["salesforce", "hubspot", "salesforce", "hubspot"],
            "source_id": ["003A", "101", "003B", "102"],
            "target_id": ["101", "003A", "103", None],
        }
    )
    # 003A<->101 both decided on; 003B's counterpart 103 was fetched; 102 is new (no counterpart).
    assert contacts_read(decisions) == {"salesforce": 2, "hubspot": 3}


def test_an_ordinary_window_of_one_sided_edits_passes_against_the_sync_states_pairs() -> None:
    """1,000 Salesforce edits each update their HubSpot counterpart: every HubSpot contact read is updated,
    which alone looks like a mass change; against the 20,000 pairs the state knows it is 5%."""
    edited = pd.DataFrame(
        {
            "target": ["hubspot"] * 1000,
            "source_system": ["salesforce"] * 1000,
            "source_id": [f"003{i}" for i in range(1000)],
            "target_id": [str(i) for i in range(1000)],
        }
    )
    read = contacts_read(edited)
    assert verdict_of({"hubspot.update": 1000}, read, known_pairs=0).blocked
    verdict = verdict_of({"hubspot.update": 1000}, read, known_pairs=20_000)
    assert not verdict.blocked and verdict.share == pytest.approx(0.05)
    assert "(1000 read, 20000 pairs in the sync state)" in verdict.message()


def test_link_only_updates_overwrite_nothing_and_are_not_counted() -> None:
    decisions = pd.DataFrame(
        {
            "target": ["hubspot", "hubspot", "salesforce", "salesforce"],
            "action": ["update", "update", "update", "create"],
            "changed_fields": ["link", "title,link", "link", ""],
            "reason": ["link missing", "salesforce changed", "link missing", "new in hubspot"],
        }
    )
    assert overwriting_counts(decisions) == {"hubspot.update": 1}


def test_re_creates_are_counted_and_can_block_a_run_new_contacts_are_not() -> None:
    """A full resync that would write back 40 contacts deleted in HubSpot stops; 40 new contacts pass."""
    recreated = Reason.RECREATED.format(target="hubspot")
    decisions = pd.DataFrame(
        {
            "target": ["hubspot"] * 80,
            "action": ["create"] * 80,
            "changed_fields": ["email,lastname"] * 80,
            "reason": [recreated] * 40 + ["new in salesforce"] * 40,
        }
    )
    counts = overwriting_counts(decisions)
    assert counts == {"hubspot.recreate": 40}
    verdict = verdict_of(counts, {"hubspot": 60}, known_pairs=100, max_share=0.3, min_changes=10)
    assert verdict.blocked
    assert "hubspot 40 (recreate 40) = 40% of 100 contacts" in verdict.message()
