"""Pairing: which Salesforce contact goes with which HubSpot contact, and which are duplicates.

Links first (either side's link field), then the normalised email for unlinked live contacts. Within a
side, contacts sharing an email are duplicates of one primary (linked, else earliest modified, else
smallest id), and an unpaired contact whose email already belongs to a pair is a duplicate of that pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from include.sync_logic.canonical import OWN_ID, PREFIX
from include.sync_logic.normalize import is_in
from include.sync_logic.sides import Side


@dataclass(frozen=True)
class Pairing:
    """``groups``: one wide row per pair or lone contact (``s.<col>``/``h.<col>``, -1 for no row).

    ``s_dups``/``h_dups``: duplicates by position, with ``dup_of`` (primary id) and ``dup_pos``.
    """

    groups: pd.DataFrame
    s_dups: pd.DataFrame
    h_dups: pd.DataFrame


def prepare(canonical: pd.DataFrame, side: Side, candidate_ids: Iterable[str]) -> pd.DataFrame:
    """Drop rows without an id; keep one row per id (the latest); flag the candidates (``changed``)."""
    own = OWN_ID[side]
    frame = canonical[canonical[own].notna()]
    frame = frame.sort_values([own, "modified_at"], ascending=[True, False], na_position="last")
    frame = frame.drop_duplicates(own).reset_index(drop=True)
    frame["changed"] = is_in(frame[own], candidate_ids)
    return frame


def pair_up(s: pd.DataFrame, h: pd.DataFrame) -> Pairing:
    """Pairs by link, then by email among what is left, duplicates set aside; see the module docstring."""
    links = _link_pairs(s, h)
    s_dups = _same_side_duplicates(s, Side.SALESFORCE, links["s"])
    h_dups = _same_side_duplicates(h, Side.HUBSPOT, links["h"])
    pairs = pd.concat([links, _email_pairs(s, h, links, s_dups, h_dups)], ignore_index=True)
    pairs = pairs.astype({"s": "int64", "h": "int64"})
    s_dups = _add_cross_duplicates(s_dups, s, Side.SALESFORCE, h, pairs)
    h_dups = _add_cross_duplicates(h_dups, h, Side.HUBSPOT, s, pairs)
    return Pairing(groups=_groups(s, h, pairs, s_dups, h_dups), s_dups=s_dups, h_dups=h_dups)


def _link_pairs(s: pd.DataFrame, h: pd.DataFrame) -> pd.DataFrame:
    """Pairs joined by a link on either side, one-to-one; mutual links first, then by position.

    In rounds: each contact's best remaining candidate, kept when it is also the best claim on the other
    contact; candidates of contacts so paired drop out and the next round pairs among the rest. So a contact
    claimed by two links still pairs with the claimant that is not paired elsewhere.
    """
    s_pos = s[["sf_id", "hs_id"]].reset_index(names="s")
    h_pos = h[["hs_id", "sf_id"]].reset_index(names="h")
    by_s = s_pos.dropna(subset="hs_id").merge(h_pos[["h", "hs_id"]], on="hs_id")[["s", "h"]]
    by_h = h_pos.dropna(subset="sf_id").merge(s_pos[["s", "sf_id"]], on="sf_id")[["s", "h"]]
    both = pd.concat([by_s, by_h], ignore_index=True)
    candidates = both.groupby(["s", "h"]).size().rename("strength").reset_index()
    candidates = candidates.sort_values(["strength", "s", "h"], ascending=[False, True, True])
    rounds = []
    while not candidates.empty:
        paired = candidates.drop_duplicates("s").drop_duplicates("h")[["s", "h"]]
        rounds.append(paired)
        candidates = candidates[~candidates["s"].isin(paired["s"]) & ~candidates["h"].isin(paired["h"])]
    pairs = pd.concat(rounds, ignore_index=True) if rounds else candidates[["s", "h"]]
    return pairs.assign(matched_by="link").reset_index(drop=True)


def _same_side_duplicates(frame: pd.DataFrame, side: Side, paired: pd.Series) -> pd.DataFrame:
    """Live rows sharing an email key: one primary (linked, else earliest modified, else smallest id).

    The other rows that have no link pair are duplicates, indexed by position.
    """
    own = OWN_ID[side]
    live = frame[~frame["deleted"] & frame["email_key"].notna()][["email_key", "modified_at", own]]
    live = live.assign(paired=live.index.isin(paired), pos=live.index)
    ordered = live.sort_values(
        ["email_key", "paired", "modified_at", own],
        ascending=[True, False, True, True],
        na_position="last",
        kind="stable",
    )
    grouped = ordered.groupby("email_key", sort=False)
    ordered = ordered.assign(dup_of=grouped[own].transform("first"), dup_pos=grouped["pos"].transform("first"))
    dups = ordered[ordered["email_key"].duplicated() & ~ordered["paired"]]
    return dups[["dup_of", "dup_pos"]]


def _email_pairs(
    s: pd.DataFrame, h: pd.DataFrame, links: pd.DataFrame, s_dups: pd.DataFrame, h_dups: pd.DataFrame
) -> pd.DataFrame:
    """Pairs of unlinked live rows with one email key (unique per side after the duplicate rule)."""

    def free(frame: pd.DataFrame, taken: pd.Series, dups: pd.DataFrame, name: str) -> pd.DataFrame:
        keep = ~frame["deleted"] & frame["email_key"].notna()
        keep &= ~frame.index.isin(taken) & ~frame.index.isin(dups.index)
        return frame.loc[keep, ["email_key"]].reset_index(names=name)

    pairs = free(s, links["s"], s_dups, "s").merge(free(h, links["h"], h_dups, "h"), on="email_key")
    pairs = pairs.drop_duplicates("s").drop_duplicates("h")
    return pairs[["s", "h"]].assign(matched_by="email")


def _add_cross_duplicates(
    dups: pd.DataFrame, frame: pd.DataFrame, side: Side, other: pd.DataFrame, pairs: pd.DataFrame
) -> pd.DataFrame:
    """Unpaired rows whose email is held by an already paired contact on the other side.

    Creating them would collide with that contact, so they are duplicates of its partner.
    """
    mine, theirs = ("s", "h") if side == Side.SALESFORCE else ("h", "s")
    own = OWN_ID[side]
    partner = pairs[[mine, theirs]].assign(email_key=other["email_key"].to_numpy()[pairs[theirs].to_numpy()])
    partner = partner.dropna(subset="email_key").sort_values(mine).drop_duplicates("email_key")
    partner = partner.assign(dup_of=frame[own].to_numpy()[partner[mine].to_numpy()], dup_pos=partner[mine])
    keep = ~frame["deleted"] & frame["email_key"].notna()
    keep &= ~frame.index.isin(pairs[mine]) & ~frame.index.isin(dups.index)
    loose = frame.loc[keep, ["email_key"]].reset_index(names="pos")
    found = loose.merge(partner[["email_key", "dup_of", "dup_pos"]], on="email_key").set_index("pos")
    if found.empty:
        return dups
    return pd.concat([dups, found[["dup_of", "dup_pos"]]])


def _groups(
    s: pd.DataFrame, h: pd.DataFrame, pairs: pd.DataFrame, s_dups: pd.DataFrame, h_dups: pd.DataFrame
) -> pd.DataFrame:
    s_alone = s.index[~s.index.isin(pairs["s"]) & ~s.index.isin(s_dups.index)]
    h_alone = h.index[~h.index.isin(pairs["h"]) & ~h.index.isin(h_dups.index)]
    keys = pd.concat(
        [
            pairs[["s", "h", "matched_by"]],
            pd.DataFrame({"s": s_alone, "h": -1, "matched_by": None}),
            pd.DataFrame({"s": -1, "h": h_alone, "matched_by": None}),
        ],
        ignore_index=True,
    ).astype({"s": "int64", "h": "int64"})
    wide = keys.merge(s.add_prefix(PREFIX[Side.SALESFORCE]), left_on="s", right_index=True, how="left")
    wide = wide.merge(h.add_prefix(PREFIX[Side.HUBSPOT]), left_on="h", right_index=True, how="left")
    wide = wide.reset_index(drop=True)
    for prefix, key in ((PREFIX[Side.SALESFORCE], "s"), (PREFIX[Side.HUBSPOT], "h")):
        wide[prefix + "present"] = wide[key] >= 0
        for flag in ("changed", "deleted"):
            wide[prefix + flag] = wide[prefix + flag].fillna(False).astype(bool)
    return wide
