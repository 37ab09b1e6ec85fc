"""The HubSpot contacts hook: the `ContactsHook` of HubSpot (see `hooks.contacts`).

It is built in layers, one module each: the connection, client and the one request path (`hs_session`), the
reads (`hs_reads`), the writes and merges (`hs_writes`); this module adds the preflight: the token's scopes
and the unique link property (`hs_preflight` holds their fixes).
"""

from __future__ import annotations

from crm_sync.hooks.hs_errors import HubSpotError
from crm_sync.hooks.hs_preflight import (
    READ_CONTACTS,
    READ_SCHEMAS,
    TOKEN_INFO_PATH,
    WRITE_CONTACTS,
    WRITE_SCHEMAS,
    link_property_definition,
    missing_property_fix,
    not_unique_fix,
    scope_fix,
)
from crm_sync.hooks.hs_writes import HubSpotWrites


class HubSpotContactsHook(HubSpotWrites):
    """Contacts in HubSpot: windowed extracts, look-ups and per-record-result batch writes.

    The parameters are `HubSpotSession`'s.
    """

    hook_name = "HubSpot (contact sync)"

    def preflight(self, link_field: str, *, writes: bool) -> list[str]:
        """The token's scopes (writing contacts only when `writes`), then the link property (created when
        missing and the scopes allow)."""
        scopes = {READ_CONTACTS, READ_SCHEMAS, WRITE_CONTACTS} if writes else {READ_CONTACTS, READ_SCHEMAS}
        return [*self.token_scope_problems(scopes), *self.ensure_link_property(link_field)]

    def token_scopes(self) -> set[str]:
        """The private app token's scopes, from HubSpot's token-info call for private app tokens."""
        token = self._connection.password
        rest = self._contacts.basic_api.api_client.rest_client  # the client has no method for this call
        _, data = self._request(
            "token info",
            lambda: rest.POST(
                f"{self.host}{TOKEN_INFO_PATH}",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                body={"tokenKey": token},
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
        )
        return set((data or {}).get("scopes") or [])

    def token_scope_problems(self, required: set[str]) -> list[str]:
        """One sentence per required scope the token lacks, naming where to add it ([] when none)."""
        return [scope_fix(scope) for scope in sorted(set(required) - self.token_scopes())]

    def ensure_link_property(self, name: str) -> list[str]:
        """The link property exists with unique values; created when missing and the scopes allow.

        Returns the problems left, each a sentence with the exact fix ([] when the property is usable).
        """
        properties = self.client.crm.properties.core_api
        try:
            _, definition = self._request(
                "property read",
                lambda: properties.get_by_name(
                    "contacts", name, _preload_content=False, _request_timeout=self.request_timeout
                ),
            )
        except HubSpotError as exc:
            if exc.code == "MISSING_SCOPES":
                return [scope_fix(READ_SCHEMAS)]
            if exc.status != 404:
                raise
            definition = None
        if definition is not None:
            return [] if definition.get("hasUniqueValue") else [not_unique_fix(name)]
        if self.token_scope_problems({WRITE_SCHEMAS}):
            return [missing_property_fix(name)]
        self._request(
            "property create",
            lambda: properties.create(
                "contacts",
                link_property_definition(name),
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
            idempotent=False,
        )
        self.log.info("HubSpot: created the unique contact property %s (the sync's link)", name)
        return []
