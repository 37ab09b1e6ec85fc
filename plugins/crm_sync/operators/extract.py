"""Extract: the contacts modified in the run's window (or all, on a full resync) to staged Parquet parts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, RunSettings, api_stats, load_mapping_file
from crm_sync.staging import write_frame
from crm_sync.window import SyncWindow

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from include.sync_logic.mapping import MappingConfig


class _ExtractContactsOperator(CrmSyncOperator):
    """Streams the hook's pages into Parquet parts; XCom gets the part URLs and the count only."""

    system: str = ""
    template_fields = ("mapping_path",)
    ui_color = "#e8f4fa"

    def __init__(self, *, mapping_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path

    def make_hook(self, settings: RunSettings) -> Any:
        raise NotImplementedError

    def frames(self, hook: Any, window: SyncWindow, mapping: MappingConfig) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        settings = self.settings(context)
        window = self.window(context)
        mapping = load_mapping_file(self.mapping_path)
        folder = self.try_folder(context) / "extract" / self.system
        hook = self.make_hook(settings)
        paths: list[str] = []
        count = 0
        self.log.info("Extracting %s contacts: window %s", self.system, window.describe())
        for number, frame in enumerate(self.frames(hook, window, mapping)):
            if frame.empty:
                continue
            paths.append(write_frame(folder / f"part-{number:05d}.parquet", frame))
            count += len(frame)
            self.log.info("%s: staged part %d with %d contacts (%d so far)", self.system, number, len(frame), count)
        self.log.info("%s: %d contacts extracted into %d parts", self.system, count, len(paths))
        return {
            "system": self.system,
            "paths": paths,
            "count": count,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "full_resync": window.full_resync,
            "api": api_stats(self.system, hook),
        }


class ExtractSalesforceContactsOperator(_ExtractContactsOperator):
    """SOQL on SystemModstamp in the window, all pages; Bulk API 2.0 above the hook's size threshold."""

    system = "salesforce"

    def make_hook(self, settings: RunSettings) -> Any:
        from crm_sync.hooks.salesforce import SalesforceContactsHook

        return SalesforceContactsHook(settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id)

    def frames(self, hook: Any, window: SyncWindow, mapping: MappingConfig) -> Iterator[pd.DataFrame]:
        fields = mapping.salesforce_fields
        if window.full_resync:
            return hook.iter_all_contacts(fields, include_deleted=mapping.propagate_deletes)
        return hook.iter_changed_contacts(fields, window.start, window.end, include_deleted=mapping.propagate_deletes)


class ExtractHubSpotContactsOperator(_ExtractContactsOperator):
    """The search API on lastmodifieddate in the window (past the 10,000 cap); the list API on a full resync."""

    system = "hubspot"

    def make_hook(self, settings: RunSettings) -> Any:
        from crm_sync.hooks.hubspot import HubSpotContactsHook

        return HubSpotContactsHook(settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)

    def frames(self, hook: Any, window: SyncWindow, mapping: MappingConfig) -> Iterator[pd.DataFrame]:
        properties = mapping.hubspot_properties
        if window.full_resync:
            return hook.iter_all_contacts(properties, include_archived=mapping.propagate_deletes)
        return hook.iter_changed_contacts(
            properties, window.start, window.end, include_archived=mapping.propagate_deletes
        )
