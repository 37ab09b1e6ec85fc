"""Preflight: the first task checks what a real org and portal must provide before anything is read or written.

The link fields must exist as unique keys (every create is an upsert on them) and the HubSpot token must
have the scopes the run needs. A gap is a configuration problem no retry can fix, so the task fails at
once with every fix spelled out, instead of a load failing half-way through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmConnectionsOperator, load_mapping_file
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_sync.task_results import PreflightResult


class PreflightOperator(CrmConnectionsOperator):
    """Checks the link field (Salesforce describe), the link property and the token's scopes (HubSpot)."""

    template_fields = (*CrmConnectionsOperator.template_fields, "mapping_path")
    ui_color = "#eeeeee"

    def __init__(self, *, mapping_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path

    def execute(self, context: Context) -> PreflightResult:
        from airflow.sdk.exceptions import AirflowFailException

        link = load_mapping_file(self.mapping_path).link
        writes = not self.run_params(context).dry_run
        problems = [
            problem for side in Side for problem in self.contacts_hook(side).preflight(link.on(side), writes=writes)
        ]
        if problems:
            for problem in problems:
                self.log.error("preflight: %s", problem)
            raise AirflowFailException(f"{len(problems)} preflight problem(s):\n" + "\n".join(problems))
        self.log.info(
            "preflight: HubSpot token scopes for %s present; link property %s and Salesforce link field %s are unique "
            "keys",
            "writes" if writes else "reads",
            link.hubspot,
            link.salesforce,
        )
        return {"ok": True}
