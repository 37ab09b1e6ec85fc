"""Closing the pairs: what to fetch so every candidate contact meets its counterpart, and the fetch loop.

The window brings the contacts changed on each side; their counterparts mostly did not change, so they
are fetched in batches by link id, else by email. A fetched contact may itself link to a third record
(a HubSpot contact found by email that is linked to another Salesforce contact): a second round brings
those, so reconcile sees whole pairs and reports a duplicate instead of creating one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import pandas as pd

from include.sync_logic.canonical import MATCHED_KEY, to_canonical
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.normalize import is_in
from include.sync_logic.sides import Side

# Staged-frame key of each side: window rows and fetched rows are unioned on it.
STAGED_ID = {Side.SALESFORCE: "Id", Side.HUBSPOT: "id"}
MAX_ROUNDS = 2


@dataclass(frozen=True)
class CounterpartRequest:
    """Keys to fetch from each side, one list per kind of lookup (the field name says side and key).

    ``hubspot_by_salesforce_id``: HubSpot contacts whose link property holds one of these Salesforce
    Ids (a batch read with ``idProperty``); ``salesforce_by_hubspot_id``: Salesforce contacts whose
    link field holds one of these HubSpot ids (a SOQL ``IN``).
    """

    hubspot_ids: list[str]
    hubspot_emails: list[str]
    salesforce_ids: list[str]
    salesforce_emails: list[str]
    hubspot_by_salesforce_id: list[str]
    salesforce_by_hubspot_id: list[str]

    @staticmethod
    def side_of(kind: str) -> Side:
        return Side.SALESFORCE if kind.startswith(Side.SALESFORCE) else Side.HUBSPOT

    def items(self) -> list[tuple[str, list[str]]]:
        return [(item.name, getattr(self, item.name)) for item in fields(self)]


Fetcher = Callable[[Sequence[str]], pd.DataFrame]


def counterpart_requests(sf: pd.DataFrame, hs: pd.DataFrame, mapping: MappingConfig) -> CounterpartRequest:
    """Ids and emails to fetch so every staged contact meets its counterpart (link first, else email)."""
    s = to_canonical(sf, Side.SALESFORCE, mapping)
    h = to_canonical(hs, Side.HUBSPOT, mapping)
    return CounterpartRequest(
        hubspot_ids=_wanted(s["hs_id"], h["hs_id"]),
        hubspot_emails=_wanted(s["email_key"].where(s["hs_id"].isna() & ~s["deleted"]), h["email_key"]),
        salesforce_ids=_wanted(h["sf_id"], s["sf_id"]),
        salesforce_emails=_wanted(h["email_key"].where(h["sf_id"].isna() & ~h["deleted"]), s["email_key"]),
        hubspot_by_salesforce_id=_wanted(s["sf_id"].where(s["hs_id"].isna()), h["sf_id"]),
        salesforce_by_hubspot_id=_wanted(h["hs_id"].where(h["sf_id"].isna()), s["hs_id"]),
    )


def _wanted(keys: pd.Series, have: pd.Series) -> list[str]:
    keys = keys.dropna()
    return sorted(set(keys[~is_in(keys, have)]))


def close_counterparts(
    sf: pd.DataFrame,
    hs: pd.DataFrame,
    mapping: MappingConfig,
    fetchers: Mapping[str, Fetcher],
    log: Callable[[str], None] = lambda line: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the counterparts the staged rows did not bring, in up to two rounds of batched fetches.

    ``fetchers`` maps each ``CounterpartRequest`` field name to a function fetching those keys as a
    staged frame; an email fetcher's frame may name the key each row answered in ``lookup_key`` (it can
    differ from the row's primary email), which then pairs the row. Keys already asked for are not asked
    again; window rows win over fetched copies.
    """
    asked: dict[str, set[str]] = {kind: set() for kind in fetchers}
    for round_number in range(1, MAX_ROUNDS + 1):
        wanted = counterpart_requests(sf, hs, mapping)
        fresh = {kind: [key for key in keys if key not in asked[kind]] for kind, keys in wanted.items()}
        if not any(fresh.values()):
            break
        found = {kind: _matched(kind, fetchers[kind](keys)) for kind, keys in fresh.items() if keys}
        for kind, keys in fresh.items():
            asked[kind].update(keys)
        by_side = {
            side: [frame for kind, frame in found.items() if CounterpartRequest.side_of(kind) == side] for side in Side
        }
        sf = union_staged([sf, *by_side[Side.SALESFORCE]], Side.SALESFORCE)
        hs = union_staged([hs, *by_side[Side.HUBSPOT]], Side.HUBSPOT)
        log(
            f"Counterparts round {round_number}: "
            + ", ".join(f"{kind} asked {len(keys)} found {len(found.get(kind, []))}" for kind, keys in fresh.items())
        )
    return sf, hs


def _matched(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows fetched by email keep the address asked for as their match key."""
    if kind.endswith("_emails") and "lookup_key" in frame.columns:
        return frame.assign(**{MATCHED_KEY: frame["lookup_key"]})
    return frame


def union_staged(frames: list[pd.DataFrame], side: Side) -> pd.DataFrame:
    """Staged frames of one side as one, the first copy of each id kept (window rows come first)."""
    present = [frame for frame in frames if not frame.empty]
    if not present:
        return frames[0]
    return pd.concat(present, ignore_index=True).drop_duplicates(subset=[STAGED_ID[side]], keep="first")
