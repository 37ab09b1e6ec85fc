"""The Salesforce contacts hook: the `ContactsHook` of Salesforce (see `hooks.contacts`).

It is built in layers, one module each: the connection, token, client and the one request path (`sf_session`),
the reads (`sf_reads`), the writes (`sf_writes`); this module adds the preflight.
"""

from __future__ import annotations

from typing import Any

from simple_salesforce.api import Salesforce

from crm_sync.hooks import soql
from crm_sync.hooks.sf_preflight import link_field_problems
from crm_sync.hooks.sf_writes import SalesforceWrites


class SalesforceContactsHook(SalesforceWrites):
    """Contacts in Salesforce: windowed extracts, counterpart look-ups and per-record-result writes.

    The parameters are `SalesforceSession`'s.
    """

    hook_name = "Salesforce (contact sync)"

    def preflight(self, link_field: str, *, writes: bool) -> list[str]:
        """The link field's problems (the same for a dry run: its reads look up by it)."""
        return self.link_field_problems(link_field)

    def link_field_problems(self, field: str) -> list[str]:
        """Why Contact `field` cannot hold the link (missing, not External ID, not Unique, not editable),
        each with the fix in Setup; empty when it can. One describe call: cheap enough for a preflight."""
        (field,) = soql.check_fields([field])
        described = self._call("describe", _describe_contact)
        problems = link_field_problems(described.get("fields", []), field)
        self.log.info("Salesforce: link field %s: %d problems", field, len(problems))
        return problems


def _describe_contact(sf: Salesforce) -> dict[str, Any]:
    """Contact's describe (its fields and their properties): one call."""
    contact: Any = sf.Contact  # simple-salesforce resolves sObjects by attribute, which its types do not follow
    described: dict[str, Any] = contact.describe()
    return described
