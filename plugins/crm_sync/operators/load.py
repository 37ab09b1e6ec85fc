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
    import pandas as pd
    from airflow.sdk import Context

    from crm_sync.hooks.contacts import ContactsHook, ContactWrite
    from crm_sync.hooks.results import RecordResult
    from crm_sync.task_results import LoadTotals, Shard


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
        fields = load_mapping_file(self.mapping_path).fields
        return {item.on(self.side): item.name for item in fields if item.writes_to(self.side)}

    def write_batch(self, hook: ContactsHook, action: str, api: str, frame: pd.DataFrame) -> list[RecordResult]:
        from include.sync_logic.plan import SALESFORCE_BULK

        refs = frame["source_id"].astype(str).tolist()
        bulk = api == SALESFORCE_BULK
        return hook.write_contacts(Action(action), contact_writes(frame), refs, link_field=self.link_field, bulk=bulk)

    def execute(self, context: Context) -> LoadTotals:
        from crm_sync.hooks.results import results_frame
        from crm_sync.ratelimit import RateLimitWaitTooLong

        dry_run = self.run_params(context).dry_run
        this_try = run_try(context)
        hook = None if dry_run else self.contacts_hook(self.side, max_wait_seconds=self.max_wait_seconds)
        totals: LoadTotals = {"batches": 0, "skipped_batches": 0, "records": 0, "ok": 0, "rejected": 0, "api": {}}
        for batch in self.shard:
            result_path = results_path(batch["url"])
            name = result_path.name
            if staged_in_try(result_path, this_try):
                totals["skipped_batches"] += 1
                self.log.info("%s: results of %s already staged (a retry): not sent again", self.side, name)
                continue
            frame = read_frame(batch["url"])
            try:
                if hook is None:
                    results = dry_run_results(frame)
                else:
                    results = self.write_batch(hook, batch["action"], batch["api"], frame)
            except RateLimitWaitTooLong as exc:
                self.log.warning(
                    "%s: rate-limit pool asks for a %.0f s wait (%s): deferring, the worker slot is freed",
                    self.side,
                    exc.wait_seconds,
                    exc.reason,
                )
                self._defer_for(exc.wait_seconds)
            unanswered = sum(not result.final for result in results)
            if unanswered:
                # Stage nothing: a staged batch is never sent again, and these records have no answer yet.
                raise RuntimeError(f"{self.side} batch {name}: {unanswered} records got no answer; retry the task")
            table = results_frame(results, self.field_names)
            table["target"] = str(self.side)
            table["action"] = table["action"].fillna(batch["action"])  # a refused field's own row keeps "reject"
            table["source_system"] = str(self.side.other)
            table["batch"] = name
            table["dry_run"] = dry_run
            table["try"] = this_try
            write_frame(result_path, table)
            ok = int(table["ok"].sum())
            totals["batches"] += 1
            totals["records"] += len(table)
            totals["ok"] += ok
            totals["rejected"] += len(table) - ok
            self.log.info(
                "%s %s batch %s (%s): %d records, %d ok, %d rejected%s",
                self.side,
                batch["action"],
                name,
                batch["api"],
                len(table),
                ok,
                len(table) - ok,
                " (dry run: nothing sent)" if dry_run else "",
            )
        self.log.info("%s shard done: %s", self.side, totals)
        if hook is not None:
            totals["api"] = hook.api_stats()
        return totals

    def _defer_for(self, seconds: float) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=seconds)), method_name="resume")

    def resume(self, context: Context, event: Any = None) -> LoadTotals:
        """Back from the triggerer: staged batches are skipped, the rest are sent."""
        return self.execute(context)
