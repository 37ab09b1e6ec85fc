"""Preflight: the first task checks what a real org and portal must provide before anything is read or written.

The link fields must exist as unique keys (every create is an upsert on them) and the HubSpot token must
have the scopes the run needs. A gap is a configuration problem no retry can fix, so the task fails at
once with every fix spelled out, instead of a load failing half-way through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, load_mapping_file

if TYPE_CHECKING:
    from airflow.sdk import Context


class PreflightOperator(CrmSyncOperator):
    """Checks the link field (Salesforce describe), the link property and the token's scopes (HubSpot)."""

    template_fields = ("mapping_path",)
    ui_color = "#eeeeee"

    def __init__(self, *, mapping_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from crm_sync.hooks.hs_preflight import READ_CONTACTS, READ_SCHEMAS, WRITE_CONTACTS
        from crm_sync.hooks.hubspot import HubSpotContactsHook
        from crm_sync.hooks.salesforce import SalesforceContactsHook

        settings = self.settings(context)
        link = load_mapping_file(self.mapping_path).link
        scopes = {READ_CONTACTS, READ_SCHEMAS} if settings.dry_run else {READ_CONTACTS, READ_SCHEMAS, WRITE_CONTACTS}
        hs_hook = HubSpotContactsHook(settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)
        sf_hook = SalesforceContactsHook(settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id)
        problems = [
            *hs_hook.token_scope_problems(scopes),
            *hs_hook.ensure_link_property(link.hubspot),
            *sf_hook.link_field_problems(link.salesforce),
        ]
        if problems:
            for problem in problems:
                self.log.error("preflight: %s", problem)
            raise AirflowFailException(f"{len(problems)} preflight problem(s):\n" + "\n".join(problems))
        self.log.info(
            "preflight: HubSpot token scopes %s present; link property %s and Salesforce link field %s are unique keys",
            sorted(scopes),
            link.hubspot,
            link.salesforce,
        )
        return {"ok": True}
