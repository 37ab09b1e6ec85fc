"""Contacts in the window that equal what the sync state says both CRMs agreed: nothing to do, nothing to fetch.

Most of a window after a sync is the sync's own writes coming back (the target's modstamp moved), and many
other contacts change only in fields the mapping does not carry. A contact still linked to the pair the
state knows, whose every mapped field equals the recorded value, has nothing to propagate; its counterpart's
own changes are handled in the counterpart's window. Leaving such contacts out before the counterparts are
looked up is what keeps an echo window at zero writes and close to zero lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from include.sync_logic.canonical import OWN_ID, PREFIX, equal, to_canonical
from include.sync_logic.counterparts import STAGED_ID
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.merge import base_for, keeps_blank, source_of
from include.sync_logic.normalize import is_in
from include.sync_logic.sides import Side


def settled_mask(frame: pd.DataFrame, side: Side, mapping: MappingConfig, snapshots: pd.DataFrame | None) -> np.ndarray:
    """Per staged row: linked as its state pair says, not deleted, and every mapped field equal to the state's."""
    return _settled(to_canonical(frame, side, mapping), side, mapping, snapshots)


def _settled(canonical: pd.DataFrame, side: Side, mapping: MappingConfig, snapshots: pd.DataFrame | None) -> np.ndarray:
    pairs = pd.DataFrame(
        {
            PREFIX[Side.SALESFORCE] + "sf_id": canonical["sf_id"].to_numpy(),
            PREFIX[Side.HUBSPOT] + "hs_id": canonical["hs_id"].to_numpy(),
        }
    )
    base = base_for(pairs, snapshots, mapping, every_field=True)
    settled = np.array(canonical["sf_id"].notna() & canonical["hs_id"].notna() & ~canonical["deleted"], dtype=bool)
    for item in mapping.fields:
        source = source_of(item)
        if not item.two_way and source is None:
            continue  # written to neither side: nothing to propagate
        recorded = base.values[item.name]
        same = np.array(equal(canonical[item.name].reset_index(drop=True), recorded), dtype=bool)
        if source == side.other and keeps_blank(item, source):
            same |= recorded.isna().to_numpy()  # the from-side is blank and never clears this side's own value
        settled &= base.known[item.name].to_numpy() & same
    return settled


def drop_settled(
    frames: dict[Side, pd.DataFrame],
    mapping: MappingConfig,
    snapshots: pd.DataFrame | None,
    keep: Mapping[Side, Iterable[str]],
) -> tuple[dict[Side, pd.DataFrame], dict[Side, int]]:
    """The frames without their settled rows, and how many each side lost.

    Kept anyway: ids in ``keep`` (retry-queue entries), and a settled row whose counterpart is in the other
    frame unsettled, since that counterpart needs it and would otherwise look it up.
    """
    canonical = {side: to_canonical(frames[side], side, mapping) for side in Side}
    settled = {side: _settled(canonical[side], side, mapping, snapshots) for side in Side}
    links = {side: canonical[side][OWN_ID[side.other]] for side in Side}
    unsettled_ids = {side: frames[side][STAGED_ID[side]].astype("str")[~settled[side]] for side in Side}
    out: dict[Side, pd.DataFrame] = {}
    dropped: dict[Side, int] = {}
    for side in Side:
        needed = is_in(links[side], unsettled_ids[side.other]).to_numpy()
        kept = is_in(frames[side][STAGED_ID[side]].astype("str"), pd.Series(list(keep[side]), dtype="object"))
        drop = settled[side] & ~needed & ~kept.to_numpy()
        out[side] = frames[side][~drop].reset_index(drop=True)
        dropped[side] = int(drop.sum())
    return out, dropped
