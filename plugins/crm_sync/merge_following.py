"""Following merges made inside the CRMs, for reconcile: detect them, move the pairs, record the tombstones, and
keep the merged-away contacts' counterparts from re-creating them (the rules are in `include.sync_logic.merges`).

Detection costs: HubSpot none (the window's records carry `hs_merged_object_ids`), Salesforce one queryAll per
window (more pages only past 2,000 merges; none on the event path, whose reads by id bring the merged-away rows its
events name). A survivor that a moved counterpart must meet and the window did not bring is read by id (one batch
read or composite call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from include.sync_logic.counterparts import STAGED_ID, union_staged
from include.sync_logic.merges import (
    MERGED,
    TOMBSTONE_COLUMNS,
    MergePlan,
    claim_link,
    follow_survivor,
    hubspot_merge_events,
    hubspot_redirect_events,
    merged_links,
    plan_merges,
    salesforce_merge_events,
    separate_skips,
)
from include.sync_logic.reconcile import Reconciliation
from include.sync_logic.sides import Side

# How long Salesforce keeps a deleted (merged-away) record, and with it its unique link value.
RECYCLE_BIN = pd.Timedelta(days=15)

if TYPE_CHECKING:
    from crm_sync.counterpart_sources import SideReader
    from crm_sync.hooks.contacts import ContactsHook
    from crm_sync.hooks.hubspot import HubSpotContactsHook
    from crm_sync.hooks.salesforce import SalesforceContactsHook
    from crm_sync.state.store import SyncStateStore
    from include.sync_logic.mapping import MappingConfig


@dataclass
class FollowedMerges:
    """What reconcile needs after the merges: the candidates (separate counterparts left out, moved ones made to
    meet their survivor), one skip decision per separate counterpart, the window's merges as tombstone rows
    (staged for the contact history), and counts for the log and report."""

    candidates: dict[Side, pd.DataFrame]
    skips: pd.DataFrame
    merged: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def window_merges(
    candidates: dict[Side, pd.DataFrame],
    salesforce_merged: pd.DataFrame,
    store: SyncStateStore,
    mapping: MappingConfig,
) -> MergePlan:
    """The candidates' merges: HubSpot records listing merged ids, and Salesforce's merged-away rows (`Id`,
    `MasterRecordId`, `SystemModstamp`)."""
    events = pd.concat(
        [
            hubspot_merge_events(candidates[Side.HUBSPOT], _listed_ids(candidates[Side.HUBSPOT])),
            salesforce_merge_events(salesforce_merged),
        ],
        ignore_index=True,
    )
    return _plan(events, store, _survivor_links(candidates[Side.HUBSPOT], mapping))


def redirected_merges(hubspot: pd.DataFrame, store: SyncStateStore, mapping: MappingConfig) -> MergePlan:
    """Merges seen in the counterpart reads: a HubSpot id asked for and answered by another record (a merge that
    no window showed, e.g. one made before the sync ran). No call of its own."""
    asked = hubspot["lookup_key"].dropna().astype("str") if "lookup_key" in hubspot.columns else pd.Series([])
    events = hubspot_redirect_events(hubspot, asked)
    return _plan(events, store, _survivor_links(hubspot, mapping))


def _plan(events: pd.DataFrame, store: SyncStateStore, survivor_links: dict[str, str]) -> MergePlan:
    """The merges of contacts the sync state pairs, and where they leave the pairs."""
    losers = {side: events.loc[events["side"] == side, "loser_id"] for side in Side}
    known = store.read_snapshots(losers[Side.SALESFORCE], losers[Side.HUBSPOT])
    known_ids = {Side.SALESFORCE: set(known["salesforce_id"]), Side.HUBSPOT: set(known["hubspot_id"])}
    known_loser = [loser in known_ids[Side(side)] for side, loser in events[["side", "loser_id"]].to_numpy()]
    events = events.loc[pd.Series(known_loser, index=events.index, dtype=bool)]
    survivors = {side: events.loc[events["side"] == side, "survivor_id"] for side in Side}
    snapshots = pd.concat([known, store.read_snapshots(survivors[Side.SALESFORCE], survivors[Side.HUBSPOT])])
    return plan_merges(events, snapshots.drop_duplicates("salesforce_id"), survivor_links)


def follow_merges(
    candidates: dict[Side, pd.DataFrame],
    plan: MergePlan,
    mapping: MappingConfig,
    store: SyncStateStore,
    readers: dict[Side, SideReader],
    *,
    targets: tuple[Side, ...],
    run_id: str,
    dry_run: bool,
    log: Callable[..., None],
    merge_hubspot: Callable[[str, str], str] | None = None,
) -> FollowedMerges:
    """Apply the plan to the sync state (not on a dry run), then sort out the candidates linked to merged-away
    contacts: this run's merges and those recorded before. ``merge_hubspot`` (the mapping's `propagate_merges`,
    not on a dry run) merges a separate HubSpot counterpart into the survivor's."""
    if not dry_run:
        for row in plan.relinks.itertuples(index=False):
            store.relink_pair(str(row.side), str(row.old_id), str(row.new_id))
        if len(plan.tombstones):
            store.record_tombstones(plan.tombstones, run_id=run_id)
    for row in plan.tombstones.itertuples(index=False):
        log(
            "Merge: %s %s merged into %s (counterpart %s)",
            row.side,
            row.contact_id,
            row.survivor_id,
            row.counterpart_id,
        )
    links = {side: _link_ids(candidates[side], side, mapping) for side in Side}
    recorded = store.read_tombstones(salesforce_ids=links[Side.HUBSPOT], hubspot_ids=links[Side.SALESFORCE])
    tombstones = pd.concat([plan.tombstones, recorded[plan.tombstones.columns]], ignore_index=True)
    tombstones = tombstones.drop_duplicates(["side", "contact_id"], ignore_index=True)
    survivors = {side: tombstones.loc[tombstones["side"] == side, "survivor_id"].dropna() for side in Side}
    pairs = store.read_snapshots(survivors[Side.SALESFORCE], survivors[Side.HUBSPOT])
    out = dict(candidates)
    out[Side.SALESFORCE] = _claim_held_links(out[Side.SALESFORCE], mapping, store)  # blank as read, not as cleared
    for side in Side:  # a moved pair's counterpart meets the survivor in this run, changed or not
        mates = set(plan.relinks.loc[plan.relinks["side"] == side.other, "counterpart_id"])
        out[side] = _with_ids(out[side], side, mates, readers)
    separate = []
    for side in Side:
        found = merged_links(out[side], side, mapping, tombstones, pairs)
        separate.append(found.separate)
        out[side] = out[side][~out[side][STAGED_ID[side]].astype("str").isin(found.separate["contact_id"])]
        if found.moved:
            meet = _with_ids(out[side.other], side.other, set(found.moved.values()), readers)
            if side.other == Side.SALESFORCE:  # the loser holds the link value until purged: see claim_link
                moved_to = {survivor: contact for contact, survivor in found.moved.items()}
                out[side.other] = claim_link(meet, side.other, mapping, moved_to)
            else:
                out[side.other] = meet
                out[side] = follow_survivor(out[side], side, mapping, found.moved, meet)
            log("Merge: %d %s contacts follow their pair to the survivor", len(found.moved), side)
    # This run's merges report their separate counterparts whether or not these changed; earlier ones when they do.
    apart = pd.concat([plan.separate, *separate], ignore_index=True).drop_duplicates(["side", "contact_id"])
    if merge_hubspot is not None:
        apart = _propagate_to_hubspot(apart, merge_hubspot, store, run_id, log)
        gone = set(apart.loc[apart["note"].notna(), "survivor_counterpart_id"])  # merged: the new record is next
        out[Side.HUBSPOT] = out[Side.HUBSPOT][~out[Side.HUBSPOT]["id"].astype("str").isin(gone)]
    skips = separate_skips(apart, targets)
    for reason in skips["reason"]:
        log("Merge: %s", reason)
    return FollowedMerges(
        candidates={side: frame.reset_index(drop=True) for side, frame in out.items()},
        skips=skips,
        merged=_with_moved_counterparts(plan),
        counts={
            "merged_away": len(plan.tombstones),
            "pairs_moved": len(plan.relinks),
            "separate_counterparts": len(apart),
        },
    )


def _propagate_to_hubspot(
    apart: pd.DataFrame, merge: Callable[[str, str], str], store: SyncStateStore, run_id: str, log: Callable[..., None]
) -> pd.DataFrame:
    """Merge each separate HubSpot counterpart into the survivor's counterpart (HubSpot answers a new record): the
    survivor's pair moves to the new id and both old ids become tombstones. A refused merge stays reported only."""
    from crm_sync.hooks.hs_errors import HubSpotError

    notes: list[str | None] = []
    for row in apart.itertuples(index=False):
        if row.side != Side.HUBSPOT or row.survivor_counterpart_id is None:
            notes.append(None)
            continue
        into, loser = str(row.survivor_counterpart_id), str(row.contact_id)
        try:
            new_id = merge(into, loser)
        except HubSpotError as exc:
            log("Merge: HubSpot %s not merged into %s: %s", loser, into, exc)
            notes.append(None)
            continue
        store.relink_pair(str(Side.HUBSPOT), into, new_id)
        now = pd.Timestamp.now(tz="UTC")
        merged = [
            (into, None),  # the survivor's counterpart: its pair moved to the new id above
            (loser, row.loser_id),
        ]
        store.record_tombstones(
            pd.DataFrame(
                [(str(Side.HUBSPOT), old, MERGED, now, new_id, mate) for old, mate in merged],
                columns=TOMBSTONE_COLUMNS,
            ),
            run_id=run_id,
        )
        notes.append(f"merged into HubSpot {into} too (propagate_merges), new id {new_id}")
        log("Merge: HubSpot %s merged into %s (new id %s)", loser, into, new_id)
    return apart.assign(note=pd.Series(notes, index=apart.index, dtype="object"))


def _with_moved_counterparts(plan: MergePlan) -> pd.DataFrame:
    """The plan's tombstones naming, for the contact history, the counterpart of a pair that moved to the survivor
    too (the tombstone itself names only a counterpart left behind)."""
    moved = {(str(row.side), str(row.old_id)): str(row.counterpart_id) for row in plan.relinks.itertuples(index=False)}
    keys = plan.tombstones[["side", "contact_id", "counterpart_id"]].to_numpy()
    return plan.tombstones.assign(counterpart_id=[moved.get((side, loser), mate) for side, loser, mate in keys])


def _claim_held_links(salesforce: pd.DataFrame, mapping: MappingConfig, store: SyncStateStore) -> pd.DataFrame:
    """Salesforce survivors with a blank link that took a loser's pair while the loser is in the Recycle Bin: read as
    linked to their pair's counterpart (`claim_link`), in every run until the loser is purged and the link can be
    written."""
    link = mapping.link.salesforce
    blank = salesforce.loc[salesforce[link].isna(), "Id"] if link in salesforce.columns else salesforce["Id"]
    held = store.read_merged_into(str(Side.SALESFORCE), blank.astype("str"))
    # A loser whose counterpart moved to the survivor (no counterpart left behind) held that pair's link value.
    held = held[held["counterpart_id"].isna() & (held["happened_at"] > pd.Timestamp.now(tz="UTC") - RECYCLE_BIN)]
    if held.empty:
        return salesforce
    pairs = store.read_snapshots(salesforce_ids=held["survivor_id"])
    return claim_link(salesforce, Side.SALESFORCE, mapping, _pair_ids(pairs))


def _pair_ids(pairs: pd.DataFrame) -> dict[str, str]:
    return dict(zip(pairs["salesforce_id"], pairs["hubspot_id"], strict=True))


def _listed_ids(hubspot: pd.DataFrame) -> list[str]:
    """Every id the window's HubSpot records list as merged into them."""
    if "hs_merged_object_ids" not in hubspot.columns:
        return []
    listed = hubspot["hs_merged_object_ids"].dropna().astype("str").str.split(";").explode().str.strip()
    return sorted(set(listed))


def _survivor_links(hubspot: pd.DataFrame, mapping: MappingConfig) -> dict[str, str]:
    """A merged HubSpot record's link value (the primary's): which loser's pair it keeps."""
    link = mapping.link.hubspot
    if link not in hubspot.columns:
        return {}
    linked = hubspot.dropna(subset=[link])
    return dict(zip(linked["id"].astype("str"), linked[link].astype("str"), strict=True))


def _link_ids(frame: pd.DataFrame, side: Side, mapping: MappingConfig) -> list[str]:
    link = mapping.link.on(side)
    return sorted(set(frame[link].dropna().astype("str"))) if link in frame.columns else []


def _with_ids(frame: pd.DataFrame, side: Side, ids: set[str], readers: dict[Side, SideReader]) -> pd.DataFrame:
    """The side's frame with these contacts read by id where it does not hold them yet."""
    missing = sorted(ids - set(frame[STAGED_ID[side]].astype("str")))
    if not missing:
        return frame
    return union_staged([frame, readers[side].fetchers[f"{side}_ids"](missing)], side)


@dataclass(frozen=True)
class MergeFollowing:
    """One run's way of following merges (its hooks, state, mapping and settings). Reconcile calls `window` on
    its candidates before the counterparts are looked up, then `redirects` on the closed frames."""

    salesforce_merged: Callable[[], pd.DataFrame]  # Salesforce's merged-away rows: a window's queryAll, or in hand
    salesforce: SalesforceContactsHook
    hubspot: HubSpotContactsHook  # merges a separate counterpart (propagate_merges)
    store: SyncStateStore
    mapping: MappingConfig
    targets: tuple[Side, ...]
    run_id: str
    dry_run: bool
    log: Callable[..., None]

    def window(self, candidates: dict[Side, pd.DataFrame], readers: dict[Side, SideReader]) -> FollowedMerges:
        """The window's merges followed on the candidates."""
        salesforce = self.salesforce
        salesforce.get_conn()  # the session's token request is no API call in Salesforce's limits, nor detection's
        return self._follow(
            candidates,
            readers,
            lambda: window_merges(candidates, self.salesforce_merged(), self.store, self.mapping),
        )

    def redirects(self, frames: dict[Side, pd.DataFrame], readers: dict[Side, SideReader]) -> FollowedMerges:
        """Merges the counterpart reads revealed, followed on the closed frames."""
        return self._follow(frames, readers, lambda: redirected_merges(frames[Side.HUBSPOT], self.store, self.mapping))

    def _follow(
        self, frames: dict[Side, pd.DataFrame], readers: dict[Side, SideReader], detect: Callable[[], MergePlan]
    ) -> FollowedMerges:
        """Detect, then follow (see `follow_merges`), counting the API calls each CRM spent on it."""
        hooks: dict[Side, ContactsHook] = {Side.SALESFORCE: self.salesforce, Side.HUBSPOT: self.hubspot}
        before = {side: hooks[side].api_calls for side in Side}
        plan = detect()
        propagate = self.mapping.propagate_merges and not self.dry_run
        followed = follow_merges(
            frames,
            plan,
            self.mapping,
            self.store,
            readers,
            targets=self.targets,
            run_id=self.run_id,
            dry_run=self.dry_run,
            log=self.log,
            merge_hubspot=self.hubspot.merge_contacts if propagate else None,
        )
        followed.counts.update({f"{side}_api_calls": hooks[side].api_calls - before[side] for side in Side})
        if followed.counts["merged_away"] or followed.counts["separate_counterparts"]:
            self.log("Merges: %s", ", ".join(f"{key} {value}" for key, value in followed.counts.items()))
        return followed


def both_passes(first: FollowedMerges, second: FollowedMerges) -> FollowedMerges:
    """The two passes of a run as one: the second's frames, skips and merges of both (once), counts added."""
    skips = pd.concat([first.skips, second.skips], ignore_index=True).drop_duplicates(["target", "source_id"])
    return FollowedMerges(
        candidates=second.candidates,
        skips=skips.reset_index(drop=True),
        merged=pd.concat([first.merged, second.merged], ignore_index=True).drop_duplicates(["side", "contact_id"]),
        counts={key: first.counts.get(key, 0) + second.counts.get(key, 0) for key in first.counts | second.counts},
    )


def with_skips(result: Reconciliation, skips: pd.DataFrame) -> Reconciliation:
    """The reconciliation with the separate counterparts' skip decisions added."""
    if skips.empty:
        return result
    decisions = pd.concat([result.decisions, skips], ignore_index=True)
    return Reconciliation(decisions=decisions, baseline=result.baseline)
