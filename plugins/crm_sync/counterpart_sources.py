"""Where reconcile finds counterparts on each CRM: the hooks' batched lookups, or the side read whole.

`plan_reads` estimates both for each side (see `include.sync_logic.read_plan`), takes the cheaper, and
returns one fetcher per lookup kind for `close_counterparts`, answering from the API or from frames in
hand. A side read whole is staged as Parquet parts and streamed per lookup, so it never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm_sync.hooks.hs_batch import SECONDARY_EMAILS
from crm_sync.staging import read_frame, write_frame
from include.sync_logic.canonical import OWN_ID, to_canonical
from include.sync_logic.counterparts import CounterpartRequest, Fetcher
from include.sync_logic.read_plan import ReadStrategy, SideReadPlan, choose_read, local_fetchers
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from crm_sync.hooks.hubspot import HubSpotContactsHook
    from crm_sync.hooks.salesforce import SalesforceContactsHook
    from include.sync_logic.mapping import MappingConfig


@dataclass(frozen=True)
class SideReader:
    """One CRM's ways to find contacts: lookups per kind (with their call estimate) and a whole read."""

    side: Side
    fetchers: dict[str, Fetcher]
    lookup_calls: Callable[[str, Sequence[str]], int]
    count: Callable[[], int]
    whole_read_calls: Callable[[int], int]
    read_whole: Callable[[], Iterator[pd.DataFrame]]
    secondary_emails: str | None = None


def side_readers(
    sf_hook: SalesforceContactsHook, hs_hook: HubSpotContactsHook, mapping: MappingConfig
) -> dict[Side, SideReader]:
    """The two CRMs' readers for the mapping's fields."""
    fields, properties = mapping.salesforce_fields, mapping.hubspot_properties
    sf_columns = {
        "salesforce_ids": "Id",
        "salesforce_emails": "Email",
        "salesforce_by_hubspot_id": mapping.link.salesforce,
    }
    salesforce = SideReader(
        side=Side.SALESFORCE,
        fetchers={
            "salesforce_ids": lambda keys: sf_hook.fetch_by_ids(keys, fields),
            "salesforce_emails": lambda keys: sf_hook.fetch_by_emails(keys, fields),
            "salesforce_by_hubspot_id": lambda keys: sf_hook.fetch_by_hubspot_ids(
                keys, fields, link_field=mapping.link.salesforce
            ),
        },
        lookup_calls=lambda kind, keys: sf_hook.lookup_calls(fields, sf_columns[kind], keys),
        count=sf_hook.count_contacts,
        whole_read_calls=sf_hook.whole_read_calls,
        read_whole=lambda: sf_hook.iter_all_contacts(fields),
    )
    hubspot = SideReader(
        side=Side.HUBSPOT,
        fetchers={
            "hubspot_ids": lambda keys: hs_hook.read_by_ids(keys, properties),
            "hubspot_emails": lambda keys: hs_hook.read_by_emails(keys, properties),
            "hubspot_by_salesforce_id": lambda keys: hs_hook.read_by_salesforce_ids(
                keys, properties, link_property=mapping.link.hubspot
            ),
        },
        lookup_calls=lambda kind, keys: hs_hook.lookup_calls(keys),
        count=hs_hook.count_contacts,
        whole_read_calls=hs_hook.whole_read_calls,
        read_whole=lambda: hs_hook.iter_all_contacts([*properties, SECONDARY_EMAILS]),
        secondary_emails=SECONDARY_EMAILS,
    )
    return {Side.SALESFORCE: salesforce, Side.HUBSPOT: hubspot}


def plan_reads(
    request: CounterpartRequest,
    candidates: Mapping[Side, pd.DataFrame],
    readers: Mapping[Side, SideReader],
    mapping: MappingConfig,
    folder: ObjectStoragePath,
    log: Callable[[str], None],
    known_pairs: int = 0,
) -> tuple[dict[Side, SideReadPlan], dict[str, Fetcher]]:
    """Each side's read plan and the fetchers it implies; a side read whole is staged under `folder`.

    `known_pairs` (the sync state's pair count) bounds each side's size from below, which often settles
    the choice without counting the side."""
    plans: dict[Side, SideReadPlan] = {}
    fetchers: dict[str, Fetcher] = {}
    for side in Side:
        reader = readers[side]
        kinds = {kind: keys for kind, keys in request.items() if CounterpartRequest.side_of(kind) == side}
        frame = candidates[side]
        canonical = to_canonical(frame, side, mapping)
        live = canonical.loc[~canonical["deleted"], OWN_ID[side]].nunique()
        plan = choose_read(
            side,
            keys=sum(len(keys) for keys in kinds.values()),
            lookup_calls=sum(reader.lookup_calls(kind, keys) for kind, keys in kinds.items() if keys),
            window_contacts=int(live),
            count=reader.count,
            whole_read_calls=reader.whole_read_calls,
            at_least=known_pairs,
        )
        log(f"Read plan: {plan.describe()}")
        plans[side] = plan
        secondary = reader.secondary_emails
        if plan.strategy == ReadStrategy.WINDOW_IS_WHOLE:
            fetchers.update(local_fetchers(side, lambda f=frame: [f], mapping, secondary_emails=secondary))
        elif plan.strategy == ReadStrategy.READ_WHOLE:
            urls = [
                write_frame(folder / f"whole-{side}" / f"part-{number:05d}.parquet", part)
                for number, part in enumerate(reader.read_whole())
            ]
            log(f"Read plan: {side} read whole into {len(urls)} staged parts")
            fetchers.update(
                local_fetchers(
                    side,
                    lambda u=urls: (read_frame(url) for url in u),
                    mapping,
                    secondary_emails=secondary,
                )
            )
        else:
            fetchers.update(reader.fetchers)
    return plans, fetchers
