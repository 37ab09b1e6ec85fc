"""Link back: a record created on one side gets its new counterpart's id written on the other side.

HubSpot creates are upserts keyed by the mapping's HubSpot link property, so HubSpot already holds the
link; the Salesforce source still needs its link field = the new HubSpot id (and the mirror for Salesforce
creates). Both writes are idempotent, so a retried task is harmless; the next window then finds the pair
equal and plans nothing (no echo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file
from crm_sync.report import merge_counters
from crm_sync.staging import read_frames, result_urls, write_frame
from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from crm_sync.hooks.contacts import ContactsHook
    from crm_sync.hooks.results import RecordResult
    from crm_sync.task_results import LinkBackResult, ReconcileResult
    from include.sync_logic.mapping import LinkConfig


class LinkBackOperator(CrmConnectionsOperator):
    """Reads the load results staged beside the decisions of the reconcile it follows; writes links in
    API-sized batches through each side's hook."""

    template_fields = (*CrmConnectionsOperator.template_fields, "mapping_path", "reconcile_result")
    ui_color = "#f6e8f4"

    def __init__(self, *, mapping_path: str, reconcile_result: ReconcileResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path
        self.reconcile_result = reconcile_result

    def execute(self, context: Context) -> LinkBackResult:
        return link_back(
            ObjectStoragePath(self.reconcile_result["folder"]),
            load_mapping_file(self.mapping_path).link,
            self.contacts_hook,
            dry_run=self.run_params(context).dry_run,
            log=self.log.info,
        )


def link_back(
    folder: ObjectStoragePath,
    link_fields: LinkConfig,
    hook_for: Callable[[Side], ContactsHook],
    *,
    dry_run: bool,
    log: Callable[[str], None],
) -> LinkBackResult:
    """Link the records the loads of the try in `folder` created; the link results are staged beside theirs."""
    from crm_sync.hooks.results import results_frame

    summary: LinkBackResult = {"links": {str(side): 0 for side in Side}, "api": {}}
    results = read_frames(result_urls(str(folder), links=False))
    if results is None:
        log("No load results: nothing to link")
        return summary
    created = results[(results["action"] == "create") & results["ok"].astype(bool) & ~results["dry_run"].astype(bool)]
    # A HubSpot create came from a Salesforce contact: link that Salesforce contact, and vice versa.
    for link_on in Side:
        created_on = link_on.other
        rows = created[created["target"] == created_on]
        pairs = list(zip(rows["ref"].astype(str), rows["target_id"].astype(str), strict=True))
        summary["links"][str(link_on)] = len(pairs)
        if not pairs:
            continue
        if dry_run:
            log(f"dry run: would link {len(pairs)} {link_on} contacts")
            continue
        hook = hook_for(link_on)
        outcome = write_links(hook, link_fields.on(link_on), pairs)
        table = results_frame(outcome)
        table["target"] = str(link_on)
        table["action"] = "link"
        table["source_system"] = str(created_on)
        table["batch"] = f"link-{link_on}"
        table["dry_run"] = False
        write_frame(folder / "results" / f"link-{link_on}.parquet", table)
        ok = int(table["ok"].sum())
        log(f"{link_on}: {ok} links written, {len(table) - ok} rejected")
        summary["api"] = merge_counters([summary["api"], hook.api_stats()])
    return summary


def write_links(hook: ContactsHook, link_field: str, pairs: list[tuple[str, str]]) -> list[RecordResult]:
    """pairs: (id on the hook's side, counterpart id to store in its link field)."""
    from crm_sync.hooks.contacts import ContactWrite

    links = [ContactWrite(own, {link_field: other}) for own, other in pairs]
    return hook.write_contacts(Action.UPDATE, links, [own for own, _ in pairs], link_field=link_field)
