"""The read plan's choice and the local fetchers that answer lookups from frames in hand."""

from __future__ import annotations

import pandas as pd
import pytest

from include.sync_logic.counterparts import close_counterparts
from include.sync_logic.read_plan import ReadStrategy, choose_read, local_fetchers, pages
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import ANN_HS, ANN_SF, MAPPING, frames, hs_row, sf_row


def plan(keys: int, lookup_calls: int, window: int, contacts: int, whole: int, at_least: int = 0):
    counted: list[int] = []

    def count() -> int:
        counted.append(contacts)
        return contacts

    chosen = choose_read(
        Side.HUBSPOT,
        keys=keys,
        lookup_calls=lookup_calls,
        window_contacts=window,
        count=count,
        whole_read_calls=lambda n: max(1, n // 100) if at_least else whole,
        at_least=at_least,
    )
    return chosen, len(counted)


@pytest.mark.parametrize(
    ("keys", "lookups", "window", "contacts", "whole", "strategy", "counts", "calls"),
    [
        (0, 0, 500, 10_000, 100, ReadStrategy.NOTHING_TO_FIND, 0, 0),
        (40, 1, 500, 10_000, 100, ReadStrategy.LOOKUPS, 0, 1),  # a count cannot pay for itself
        (18_000, 180, 20_000, 20_000, 200, ReadStrategy.WINDOW_IS_WHOLE, 1, 1),  # a first sync
        (9_000, 90, 1_000, 5_000, 50, ReadStrategy.READ_WHOLE, 1, 51),
        (900, 9, 1_000, 5_000, 50, ReadStrategy.LOOKUPS, 1, 10),
        (5_000, 50, 1_000, 5_000, 50, ReadStrategy.LOOKUPS, 1, 51),  # a tie keeps the lookups
    ],
)
def test_the_cheaper_read_is_chosen(keys, lookups, window, contacts, whole, strategy, counts, calls):
    chosen, counted = plan(keys, lookups, window, contacts, whole)
    assert (chosen.strategy, counted, chosen.planned_calls) == (strategy, counts, calls)
    assert chosen.as_dict()["calls"] == calls and str(strategy) in chosen.describe()


def test_the_sync_states_pairs_spare_a_count_that_could_not_change_the_choice():
    # 38,000 pairs known: a whole read is at least 380 calls, the window (1,000) is not the side: no count.
    chosen, counted = plan(800, 8, 1_000, 40_000, 0, at_least=38_000)
    assert (chosen.strategy, counted, chosen.planned_calls, chosen.contacts) == (ReadStrategy.LOOKUPS, 0, 8, None)
    # Few pairs known: the count may still find a cheaper whole read.
    chosen, counted = plan(800, 8, 100, 500, 0, at_least=300)
    assert (chosen.strategy, counted) == (ReadStrategy.READ_WHOLE, 1)


def test_pages_counts_an_empty_read_as_one_request():
    assert [pages(0, 100), pages(100, 100), pages(101, 100), pages(20_000, 2_000)] == [1, 1, 2, 10]


def hubspot_part() -> pd.DataFrame:
    _, hs = frames(
        [],
        [
            hs_row("101", link="003A", **ANN_HS),
            hs_row("102", email="bo@example.com"),
            hs_row("103", email="gone@example.com", archived=True),
        ],
    )
    return hs.assign(hs_additional_emails=[None, "old@example.com;Bo.Work@Example.com", None])


def test_local_hubspot_lookups_answer_as_the_batch_read_does():
    parts = [hubspot_part(), hubspot_part().iloc[:0]]
    fetch = local_fetchers(Side.HUBSPOT, lambda: parts, MAPPING, secondary_emails="hs_additional_emails")
    by_email = fetch["hubspot_emails"](["ann@example.com", "bo.work@example.com", "gone@example.com", "x@y.z"])
    assert sorted(zip(by_email["id"], by_email["lookup_key"], strict=True)) == [
        ("101", "ann@example.com"),
        ("102", "bo.work@example.com"),  # found by a secondary address, keyed by the one asked
    ]
    assert fetch["hubspot_ids"](["101", "103", "999"])["id"].tolist() == ["101"]  # archived left out
    assert fetch["hubspot_by_salesforce_id"](["003A"])["id"].tolist() == ["101"]
    assert fetch["hubspot_ids"]([]).empty


def test_local_salesforce_lookups_and_pairing_through_close_counterparts():
    sf, hs = frames(
        [sf_row("003A", link="101", **ANN_SF), sf_row("003B", Email="Cy@Example.com", LastName="Cy")],
        [hs_row("101", link="003A", **ANN_HS), hs_row("104", email="cy@example.com", lastname="Cy")],
    )
    fetch = local_fetchers(Side.SALESFORCE, lambda: [sf], MAPPING) | local_fetchers(Side.HUBSPOT, lambda: [hs], MAPPING)
    # Only the HubSpot contacts changed: their Salesforce counterparts come from the local frame.
    sf_all, hs_all = close_counterparts(sf.iloc[:0], hs, MAPPING, fetch)
    assert sorted(sf_all["Id"]) == ["003A", "003B"] and sorted(hs_all["id"]) == ["101", "104"]
