"""Reconcile: the window's changes plus the retry queue's due contacts, their counterparts and the sync state
-> one decision per contact and target, and the baseline the state records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file, param_template, run_try
from crm_sync.report import merge_counters
from crm_sync.staging import read_frames, write_frame
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd
    from airflow.sdk import Context, ObjectStoragePath

    from crm_sync.counterpart_sources import SideReader
    from crm_sync.gone_contacts import GoneContacts
    from crm_sync.hooks.contacts import ContactsHook
    from crm_sync.hooks.hubspot import HubSpotContactsHook
    from crm_sync.hooks.salesforce import SalesforceContactsHook
    from crm_sync.merge_following import MergeFollowing
    from crm_sync.partitioned import PartitionedReconciliation
    from crm_sync.state.store import SyncStateStore
    from crm_sync.task_results import ExtractResult, ReconcileResult, Tombstones
    from include.sync_logic.mapping import MappingConfig
    from include.sync_logic.sides import Direction


def _frame_or_empty(urls: list[str], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    frame = read_frames(urls)
    return frame if frame is not None else pd.DataFrame(columns=columns)


class WindowFacts(TypedDict):
    """What a window's reconcile adds to the result (a full resync has none of it)."""

    settled_in_window: dict[str, int]
    read_plan: dict[str, dict[str, Any]]
    merges: dict[str, int]


class ReconcileContactsOperator(CrmConnectionsOperator):
    """A window: due retries added, settled contacts dropped, counterparts found by the cheaper read, then the
    three-way merge and decisions. A full resync: every staged contact, partition by partition.
    Decisions and baseline are staged as lists of parts (one per partition).

    :param extracts: each side's extract result (its `.output`).
    :param mapping_path: the mapping file (templated).
    :param state_conn_id: the sync-state database (templated; default: the run's param).
    """

    template_fields = (*CrmConnectionsOperator.template_fields, "mapping_path", "extracts", "state_conn_id")
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        extracts: Mapping[Side, ExtractResult],
        mapping_path: str,
        state_conn_id: str = param_template("state_conn_id"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extracts = extracts
        self.mapping_path = mapping_path
        self.state_conn_id = state_conn_id

    def execute(self, context: Context) -> ReconcileResult:
        from crm_sync.gone_contacts import staged_identity
        from crm_sync.hooks.contacts import contacts_hook
        from crm_sync.partitioned import reconcile_staged
        from crm_sync.settings import crm_sync_settings
        from crm_sync.state.hook import SyncStateHook

        params = self.run_params(context)
        mapping = load_mapping_file(self.mapping_path)
        sf_hook = contacts_hook(Side.SALESFORCE, self.salesforce_conn_id, redis_conn_id=self.redis_conn_id)
        hs_hook = contacts_hook(Side.HUBSPOT, self.hubspot_conn_id, redis_conn_id=self.redis_conn_id)
        hooks: dict[Side, ContactsHook] = {Side.SALESFORCE: sf_hook, Side.HUBSPOT: hs_hook}
        store = SyncStateHook(self.state_conn_id).get_store()
        folder = self.try_folder(context)
        direction = params.direction
        due = self._due_retries(store, direction, context)
        extracts = self.extracts
        known_pairs = store.pair_count()  # before this run's baseline: each CRM's size from below
        window_facts: WindowFacts | None = None
        find_gone = gone_finder(
            store, hooks, mapping, run_id=context["run_id"], dry_run=params.dry_run, log=self.log.info
        )
        if params.full_resync:
            # Every contact of both CRMs is in the staged parts: nothing to look up, partitions bound memory.
            # Only the partners gone from them are looked up, then every partition takes its tombstones.
            parts = {side: extracts[side]["paths"] for side in Side}
            gone = find_gone(staged_identity(parts, mapping), store.read_pair_ids())
            gone.stage_events(folder)
            tombstones = gone.as_dict()
            outcome = reconcile_staged(
                parts,
                mapping,
                direction=direction,
                read_snapshots=store.read_snapshots,
                folder=folder,
                partition_contacts=crm_sync_settings().partition_contacts,
                log=self.log.info,
                tombstones=gone.tombstones,
            )
        else:
            follow = self._merge_follower(extracts, mapping, direction, (sf_hook, hs_hook), store, context)
            outcome, tombstones, window_facts = self._reconcile_window(
                extracts, due, mapping, direction, hooks, store, folder, known_pairs, follow, find_gone
            )
        recorded = record_decisions(store, outcome, run_id=context["run_id"], dry_run=params.dry_run, log=self.log.info)
        result: ReconcileResult = {
            "folder": str(folder),
            "decisions": outcome.decisions,
            "baseline": outcome.baseline,
            "partitions": outcome.partitions,
            "counts": dict(outcome.counts),
            "in_window": {str(side): extracts[side]["count"] for side in Side},
            "retries_due": {str(side): len(due[side]) for side in Side},
            "snapshots_read": outcome.snapshots_read,
            "baseline_recorded": recorded,
            "known_pairs": known_pairs,
            "tombstones": tombstones,
            "api": merge_counters([hook.api_stats() for hook in hooks.values()]),
        }
        if window_facts is not None:
            result["settled_in_window"] = window_facts["settled_in_window"]
            result["read_plan"] = window_facts["read_plan"]
            result["merges"] = window_facts["merges"]
        return result

    def _reconcile_window(
        self,
        extracts: Mapping[Side, ExtractResult],
        due: dict[Side, list[str]],
        mapping: MappingConfig,
        direction: Direction,
        hooks: dict[Side, ContactsHook],
        store: SyncStateStore,
        folder: ObjectStoragePath,
        known_pairs: int,
        follow: MergeFollowing,
        find_gone: Callable[..., GoneContacts],
    ) -> tuple[PartitionedReconciliation, Tombstones, WindowFacts]:
        """A window: its staged contacts and the due retries (read by id) are the candidates."""
        from crm_sync.counterpart_sources import side_readers
        from include.sync_logic.counterparts import union_staged

        readers = side_readers(hooks, mapping)
        columns = {Side.SALESFORCE: mapping.salesforce_fields, Side.HUBSPOT: ["id", *mapping.hubspot_properties]}
        candidates = {}
        for side in Side:
            window = _frame_or_empty(extracts[side]["paths"], columns[side])
            fetched = readers[side].fetchers[f"{side}_ids"](due[side]) if due[side] else None
            candidates[side] = union_staged([window, fetched], side) if fetched is not None else window
        return reconcile_candidates(
            candidates,
            keep=due,
            mapping=mapping,
            direction=direction,
            readers=readers,
            store=store,
            folder=folder,
            known_pairs=known_pairs,
            follow=follow,
            find_gone=find_gone,
            log=self.log.info,
        )

    def _merge_follower(
        self,
        extracts: Mapping[Side, ExtractResult],
        mapping: MappingConfig,
        direction: Direction,
        hooks: tuple[SalesforceContactsHook, HubSpotContactsHook],
        store: SyncStateStore,
        context: Context,
    ) -> MergeFollowing:
        """Merges made in the CRMs, followed on the window's candidates (`crm_sync.merge_following`)."""
        from datetime import datetime
        from functools import partial

        from crm_sync.merge_following import MergeFollowing

        read = extracts[Side.SALESFORCE]
        start, end = datetime.fromisoformat(read["window_start"]), datetime.fromisoformat(read["window_end"])
        return MergeFollowing(
            salesforce_merged=partial(hooks[0].merged_contacts, start, end),
            salesforce=hooks[0],
            hubspot=hooks[1],
            store=store,
            mapping=mapping,
            targets=direction.targets,
            run_id=context["run_id"],
            dry_run=self.run_params(context).dry_run,
            log=self.log.info,
        )

    def _due_retries(self, store: SyncStateStore, direction: Direction, context: Context) -> dict[Side, list[str]]:
        """Source ids of the due retry-queue entries this run takes, per source side, for the targets it writes.

        The run takes them (a lease to this try of the run, see `SyncStateStore.claim_due`) so that a backfill's
        runs and the scheduled one beside them never try one entry at once; settle ends the lease. A dry run
        writes nothing, so it only looks.
        """
        targets = [str(target) for target in direction.targets]
        dry_run = self.run_params(context).dry_run
        if dry_run:
            due = store.due()
            due = due[due["target"].isin(targets)]
        else:
            due = store.claim_due(run_id=context["run_id"], run_try=run_try(context), targets=targets)
        by_side = {side: sorted(set(due.loc[due["target"] == side.other, "source_id"].astype(str))) for side in Side}
        self.log.info(
            "Retry queue: %d due entries %s (%s)",
            len(due),
            "seen (dry run: not taken)" if dry_run else "taken by this run",
            ", ".join(f"{side} {len(ids)}" for side, ids in by_side.items()),
        )
        return by_side


def gone_finder(
    store: SyncStateStore,
    hooks: dict[Side, ContactsHook],
    mapping: MappingConfig,
    *,
    run_id: str,
    dry_run: bool,
    log: Callable[[str], None],
) -> Callable[..., GoneContacts]:
    """`find_gone_contacts` bound to one run's state, hooks and mapping."""
    from functools import partial

    from crm_sync.gone_contacts import find_gone_contacts

    return partial(
        find_gone_contacts, store=store, hooks=hooks, mapping=mapping, run_id=run_id, dry_run=dry_run, log=log
    )


def reconcile_candidates(
    candidates: dict[Side, pd.DataFrame],
    *,
    keep: Mapping[Side, Sequence[str]],
    mapping: MappingConfig,
    direction: Direction,
    readers: dict[Side, SideReader],
    store: SyncStateStore,
    folder: ObjectStoragePath,
    known_pairs: int,
    follow: MergeFollowing,
    find_gone: Callable[..., GoneContacts],
    log: Callable[[str], None],
) -> tuple[PartitionedReconciliation, Tombstones, WindowFacts]:
    """Candidates (a window's contacts and due retries, or the contacts events name) to staged decisions: merges
    followed, settled contacts dropped (never those in `keep`), counterparts found by the read plan (which takes
    the sync state's `known_pairs` as each side's size from below), tombstones, then the three-way merge."""
    import pandas as pd

    from crm_sync.counterpart_sources import plan_reads
    from crm_sync.gone_contacts import read_alive_again
    from crm_sync.merge_following import both_passes, with_skips
    from crm_sync.partitioned import PartitionedReconciliation, reconcile_frames, write_partition
    from include.sync_logic.counterparts import STAGED_ID, close_counterparts, counterpart_requests
    from include.sync_logic.settled import drop_settled

    merges = follow.window(candidates, readers)  # before the snapshots are read: a merge may move a pair
    candidates = merges.candidates
    window_ids = {side: candidates[side][STAGED_ID[side]].astype(str) for side in Side}
    known = store.read_snapshots(window_ids[Side.SALESFORCE], window_ids[Side.HUBSPOT])
    back = read_alive_again(candidates, store)  # restored contacts stay candidates: their pair resumes
    kept = {side: [*keep.get(side, ()), *back.loc[back["side"] == side, "contact_id"]] for side in Side}
    candidates, settled = drop_settled(candidates, mapping, known, kept)
    log(
        "Equal to the sync state (own writes echoing back, or unmapped changes): "
        + ", ".join(f"{side} {n}" for side, n in settled.items())
        + "; no lookup, no write"
    )
    request = counterpart_requests(candidates[Side.SALESFORCE], candidates[Side.HUBSPOT], mapping)
    plans, fetchers = plan_reads(request, candidates, readers, mapping, folder, log, known_pairs=known_pairs)
    sf_all, hs_all = close_counterparts(
        candidates[Side.SALESFORCE], candidates[Side.HUBSPOT], mapping, fetchers, log=log
    )
    closed = follow.redirects({Side.SALESFORCE: sf_all, Side.HUBSPOT: hs_all}, readers)  # merged before
    sf_all, hs_all = closed.candidates[Side.SALESFORCE], closed.candidates[Side.HUBSPOT]
    merges = both_passes(merges, closed)
    if len(merges.merged):  # for the contact history
        write_frame(folder / "merges" / "part-00000.parquet", merges.merged)
    # The candidates' snapshots were read above: only the fetched counterparts' are still missing.
    fetched_ids = {
        side: frame[STAGED_ID[side]].astype(str) for side, frame in ((Side.SALESFORCE, sf_all), (Side.HUBSPOT, hs_all))
    }
    more = store.read_snapshots(
        *(fetched_ids[side][~fetched_ids[side].isin(window_ids[side])] for side in (Side.SALESFORCE, Side.HUBSPOT))
    )
    snapshots = pd.concat([known, more], ignore_index=True).drop_duplicates("salesforce_id", ignore_index=True)
    log(f"Sync state: {len(snapshots)} snapshots for {len(sf_all)} + {len(hs_all)} contacts")
    changed = {side: candidates[side][STAGED_ID[side]].astype(str) for side in Side}
    outcome = PartitionedReconciliation(snapshots_read=len(snapshots))
    gone = find_gone({Side.SALESFORCE: sf_all, Side.HUBSPOT: hs_all}, snapshots)
    gone.stage_events(folder)
    result = reconcile_frames(sf_all, hs_all, changed, mapping, direction, snapshots, gone.tombstones)
    write_partition(outcome, 0, with_skips(result, merges.skips), folder)
    facts: WindowFacts = {
        "settled_in_window": {str(side): n for side, n in settled.items()},
        "read_plan": {str(side): plan.as_dict() for side, plan in plans.items()},
        "merges": merges.counts,
    }
    return outcome, gone.as_dict(), facts


def record_decisions(
    store: SyncStateStore,
    outcome: PartitionedReconciliation,
    *,
    run_id: str,
    dry_run: bool,
    log: Callable[[str], None],
) -> int:
    """Record the baseline (not on a dry run) and log the decisions; returns the pairs recorded."""
    from crm_sync.state.settling import record_baseline

    if dry_run:
        recorded = 0
        log("dry run: the baseline is not recorded in the sync state")
    else:
        recorded = record_baseline(store, outcome.baseline, run_id=run_id)
    log("::group::Decisions")
    for key, value in sorted(outcome.counts.items()):
        log(f"{key}: {value}")
    log(f"conflicts resolved: {outcome.conflicts}")
    log(f"pairs whose agreed values the state recorded before any write: {recorded}")
    log("::endgroup::")
    return recorded
