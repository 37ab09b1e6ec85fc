"""Link back: a record created on one side gets its new counterpart's id written on the other side.

HubSpot creates are upserts keyed by the mapping's HubSpot link property, so HubSpot already holds the
link; the Salesforce source still needs its link field = the new HubSpot id (and the mirror for Salesforce
creates). Both writes are idempotent, so a retried task is harmless; the next window then finds the pair
equal and plans nothing (no echo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.operators.base import CrmSyncOperator, api_stats, load_mapping_file
from crm_sync.report import merge_counters
from crm_sync.staging import read_frames, result_urls, write_frame

if TYPE_CHECKING:
    from airflow.sdk import Context


class LinkBackOperator(CrmSyncOperator):
    """Reads the load results staged beside the decisions of the reconcile it follows; writes links in
    API-sized batches through the hooks."""

    template_fields = ("mapping_path", "reconcile_result")
    ui_color = "#f6e8f4"

    def __init__(self, *, mapping_path: str, reconcile_result: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path
        self.reconcile_result = reconcile_result

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_sync.hooks.results import results_frame

        settings = self.settings(context)
        link_fields = load_mapping_file(self.mapping_path).link
        folder = ObjectStoragePath(self.reconcile_result["folder"])
        results = read_frames(result_urls(str(folder), links=False))
        if results is None:
            self.log.info("No load results: nothing to link")
            return {"linked": 0, "api": {}}
        created = results[
            (results["action"] == "create") & results["ok"].astype(bool) & ~results["dry_run"].astype(bool)
        ]
        summary: dict[str, Any] = {"api": {}}
        # A HubSpot create came from a Salesforce contact: link that Salesforce contact, and vice versa.
        for created_on, link_on in (("hubspot", "salesforce"), ("salesforce", "hubspot")):
            rows = created[created["target"] == created_on]
            pairs = list(zip(rows["ref"].astype(str), rows["target_id"].astype(str), strict=True))
            summary[f"{link_on}_links"] = len(pairs)
            if not pairs:
                continue
            if settings.dry_run:
                self.log.info("dry run: would link %d %s contacts", len(pairs), link_on)
                continue
            hook, outcome = self._write_links(link_on, link_fields.on(link_on), pairs, settings)
            table = results_frame(outcome)
            table["target"] = link_on
            table["action"] = "link"
            table["source_system"] = created_on
            table["batch"] = f"link-{link_on}"
            table["dry_run"] = False
            write_frame(folder / "results" / f"link-{link_on}.parquet", table)
            ok = int(table["ok"].sum())
            self.log.info("%s: %d links written, %d rejected", link_on, ok, len(table) - ok)
            summary["api"] = merge_counters([summary["api"], api_stats(link_on, hook)])
        return summary

    def _write_links(
        self, side: str, link_field: str, pairs: list[tuple[str, str]], settings: Any
    ) -> tuple[Any, list[Any]]:
        """pairs: (id on `side`, counterpart id to store in its link field)."""
        if side == "salesforce":
            from crm_sync.hooks.salesforce import SalesforceContactsHook

            sf_hook = SalesforceContactsHook(
                salesforce_conn_id=settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id
            )
            records = [{"Id": own, link_field: other} for own, other in pairs]
            return sf_hook, sf_hook.update_contacts(records, refs=[own for own, _ in pairs])
        from crm_sync.hooks.hubspot import HubSpotContactsHook

        hs_hook = HubSpotContactsHook(hubspot_conn_id=settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)
        inputs = [{"id": own, "properties": {link_field: other}} for own, other in pairs]
        return hs_hook, hs_hook.update_contacts(inputs, refs=[own for own, _ in pairs])
