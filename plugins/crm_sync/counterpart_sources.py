"""Where reconcile finds counterparts on each CRM: the hooks' batched lookups, or the side read whole.

`plan_reads` estimates both for each side (see `include.sync_logic.read_plan`), takes the cheaper, and
returns one fetcher per lookup kind for `close_counterparts`, answering from the API or from frames in
hand. A side read whole is staged as Parquet parts and streamed per lookup, so it never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from crm_sync.hooks.contacts import LookupKey
from crm_sync.staging import iter_frames, write_frame
from include.sync_logic.canonical import OWN_ID, to_canonical
from include.sync_logic.counterparts import CounterpartRequest, Fetcher
from include.sync_logic.read_plan import ReadStrategy, SideReadPlan, choose_read, local_fetchers
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from crm_sync.hooks.contacts import ContactsHook
    from include.sync_logic.mapping import MappingConfig


@dataclass(frozen=True)
class SideReader:
    """One CRM's ways to find contacts: a look-up per counterpart kind (and its call estimate), a whole read."""

    hook: ContactsHook
    fields: list[str]
    link_field: str

    @property
    def side(self) -> Side:
        return self.hook.side

    @property
    def kinds(self) -> dict[str, LookupKey]:
        """The counterpart request's kinds this side answers, and what each matches on."""
        side = self.side
        return {
            f"{side}_ids": LookupKey.OWN_ID,
            f"{side}_emails": LookupKey.EMAIL,
            f"{side}_by_{side.other}_id": LookupKey.COUNTERPART_ID,
        }

    @property
    def fetchers(self) -> dict[str, Fetcher]:
        return {kind: self._fetcher(key) for kind, key in self.kinds.items()}

    def _fetcher(self, key: LookupKey) -> Fetcher:
        return lambda values: self.hook.fetch_contacts(key, values, self.fields, link_field=self.link_field)

    def lookup_calls(self, kind: str, values: Sequence[str]) -> int:
        return self.hook.lookup_calls(self.kinds[kind], values, self.fields, link_field=self.link_field)

    def read_whole(self) -> Iterator[pd.DataFrame]:
        """The side's every live contact (with the secondary emails, which email look-ups match too)."""
        secondary = self.hook.secondary_emails
        return self.hook.iter_all_contacts([*self.fields, secondary] if secondary else self.fields)


def side_readers(hooks: Mapping[Side, ContactsHook], mapping: MappingConfig) -> dict[Side, SideReader]:
    """Each CRM's reader for the mapping's fields."""
    return {side: SideReader(hooks[side], mapping.fields_on(side), mapping.link.on(side)) for side in Side}


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
            count=reader.hook.count_contacts,
            whole_read_calls=reader.hook.whole_read_calls,
            at_least=known_pairs,
        )
        log(f"Read plan: {plan.describe()}")
        plans[side] = plan
        secondary = reader.hook.secondary_emails
        if plan.strategy == ReadStrategy.WINDOW_IS_WHOLE:
            fetchers.update(local_fetchers(side, partial(list, [frame]), mapping, secondary_emails=secondary))
        elif plan.strategy == ReadStrategy.READ_WHOLE:
            urls = [
                write_frame(folder / f"whole-{side}" / f"part-{number:05d}.parquet", part)
                for number, part in enumerate(reader.read_whole())
            ]
            log(f"Read plan: {side} read whole into {len(urls)} staged parts")
            fetchers.update(local_fetchers(side, partial(iter_frames, urls), mapping, secondary_emails=secondary))
        else:
            fetchers.update(reader.fetchers)
    return plans, fetchers
