"""Extract: one side's contacts modified in the run's window (or all, on a full resync) to staged Parquet parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file
from crm_sync.staging import write_frame
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_sync.task_results import ExtractResult


class ExtractContactsOperator(CrmConnectionsOperator):
    """Streams one CRM's pages into Parquet parts; XCom gets the part URLs and the count only.

    Salesforce: SOQL on SystemModstamp in the window, all pages, a Bulk API 2.0 query above the hook's size
    threshold, the Bulk API on a full resync. HubSpot: the search API on lastmodifieddate in the window (past
    its 10,000 cap), the list API on a full resync. Deleted (archived) contacts too when the mapping follows
    deletes.

    :param side: the CRM to read.
    :param mapping_path: the mapping file (templated).
    """

    template_fields = (*CrmConnectionsOperator.template_fields, "mapping_path")
    ui_color = "#e8f4fa"

    def __init__(self, *, side: Side | str, mapping_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.side = Side(side)  # a name that is no CRM fails the DAG's parse
        self.mapping_path = mapping_path

    def execute(self, context: Context) -> ExtractResult:
        window = self.window(context)
        mapping = load_mapping_file(self.mapping_path)
        folder = self.try_folder(context) / "extract" / self.side
        hook = self.contacts_hook(self.side)
        fields, deleted = mapping.fields_on(self.side), mapping.propagate_deletes
        if window.full_resync:
            frames = hook.iter_all_contacts(fields, include_deleted=deleted)
        else:
            frames = hook.iter_changed_contacts(fields, window.start, window.end, include_deleted=deleted)
        paths: list[str] = []
        count = 0
        self.log.info("Extracting %s contacts: window %s", self.side, window.describe())
        for number, frame in enumerate(frames):
            if frame.empty:
                continue
            paths.append(write_frame(folder / f"part-{number:05d}.parquet", frame))
            count += len(frame)
            self.log.info("%s: staged part %d with %d contacts (%d so far)", self.side, number, len(frame), count)
        self.log.info("%s: %d contacts extracted into %d parts", self.side, count, len(paths))
        return {
            "side": str(self.side),
            "paths": paths,
            "count": count,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "full_resync": window.full_resync,
            "api": hook.api_stats(),
        }
