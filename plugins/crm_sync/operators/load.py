"""Load: one mapped task per shard writes its batches and keeps a result row per record.

Idempotent by construction: creates are upserts on the mapping's link keys (by default HubSpot
`salesforce_contact_id`, Salesforce `HubSpot_Contact_Id__c`), updates and deletes name their target ids,
and a batch whose results this try already staged is not sent again when the task is retried.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file, run_try
from crm_sync.staging import read_frame, write_frame
from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from airflow.sdk import Context

    from crm_sync.hooks.contacts import ContactsHook, ContactWrite
    from crm_sync.hooks.results import RecordResult
    from crm_sync.task_results import LoadTotals, Shard
    from include.sync_logic.mapping import MappingConfig


def payloads(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The decision payloads (JSON strings: only the fields to write) as dicts."""
    import json

    return [json.loads(text) for text in frame["payload"]]


def results_path(batch_url: str) -> ObjectStoragePath:
    """Where a batch's results are staged: `results/` beside the `batches/` folder of the try that planned it."""
    batch = ObjectStoragePath(batch_url)
    return batch.parent.parent / "results" / batch.name


def staged_in_try(result_path: ObjectStoragePath, this_try: str) -> bool:
    """The batch was answered in this try of the run (a task retry or a resume): not to be sent again.

    Results of an earlier try (the run was cleared, or a backfill reprocesses it) are sent again: a clear means
    "do it again", and creates upsert on the link key, updates and deletes name their ids, so nothing doubles.
    """
    if not result_path.exists():
        return False
    staged = read_frame(str(result_path))
    return "try" in staged.columns and bool((staged["try"] == this_try).all())


def dry_run_results(frame: pd.DataFrame) -> list[RecordResult]:
    from crm_sync.hooks.results import RecordResult

    return [
        RecordResult(ref=str(ref), target_id=None if target is None else str(target), ok=True)
        for ref, target in zip(frame["source_id"], frame["target_id"], strict=True)
    ]


def contact_writes(frame: pd.DataFrame) -> list[ContactWrite]:
    """A batch's rows as the hook's writes: the target id (None for a create) and the payload's fields."""
    import pandas as pd

    from crm_sync.hooks.contacts import ContactWrite

    targets = [None if pd.isna(target) else str(target) for target in frame["target_id"]]
    return [ContactWrite(target, payload) for target, payload in zip(targets, payloads(frame), strict=True)]


class LoadContactsOperator(CrmConnectionsOperator):
    """Writes one shard to one side: a list of batch descriptors {url, action, api, rows} from its plan task.

    HubSpot: batch upsert (creates, keyed by the link property), update and archive, 100 a call. Salesforce:
    sObject Collections (200 a call) or one Bulk API 2.0 job: upsert on the link field, update, delete.

    :param side: the CRM written to.
    :param shard: the batch descriptors (templated: the plan task's mapped output).
    :param mapping_path: the mapping file (templated).
    :param max_wait_seconds: longest wait for the rate-limit pool before the task defers (None: the connection's).
    """

    template_fields = (*CrmConnectionsOperator.template_fields, "shard", "mapping_path")
    ui_color = "#f6e8f4"

    def __init__(
        self,
        *,
        side: Side | str,
        shard: Shard,
        mapping_path: str,
        max_wait_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.side = Side(side)  # a name that is no CRM fails the DAG's parse
        self.shard = shard
        self.mapping_path = mapping_path
        self.max_wait_seconds = max_wait_seconds

    @cached_property
    def link_field(self) -> str:
        """The link key creates upsert on: the counterpart's id field on this side."""
        return load_mapping_file(self.mapping_path).link.on(self.side)

    @cached_property
    def field_names(self) -> dict[str, str]:
        """The side's field names -> the mapping's names: a field the CRM refused is rejected by its mapping name."""
        return written_field_names(load_mapping_file(self.mapping_path), self.side)

    def write_batch(self, hook: ContactsHook, action: str, api: str, frame: pd.DataFrame) -> list[RecordResult]:
        return write_batch(hook, action, api, frame, link_field=self.link_field)

    def execute(self, context: Context) -> LoadTotals:
        from functools import partial

        from crm_sync.ratelimit import RateLimitWaitTooLong

        dry_run = self.run_params(context).dry_run
        hook = None if dry_run else self.contacts_hook(self.side, max_wait_seconds=self.max_wait_seconds)
        write = None if hook is None else partial(self.write_batch, hook)
        try:
            totals = load_shard(
                self.shard,
                write,
                side=self.side,
                field_names=self.field_names,
                this_try=run_try(context),
                log=self.log.info,
            )
        except RateLimitWaitTooLong as exc:
            self.log.warning(
                "%s: rate-limit pool asks for a %.0f s wait (%s): deferring, the worker slot is freed",
                self.side,
                exc.wait_seconds,
                exc.reason,
            )
            self._defer_for(exc.wait_seconds)
        if hook is not None:
            totals["api"] = hook.api_stats()
        return totals

    def _defer_for(self, seconds: float) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=seconds)), method_name="resume")

    def resume(self, context: Context, event: Any = None) -> LoadTotals:
        """Back from the triggerer: staged batches are skipped, the rest are sent."""
        return self.execute(context)


def written_field_names(mapping: MappingConfig, side: Side) -> dict[str, str]:
    """The side's names of the fields written to it -> the mapping's names."""
    return {item.on(side): item.name for item in mapping.fields if item.writes_to(side)}


def write_batch(
    hook: ContactsHook, action: str, api: str, frame: pd.DataFrame, *, link_field: str
) -> list[RecordResult]:
    """One staged batch through the hook: creates upsert on `link_field`, updates and deletes name their ids."""
    from include.sync_logic.plan import SALESFORCE_BULK

    refs = frame["source_id"].astype(str).tolist()
    bulk = api == SALESFORCE_BULK
    return hook.write_contacts(Action(action), contact_writes(frame), refs, link_field=link_field, bulk=bulk)


def load_shard(
    shard: Shard,
    write: Callable[[str, str, pd.DataFrame], list[RecordResult]] | None,
    *,
    side: Side,
    field_names: dict[str, str],
    this_try: str,
    log: Callable[[str], None],
) -> LoadTotals:
    """Write a shard's batches (`write(action, api, frame)`; None: a dry run, nothing sent) and stage a result row
    per record beside them; a batch this try already answered is skipped. A `RateLimitWaitTooLong` from `write`
    passes up with every earlier batch staged, so a resumed task sends only the rest."""
    from crm_sync.hooks.results import results_frame

    dry_run = write is None
    totals: LoadTotals = {"batches": 0, "skipped_batches": 0, "records": 0, "ok": 0, "rejected": 0, "api": {}}
    for batch in shard:
        result_path = results_path(batch["url"])
        name = result_path.name
        if staged_in_try(result_path, this_try):
            totals["skipped_batches"] += 1
            log(f"{side}: results of {name} already staged (a retry): not sent again")
            continue
        frame = read_frame(batch["url"])
        results = dry_run_results(frame) if write is None else write(batch["action"], batch["api"], frame)
        unanswered = sum(not result.final for result in results)
        if unanswered:
            # Stage nothing: a staged batch is never sent again, and these records have no answer yet.
            raise RuntimeError(f"{side} batch {name}: {unanswered} records got no answer; retry the task")
        table = results_frame(results, field_names)
        table["target"] = str(side)
        table["action"] = table["action"].fillna(batch["action"])  # a refused field's own row keeps "reject"
        table["source_system"] = str(side.other)
        table["batch"] = name
        table["dry_run"] = dry_run
        table["try"] = this_try
        write_frame(result_path, table)
        ok = int(table["ok"].sum())
        totals["batches"] += 1
        totals["records"] += len(table)
        totals["ok"] += ok
        totals["rejected"] += len(table) - ok
        log(
            f"{side} {batch['action']} batch {name} ({batch['api']}): {len(table)} records, {ok} ok, "
            f"{len(table) - ok} rejected{' (dry run: nothing sent)' if dry_run else ''}"
        )
    log(f"{side} shard done: {totals}")
    return totals
