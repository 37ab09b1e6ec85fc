"""The event DAG's one task: claim a micro-batch of contact events, sync the contacts they name exactly as the windowed
DAG syncs a window's, acknowledge the batch; again, while events keep coming, until the run has had its time. A
micro-batch is claimed when a full one waits or its oldest event is `batch_seconds` old
(`include.sync_logic.event_batch_close`): each batch costs a read and a write per CRM, so fuller ones cost less.

Each micro-batch gets a folder of its own in the try's folder and goes through the windowed DAG's code, on the same
sync state, hooks and rate-limit pool:
1. the contacts the events name, read by id on both CRMs with the counterparts the sync state pairs them with
   (`include.sync_logic.event_batch`: one read a CRM for paired contacts), staged as the extracts stage theirs;
2. reconcile (`reconcile_candidates`: merges followed, settled contacts dropped, unpaired contacts' counterparts
   looked up by link id or email, tombstones, the three-way merge), the baseline recorded;
3. the mass-change gate, then per CRM written to the plan and the loads, the link-back and settle;
4. the batch's entries acknowledged (the queue deletes them).
The run's own writes come back as events (HubSpot's webhooks, the Salesforce poll); each write's digests are
recorded (`crm_sync.events.echo_ledger`), and a claimed event that says exactly what was written is an echo:
acknowledged unread and counted, so it costs no read (`include.sync_logic.event_echoes`).
A batch that fails is not acknowledged: the task's retry takes its entries over at once, any later run after the
queue's lease. Reads are by id and writes idempotent (upserts on the link keys, updates by id), so a repeat costs
calls, never a duplicate; what the event path misses, the windowed DAG still finds in its window.

One task, because each hand-off between tasks costs seconds of scheduling and a worker start.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypedDict

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file, param_template, run_try
from crm_sync.settings import DEFAULTS
from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd
    from airflow.sdk import Context, ObjectStoragePath
    from airflow.sdk.types import Logger

    from crm_sync.events.echo_ledger import EchoLedger
    from crm_sync.events.queue import ClaimedEvent, ContactEventQueue
    from crm_sync.hooks.contacts import ContactsHook
    from crm_sync.hooks.hubspot import HubSpotContactsHook
    from crm_sync.hooks.results import RecordResult
    from crm_sync.hooks.salesforce import SalesforceContactsHook
    from crm_sync.params import RunParams
    from crm_sync.state.store import SyncStateStore
    from crm_sync.task_results import ApiStats
    from include.sync_logic.event_batch import BatchReads
    from include.sync_logic.mapping import MappingConfig

BLOCK_MS = 4_000  # the longest wait for a new event before the run ends (redis-py 8's socket timeout is 5 s)


class EventBatchResult(TypedDict):
    """One micro-batch: its events by kind, the contacts read per CRM, the decisions, and how old its oldest and
    median events were when the batch was acknowledged (change-to-sync latency, seconds)."""

    folder: str
    events: int
    kinds: dict[str, int]
    read: dict[str, int]
    decisions: dict[str, int]
    oldest_age_seconds: float
    median_age_seconds: float


class EventRunResult(TypedDict):
    """What one event run did, and the API calls it spent per CRM; `echoes`: events that were the path's own writes
    coming back, acknowledged unread (in `acknowledged` too)."""

    batches: list[EventBatchResult]
    events: int
    echoes: int
    acknowledged: int
    api: ApiStats


class SyncContactEventsOperator(CrmConnectionsOperator):
    """Syncs the contact events waiting in the queue, a micro-batch at a time (see the module docstring).

    :param mapping_path: the mapping file (templated).
    :param state_conn_id: the sync-state database (templated; default: the run's param).
    :param max_batch: events a micro-batch claims at most; this many waiting close a batch at once.
    :param batch_seconds: how long the oldest waiting event may wait before its micro-batch is claimed: events
        gather meanwhile (fewer, fuller batches: fewer calls per change).
    :param run_seconds: after this long the run claims no more (the trigger starts another for what is left).
    """

    template_fields = (*CrmConnectionsOperator.template_fields, "mapping_path", "state_conn_id")
    ui_color = "#e6f2e6"

    def __init__(
        self,
        *,
        mapping_path: str,
        state_conn_id: str = param_template("state_conn_id"),
        max_batch: int = DEFAULTS.events_max_batch,
        batch_seconds: float = DEFAULTS.events_batch_seconds,
        run_seconds: float = DEFAULTS.events_run_seconds,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path
        self.state_conn_id = state_conn_id
        self.max_batch = max_batch
        self.batch_seconds = batch_seconds
        self.run_seconds = run_seconds

    def execute(self, context: Context) -> EventRunResult:
        from crm_sync.events.echo_ledger import EchoLedger
        from crm_sync.hooks.contacts import contacts_hook
        from crm_sync.report import merge_counters
        from crm_sync.staging import write_json
        from crm_sync.state.hook import SyncStateHook
        from include.sync_logic.event_echoes import salesforce_row_fields

        params = self.run_params(context)
        mapping = load_mapping_file(self.mapping_path)
        store = SyncStateHook(self.state_conn_id).get_store()
        salesforce = contacts_hook(Side.SALESFORCE, self.salesforce_conn_id, redis_conn_id=self.redis_conn_id)
        hubspot = contacts_hook(Side.HUBSPOT, self.hubspot_conn_id, redis_conn_id=self.redis_conn_id)
        hooks: dict[Side, ContactsHook] = {Side.SALESFORCE: salesforce, Side.HUBSPOT: hubspot}
        queue = self._queue(context)
        ledger = None if params.dry_run else EchoLedger(queue.client)  # a dry run neither records nor drops
        if ledger is not None:
            ledger.set_row_fields(salesforce_row_fields(mapping))
        attempt = self.try_folder(context) / f"attempt-{context['ti'].try_number}"
        started = time.monotonic()
        batches: list[EventBatchResult] = []
        events = echoes = acknowledged = 0
        while claimed := self._next_batch(queue, started):
            events += len(claimed)
            if ledger is not None:
                echoed = drop_echoes(claimed, ledger, self.log.info)
                echoes += len(echoed)
                acknowledged += queue.ack([item.entry_id for item in echoed])
                echoed_ids = {item.entry_id for item in echoed}
                claimed = [item for item in claimed if item.entry_id not in echoed_ids]
            if not claimed:
                continue
            batch = EventBatch(
                claimed,
                salesforce=salesforce,
                hubspot=hubspot,
                store=store,
                mapping=mapping,
                params=params,
                ledger=ledger,
                log=self.log.info,
            )
            batches.append(batch.sync(attempt / f"batch-{len(batches) + 1:04d}", context, self.log))
            if params.dry_run:
                self.log.info("dry run: %d events left in the queue (written nothing, acknowledged nothing)", events)
                break
            acknowledged += queue.ack([item.entry_id for item in claimed])
        api = merge_counters([hook.api_stats() for hook in hooks.values()])
        self.log.info(
            "%d events in %d micro-batches, %d of them echoes of this path's writes (acknowledged unread), %d"
            " acknowledged; API calls %s",
            events,
            len(batches),
            echoes,
            acknowledged,
            {key: value for key, value in api.items() if key.endswith("api_calls")},
        )
        _send_metrics(batches)
        result: EventRunResult = {
            "batches": batches,
            "events": events,
            "echoes": echoes,
            "acknowledged": acknowledged,
            "api": api,
        }
        write_json(self.run_folder(context) / "report.json", result)
        return result

    def _next_batch(self, queue: ContactEventQueue, started: float) -> list[ClaimedEvent]:
        """The next micro-batch, claimed once `event_batch_close` says it is due (full, or its oldest event
        `batch_seconds` old); [] when no event came for `BLOCK_MS` or the run has had its time."""
        from include.sync_logic.event_batch_close import batch_close

        while (left := self.run_seconds - (time.monotonic() - started)) > 0:
            waiting = queue.waiting()
            close = batch_close(waiting, max_batch=self.max_batch, batch_ms=int(self.batch_seconds * 1000))
            if close.claim:
                self.log.info(
                    "micro-batch due (%s): %d events waiting, the oldest %.1f s; %d stale pending",
                    close.reason,
                    waiting.undelivered,
                    waiting.oldest_age_ms / 1000,
                    waiting.stale,
                )
                return queue.claim(self.dag_id, self.max_batch)
            if close.wait_ms is not None:
                time.sleep(min(close.wait_ms / 1000, left))
            elif not queue.wait_for_entry(BLOCK_MS):
                break
        return []

    def _queue(self, context: Context) -> ContactEventQueue:
        """The event queue. A retry takes the failed try's entries over at once (lease 0): with one active run
        (`max_active_runs=1`) the only holder of an entry is a try that has ended."""
        from crm_sync.events.queue import ContactEventQueue, contact_event_queue

        queue = contact_event_queue(self.redis_conn_id)
        if context["ti"].try_number > 1:
            return ContactEventQueue(queue.client, lease_ms=0)
        return queue


class EventBatch:
    """One claimed micro-batch and what syncing it needs: the run's hooks, sync state, mapping and params."""

    def __init__(
        self,
        claimed: Sequence[ClaimedEvent],
        *,
        salesforce: SalesforceContactsHook,
        hubspot: HubSpotContactsHook,
        store: SyncStateStore,
        mapping: MappingConfig,
        params: RunParams,
        ledger: EchoLedger | None,
        log: Callable[[str], None],
    ) -> None:
        self.claimed = claimed
        self.salesforce, self.hubspot = salesforce, hubspot  # each CRM's own hook: merges need them
        self.hooks: dict[Side, ContactsHook] = {Side.SALESFORCE: salesforce, Side.HUBSPOT: hubspot}
        self.store = store
        self.mapping = mapping
        self.params = params
        self.ledger = ledger  # None: record no writes (a dry run)
        self.log = log

    def sync(self, folder: ObjectStoragePath, context: Context, logger: Logger) -> EventBatchResult:
        """Read, reconcile, gate, write, link and settle this batch, staged under `folder` (see the module)."""
        from collections import Counter
        from datetime import UTC, datetime
        from functools import partial
        from statistics import median

        from crm_sync.counterpart_sources import side_readers
        from crm_sync.merge_following import MergeFollowing
        from crm_sync.operators.gate import mass_change_gate
        from crm_sync.operators.link_back import link_back
        from crm_sync.operators.load import load_shard, write_batch, written_field_names
        from crm_sync.operators.plan import plan_shards
        from crm_sync.operators.reconcile import gone_finder, reconcile_candidates, record_decisions
        from crm_sync.operators.settle import settle_run
        from include.sync_logic.event_batch import batch_reads, named_ids
        from include.sync_logic.plan import PlanConfig

        events = [item.event for item in self.claimed]
        kinds = Counter(f"{event.side}.{event.kind}" for event in events)
        self.log(f"Micro-batch of {len(events)} events: {dict(sorted(kinds.items()))}")
        named = named_ids(events)
        reads = batch_reads(events, self.store.read_snapshots(named[Side.SALESFORCE], named[Side.HUBSPOT]))
        frames = self._read(reads, folder)
        if self.ledger is not None:  # what was just read is the news now: older writes' digests no longer hold
            for side, frame in frames.items():
                self.ledger.forget(side, frame[_ID[side]].astype(str).tolist())
        run_id, dry_run, direction = context["run_id"], self.params.dry_run, self.params.direction
        follow = MergeFollowing(
            salesforce_merged=partial(merged_away, frames[Side.SALESFORCE]),
            salesforce=self.salesforce,
            hubspot=self.hubspot,
            store=self.store,
            mapping=self.mapping,
            targets=direction.targets,
            run_id=run_id,
            dry_run=dry_run,
            log=self.log,
        )
        known_pairs = self.store.pair_count()
        outcome, _tombstones, _facts = reconcile_candidates(
            frames,
            keep=reads.keep,
            mapping=self.mapping,
            direction=direction,
            readers=side_readers(self.hooks, self.mapping),
            store=self.store,
            folder=folder,
            known_pairs=known_pairs,
            follow=follow,
            find_gone=gone_finder(self.store, self.hooks, self.mapping, run_id=run_id, dry_run=dry_run, log=self.log),
            log=self.log,
        )
        record_decisions(self.store, outcome, run_id=run_id, dry_run=dry_run, log=self.log)
        mass_change_gate(outcome.decisions, known_pairs, self.params, log=logger)
        this_try = run_try(context)
        for side in direction.targets:
            hook, link_field = self.hooks[side], self.mapping.link.on(side)
            write = (
                None if dry_run else self._recording(side, frames, partial(write_batch, hook, link_field=link_field))
            )
            for shard in plan_shards(outcome.decisions, side, folder / "batches", PlanConfig(), log=self.log):
                fields = written_field_names(self.mapping, side)
                load_shard(shard, write, side=side, field_names=fields, this_try=this_try, log=self.log)
        link_back(folder, self.mapping.link, self.hooks.__getitem__, dry_run=dry_run, log=self.log)
        if not dry_run:
            settle_run(self.store, str(folder), outcome.decisions, run_id=run_id, run_try=this_try, log=self.log)
        now_ms = datetime.now(UTC).timestamp() * 1000
        ages = [(now_ms - event.occurred_at_ms) / 1000 for event in events]
        return {
            "folder": str(folder),
            "events": len(events),
            "kinds": dict(kinds),
            "read": {str(side): len(frame) for side, frame in frames.items()},
            "decisions": dict(outcome.counts),
            "oldest_age_seconds": round(max(ages), 3),
            "median_age_seconds": round(median(ages), 3),
        }

    def _recording(
        self, side: Side, read: dict[Side, pd.DataFrame], write: Callable[[str, str, pd.DataFrame], list[RecordResult]]
    ) -> Callable[[str, str, pd.DataFrame], list[RecordResult]]:
        """`write`, recording the digests of what each record it landed now holds (its echo's test), and of a
        create's source once the link-back has written the new id into it."""
        from include.sync_logic.event_echoes import salesforce_row_fields

        row_fields = salesforce_row_fields(self.mapping)

        def write_and_record(action: str, api: str, frame: pd.DataFrame) -> list[RecordResult]:
            results = write(action, api, frame)
            if self.ledger is not None and action != Action.DELETE:
                self.ledger.record(side, landed_digests(side, frame, results, read[side], row_fields))
            if self.ledger is not None and action == Action.CREATE:
                source, link_field = side.other, self.mapping.link.on(side.other)
                self.ledger.record(source, link_back_digests(source, link_field, results, read[source], row_fields))
            return results

        return write_and_record

    def _read(self, reads: BatchReads, folder: ObjectStoragePath) -> dict[Side, pd.DataFrame]:
        """The named contacts and their known counterparts, read by id (live, and with the deleted rows where
        events say deleted), staged as `extract/<side>/part-00000.parquet` for the contact history."""
        import pandas as pd

        from crm_sync.hooks.contacts import LookupKey
        from crm_sync.staging import write_frame
        from include.sync_logic.counterparts import union_staged
        from include.sync_logic.tombstones import MASTER_RECORD

        fields = {
            Side.SALESFORCE: [*self.mapping.salesforce_fields, MASTER_RECORD],  # a merged-away row names its master
            Side.HUBSPOT: self.mapping.hubspot_properties,
        }
        frames: dict[Side, pd.DataFrame] = {}
        for side in Side:
            read = [
                self.hooks[side].fetch_contacts(LookupKey.OWN_ID, ids, fields[side], include_deleted=deleted)
                for ids, deleted in ((reads.live[side], False), (reads.with_deleted[side], True))
                if ids
            ]
            frames[side] = union_staged(read, side) if read else pd.DataFrame(columns=_columns(side, self.mapping))
            if len(frames[side]):
                write_frame(folder / "extract" / str(side) / "part-00000.parquet", frames[side])
        self.log("Read by id: " + ", ".join(f"{side} {len(frame)} contacts" for side, frame in frames.items()))
        return frames


def drop_echoes(claimed: Sequence[ClaimedEvent], ledger: EchoLedger, log: Callable[[str], None]) -> list[ClaimedEvent]:
    """The claimed events that are echoes of this path's recorded writes (one Redis round trip)."""
    from collections import Counter

    from include.sync_logic.event_echoes import echo_indexes

    events = [item.event for item in claimed]
    recorded = ledger.recorded([(event.side, event.contact_id) for event in events if event.fingerprint])
    echoed = [claimed[index] for index in echo_indexes(events, recorded)]
    if echoed:
        by_side = Counter(str(item.event.side) for item in echoed)
        log(
            f"{len(echoed)} of {len(claimed)} claimed events are echoes of our own writes, acknowledged unread: "
            f"{dict(by_side)}"
        )
    return echoed


def landed_digests(
    side: Side, frame: pd.DataFrame, results: Sequence[RecordResult], read: pd.DataFrame, row_fields: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Per contact a write landed on, the digests of what it holds now (`event_echoes.written_digests`): the
    payload without the fields the CRM refused, on the row read before (Salesforce)."""
    from crm_sync.operators.load import payloads
    from include.sync_logic.event_echoes import written_digests

    before = _rows_by_id(side, read)
    landed: dict[str, dict[str, str]] = {}
    for payload, result in zip(payloads(frame), results, strict=True):
        if not result.ok or result.target_id is None or result.existing_id:
            continue
        refused = set((result.refused_fields or "").split(","))
        written = {name: value for name, value in payload.items() if name not in refused}
        row = before.get(result.target_id)
        landed[result.target_id] = written_digests(side, written, read_row=row, row_fields=row_fields)
    return landed


def link_back_digests(
    side: Side, link_field: str, created: Sequence[RecordResult], read: pd.DataFrame, row_fields: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Per source contact on `side` of a create that landed on the other side, the digests of what it holds once
    the link-back (`operators.link_back`) has written the new id into its `link_field`."""
    from include.sync_logic.event_echoes import written_digests

    before = _rows_by_id(side, read)
    return {
        result.ref: written_digests(
            side, {link_field: result.target_id}, read_row=before.get(result.ref), row_fields=row_fields
        )
        for result in created
        if result.ok and result.target_id is not None
    }


def _rows_by_id(side: Side, read: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {str(row[_ID[side]]): {str(name): value for name, value in row.items()} for row in read.to_dict("records")}


def merged_away(salesforce: pd.DataFrame) -> pd.DataFrame:
    """Salesforce's merged-away rows among those read (deleted, naming a master): what the merge rules take."""
    from include.sync_logic.tombstones import MASTER_RECORD

    columns = ["Id", MASTER_RECORD, "SystemModstamp"]
    if MASTER_RECORD not in salesforce.columns:
        return salesforce.reindex(columns=columns).iloc[:0]
    rows = salesforce[salesforce["IsDeleted"].astype(bool) & salesforce[MASTER_RECORD].notna()]
    return rows[columns].reset_index(drop=True)


_ID = {Side.SALESFORCE: "Id", Side.HUBSPOT: "id"}
"""Each CRM's id column in a read."""


def _columns(side: Side, mapping: MappingConfig) -> list[str]:
    """An empty read's columns: as the window's extract stages them."""
    return mapping.salesforce_fields if side is Side.SALESFORCE else ["id", *mapping.hubspot_properties]


def _send_metrics(batches: list[EventBatchResult]) -> None:
    """Through Airflow's metrics (a no-op unless StatsD/OTel is on): events synced, and their age when synced."""
    from airflow.sdk.observability.stats import Stats

    for batch in batches:
        Stats.incr("crm_sync.events.synced", batch["events"])
        Stats.timing("crm_sync.events.oldest_age", batch["oldest_age_seconds"] * 1000)
