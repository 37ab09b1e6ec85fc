"""The mass-change gate's arithmetic."""

from __future__ import annotations

import pytest

from include.sync_logic.gate import mass_change_verdict


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
