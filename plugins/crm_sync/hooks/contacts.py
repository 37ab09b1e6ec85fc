"""The one interface both CRMs' contact hooks offer, and the one way to get a side's hook.

Extract, load, link-back, reconcile's counterpart reads and tombstone look-ups are written once against
`ContactsHook`; each CRM's hook maps the neutral words (a `LookupKey`, an `Action`, a `ContactWrite`) onto
its own API (SOQL / Collections / Bulk on Salesforce, search / batch on HubSpot).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, overload

from include.sync_logic.sides import Action, Side

if TYPE_CHECKING:
    import pandas as pd

    from crm_sync.hooks.hubspot import HubSpotContactsHook
    from crm_sync.hooks.results import RecordResult
    from crm_sync.hooks.salesforce import SalesforceContactsHook
    from crm_sync.ratelimit import RateLimitPool


class LookupKey(StrEnum):
    """What a batched look-up matches on."""

    OWN_ID = "own_id"  # the side's own record id (Salesforce Id, HubSpot id)
    EMAIL = "email"  # the contact's email (HubSpot also finds secondary emails)
    COUNTERPART_ID = "counterpart_id"  # the side's link field, holding the other side's id


@dataclass(frozen=True)
class ContactWrite:
    """One record to write: its id on the target (None for a create) and the target's field values."""

    target_id: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)


class ContactsHook(Protocol):
    """What every caller may ask of a CRM's contacts. Frames carry the CRM's own field names."""

    side: ClassVar[Side]
    # The field holding a contact's other emails, which an EMAIL look-up matches too (HubSpot's
    # hs_additional_emails); None when the CRM has none.
    secondary_emails: ClassVar[str | None]
    api_calls: int

    @property
    def rate_limit_pool(self) -> RateLimitPool:
        """The account's pool shared by every worker and run."""
        ...

    def api_stats(self) -> dict[str, int | float]:
        """This hook's calls and pool waits, keys prefixed by the side, for the run report."""
        ...

    def iter_changed_contacts(
        self, fields: Sequence[str], start: datetime, end: datetime, *, include_deleted: bool = False
    ) -> Iterator[pd.DataFrame]:
        """Contacts modified in [start, end), all pages, in bounded frames; deleted/archived ones too if asked."""
        ...

    def iter_all_contacts(self, fields: Sequence[str], *, include_deleted: bool = False) -> Iterator[pd.DataFrame]:
        """Every contact, in bounded frames (a full resync, a side read whole)."""
        ...

    def fetch_contacts(
        self,
        key: LookupKey,
        values: Sequence[str],
        fields: Sequence[str],
        *,
        link_field: str | None = None,
        include_deleted: bool = False,
    ) -> pd.DataFrame:
        """Contacts matching `values` on `key` (`link_field` names the field for COUNTERPART_ID); unknown values
        are left out. `include_deleted` adds deleted (Salesforce recycle bin) / archived (HubSpot) contacts."""
        ...

    def lookup_calls(
        self, key: LookupKey, values: Sequence[str], fields: Sequence[str], *, link_field: str | None = None
    ) -> int:
        """The calls `fetch_contacts` would spend on these values (live contacts only)."""
        ...

    def whole_read_calls(self, contacts: int) -> int:
        """The calls `iter_all_contacts` spends on this many contacts."""
        ...

    def count_contacts(self) -> int:
        """How many live contacts the account holds (one call)."""
        ...

    def write_contacts(
        self,
        action: Action,
        records: Sequence[ContactWrite],
        refs: Sequence[str],
        *,
        link_field: str,
        bulk: bool = False,
    ) -> list[RecordResult]:
        """Write one action's records, a result per record (parallel to `refs`). Creates are upserts keyed on
        `link_field` (a retry cannot duplicate), updates and deletes name their `target_id`. `bulk`: Salesforce's
        Bulk API 2.0 (HubSpot has none and refuses it)."""
        ...

    def preflight(self, link_field: str, *, writes: bool) -> list[str]:
        """Problems that would make a run fail (credentials, scopes, the link field); empty when all is well."""
        ...


@overload
def contacts_hook(
    side: Literal[Side.SALESFORCE], conn_id: str, *, redis_conn_id: str, max_wait_seconds: float | None = None
) -> SalesforceContactsHook: ...


@overload
def contacts_hook(
    side: Literal[Side.HUBSPOT], conn_id: str, *, redis_conn_id: str, max_wait_seconds: float | None = None
) -> HubSpotContactsHook: ...


@overload
def contacts_hook(
    side: Side, conn_id: str, *, redis_conn_id: str, max_wait_seconds: float | None = None
) -> ContactsHook: ...


def contacts_hook(
    side: Side, conn_id: str, *, redis_conn_id: str, max_wait_seconds: float | None = None
) -> ContactsHook:
    """The contacts hook of `side` on connection `conn_id` (the CRM clients are imported only here). A literal
    side gives its CRM's own hook type, for the few CRM-specific calls (merges)."""
    if side is Side.SALESFORCE:
        from crm_sync.hooks.salesforce import SalesforceContactsHook

        return SalesforceContactsHook(conn_id, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds)
    from crm_sync.hooks.hubspot import HubSpotContactsHook

    return HubSpotContactsHook(conn_id, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds)
