"""The mass-change gate's arithmetic."""

from __future__ import annotations

import pandas as pd
import pytest

from include.sync_logic.gate import contacts_read, mass_change_verdict, overwriting_counts


def test_a_run_updating_most_of_what_it_read_is_blocked() -> None:
    verdict = mass_change_verdict(
        {"hubspot.update": 900, "hubspot.create": 50, "salesforce.delete": 30}, 1000, max_share=0.5, min_changes=100
    )
    assert verdict.blocked
    assert verdict.changes == {"hubspot.update": 900, "salesforce.delete": 30}
    assert verdict.share == pytest.approx(0.93)
    assert "930 planned updates/deletes" in verdict.message()
    assert "allow_mass_change=true" in verdict.message()


def test_creates_and_skips_do_not_count() -> None:
    verdict = mass_change_verdict(
        {"hubspot.create": 1000, "salesforce.skip": 1000, "hubspot.reject": 5}, 1000, max_share=0.1, min_changes=0
    )
    assert not verdict.blocked
    assert verdict.total_changes == 0


def test_the_share_is_strictly_above_the_limit() -> None:
    assert not mass_change_verdict({"hubspot.update": 500}, 1000, max_share=0.5, min_changes=10).blocked
    assert mass_change_verdict({"hubspot.update": 501}, 1000, max_share=0.5, min_changes=10).blocked


def test_tiny_runs_pass_whatever_their_share() -> None:
    verdict = mass_change_verdict({"salesforce.update": 7}, 7, max_share=0.5, min_changes=20)
    assert not verdict.blocked
    assert verdict.message().startswith("mass-change gate passed")


def test_changes_with_nothing_read_count_as_everything() -> None:
    assert mass_change_verdict({"hubspot.delete": 50}, 0, max_share=0.9, min_changes=10).share == 1.0
    assert mass_change_verdict({}, 0, max_share=0.9, min_changes=10).share == 0.0


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_share"):
        mass_change_verdict({}, 10, max_share=1.5, min_changes=0)


def test_contacts_read_counts_sources_and_their_counterparts_once() -> None:
    decisions = pd.DataFrame(
        {
            "target": ["hubspot", "salesforce", "hubspot", "salesforce"],
            "source_system": ["salesforce", "hubspot", "salesforce", "hubspot"],
            "source_id": ["003A", "101", "003B", "102"],
            "target_id": ["101", "003A", "103", None],
        }
    )
    # 003A<->101 both decided on; 003B's counterpart 103 was fetched; 102 is new (no counterpart).
    assert contacts_read(decisions) == 5


def test_one_sided_edits_of_linked_contacts_are_half_of_what_was_read() -> None:
    edited = pd.DataFrame(
        {
            "target": ["hubspot"] * 150,
            "source_system": ["salesforce"] * 150,
            "source_id": [f"003{i}" for i in range(150)],
            "target_id": [str(i) for i in range(150)],
        }
    )
    verdict = mass_change_verdict({"hubspot.update": 150}, contacts_read(edited), max_share=0.5, min_changes=100)
    assert verdict.share == 0.5 and not verdict.blocked


def test_link_only_updates_overwrite_nothing_and_are_not_counted() -> None:
    decisions = pd.DataFrame(
        {
            "target": ["hubspot", "hubspot", "salesforce", "salesforce"],
            "action": ["update", "update", "update", "create"],
            "changed_fields": ["link", "title,link", "link", ""],
        }
    )
    assert overwriting_counts(decisions) == {"hubspot.update": 1}
