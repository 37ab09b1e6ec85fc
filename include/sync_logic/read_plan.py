"""The read plan: per side, the cheapest way to bring the counterparts of the contacts in play.

Looking counterparts up costs a call per batch of keys (HubSpot: 100 keys a batch read; Salesforce: one
IN query within the URI budget); reading the side whole costs a call per page. One count (a call) tells
whether the window already holds the whole side, as on a first sync, where every key not in the window
is known to be absent, and what a whole read would cost. The lookups' fetchers then answer from the
frames already read instead of the API (``local_fetchers``), so the pairing code is the same either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import pandas as pd

from include.sync_logic.canonical import OWN_ID, to_canonical
from include.sync_logic.counterparts import Fetcher
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.normalize import email_key, is_in
from include.sync_logic.sides import Side


class ReadStrategy(StrEnum):
    """How one side's counterparts are found."""

    NOTHING_TO_FIND = "nothing_to_find"  # every counterpart is already in hand
    LOOKUPS = "lookups"  # batched lookups by link id, else email
    WINDOW_IS_WHOLE = "window_is_whole"  # the window holds every contact of the side: answered locally
    READ_WHOLE = "read_whole"  # the side read whole (cheaper than the lookups): answered locally


@dataclass(frozen=True)
class SideReadPlan:
    """The strategy of one side and the estimates it was chosen on (calls are API requests)."""

    side: Side
    strategy: ReadStrategy
    keys: int
    lookup_calls: int
    contacts: int | None = None  # the side's count, when it was worth a call to count it
    whole_read_calls: int | None = None

    @property
    def planned_calls(self) -> int:
        """Calls this plan spends on counterparts (the first round), the count included."""
        counted = 1 if self.contacts is not None else 0
        if self.strategy == ReadStrategy.READ_WHOLE:
            return counted + (self.whole_read_calls or 0)
        if self.strategy == ReadStrategy.LOOKUPS:
            return counted + self.lookup_calls
        return counted

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "side": str(self.side), "strategy": str(self.strategy), "calls": self.planned_calls}

    def describe(self) -> str:
        whole = "not estimated" if self.whole_read_calls is None else f"{self.whole_read_calls} calls"
        counted = "not counted" if self.contacts is None else f"{self.contacts} contacts"
        return (
            f"{self.side}: {self.strategy} ({self.keys} keys to find; lookups {self.lookup_calls} calls, "
            f"whole read {whole}; side {counted}; {self.planned_calls} calls planned)"
        )


def choose_read(
    side: Side,
    *,
    keys: int,
    lookup_calls: int,
    window_contacts: int,
    count: Callable[[], int],
    whole_read_calls: Callable[[int], int],
    at_least: int = 0,
) -> SideReadPlan:
    """The cheaper of looking the keys up and reading the side whole.

    The side is counted only when the count could change the choice: not when the lookups take one call
    (the count costs as much), nor when ``at_least`` (what the side is known to hold, e.g. the sync state's
    pairs) already makes a whole read dearer and the window smaller than the side. ``window_contacts``: the
    live contacts of this side already in hand.
    """
    if keys == 0:
        return SideReadPlan(side, ReadStrategy.NOTHING_TO_FIND, 0, 0)
    if lookup_calls < 2:
        return SideReadPlan(side, ReadStrategy.LOOKUPS, keys, lookup_calls)
    if window_contacts < at_least and whole_read_calls(at_least) >= lookup_calls:
        return SideReadPlan(side, ReadStrategy.LOOKUPS, keys, lookup_calls)
    contacts = count()
    if window_contacts >= contacts:
        return SideReadPlan(side, ReadStrategy.WINDOW_IS_WHOLE, keys, lookup_calls, contacts, 0)
    whole = whole_read_calls(contacts)
    strategy = ReadStrategy.READ_WHOLE if whole < lookup_calls else ReadStrategy.LOOKUPS
    return SideReadPlan(side, strategy, keys, lookup_calls, contacts, whole)


def pages(records: int, page_size: int) -> int:
    """Requests to read `records` in pages of `page_size` (an empty read still takes one)."""
    return max(1, math.ceil(records / page_size))


def local_fetchers(
    side: Side,
    parts: Callable[[], Iterable[pd.DataFrame]],
    mapping: MappingConfig,
    *,
    secondary_emails: str | None = None,
) -> dict[str, Fetcher]:
    """Fetchers answering one side's lookups from staged frames (``parts`` yields them anew per call).

    They answer as the API lookups do: deleted contacts are left out, rows found by email carry the
    address asked in ``lookup_key``, and with ``secondary_emails`` (HubSpot's ``hs_additional_emails``,
    ";"-separated) an email also finds the contact holding it as a secondary address.
    """
    by_kind = {
        f"{side}_ids": OWN_ID[side],
        f"{side}_emails": "email_key",
        f"{side}_by_{side.other}_id": OWN_ID[side.other],
    }
    return {
        kind: partial(_find, parts, side, mapping, column, secondary_emails if column == "email_key" else None)
        for kind, column in by_kind.items()
    }


def _find(
    parts: Callable[[], Iterable[pd.DataFrame]],
    side: Side,
    mapping: MappingConfig,
    column: str,
    secondary_emails: str | None,
    keys: Sequence[str],
) -> pd.DataFrame:
    wanted = pd.Series(list(keys), dtype="object")
    found: list[pd.DataFrame] = []
    template: pd.DataFrame | None = None
    for frame in parts():
        frame = frame.reset_index(drop=True)
        template = frame.iloc[:0]
        canonical = to_canonical(frame, side, mapping)
        live = ~canonical["deleted"]
        asked = canonical[column].where(live & is_in(canonical[column], wanted))
        if secondary_emails and secondary_emails in frame.columns:
            asked = asked.fillna(_secondary_match(frame[secondary_emails], wanted).where(live))
        hit = asked.notna().to_numpy()
        if hit.any():
            rows = frame[hit]
            if column == "email_key":
                rows = rows.assign(lookup_key=asked[hit].to_numpy())
            found.append(rows)
    if found:
        return pd.concat(found, ignore_index=True)
    return template if template is not None else pd.DataFrame()


def _secondary_match(values: pd.Series, wanted: pd.Series) -> pd.Series:
    """Per row, the first of its ";"-separated secondary addresses that is wanted (else missing)."""
    exploded = values.astype("object").str.split(";").explode()
    keys = email_key(exploded)
    hits = keys[is_in(keys, wanted)]
    first = hits[~hits.index.duplicated()]
    return first.reindex(values.index)
