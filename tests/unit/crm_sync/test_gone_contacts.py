"""find_gone_contacts against a real SQLite sync state, with stand-in hooks that answer look-ups by id and count
them (the sandboxes answer the same calls in tests/integration/test_dag_identity_deletes.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_sync.gone_contacts import find_gone_contacts
from crm_sync.hooks.contacts import LookupKey
from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from include.sync_logic.sides import Side
from tests.unit.include.sync_logic.rows import ANN_HS, ANN_SF, MAPPING, frames, hs_row, sf_row, snapshot


class LookUps:
    """Answers look-ups by id, deleted contacts included, from fixed rows with the calls each CRM spends:
    Salesforce one (queryAll), HubSpot two (a live and an archived batch read). `gone_for` sets `side`."""

    side: Side

    def __init__(self, live: list[dict] | None = None, deleted: list[dict] | None = None) -> None:
        self.live, self.deleted = live or [], deleted or []
        self.api_calls = 0
        self.asked: list[list[str]] = []

    def _answer(self, rows: list[dict], ids: list[str], own: str) -> pd.DataFrame:
        self.api_calls += 1
        self.asked.append(list(ids))
        return pd.DataFrame([row for row in rows if row[own] in ids])

    def fetch_contacts(self, key, values, fields, *, link_field=None, include_deleted=False):
        assert key is LookupKey.OWN_ID and include_deleted
        if self.side is Side.SALESFORCE:
            assert "MasterRecordId" in fields
            return self._answer(self.live + self.deleted, values, "Id")
        live, archived = self._answer(self.live, values, "id"), self._answer(self.deleted, values, "id")
        return pd.concat([live, archived], ignore_index=True)


@pytest.fixture
def store(tmp_path):
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    state = SyncStateStore(engine)
    state.create_schema()
    yield state
    engine.dispose()


def gone_for(store, sf_rows, hs_rows, hooks, *, dry_run=False, pairs=()):
    """`hooks`: the Salesforce and the HubSpot stand-in."""
    sf, hs = frames(sf_rows, hs_rows)
    for side, hook in zip(Side, hooks, strict=True):
        hook.side = side
    lines: list[str] = []
    found = find_gone_contacts(
        {Side.SALESFORCE: sf, Side.HUBSPOT: hs},
        pd.DataFrame(list(pairs), columns=["salesforce_id", "hubspot_id", "field_values"]),
        store=store,
        hooks=dict(zip(Side, hooks, strict=True)),
        mapping=MAPPING,
        run_id="r1",
        dry_run=dry_run,
        log=lines.append,
    )
    return found, lines


def test_a_partner_gone_for_good_is_looked_up_once_then_known(store):
    hooks = (LookUps(), LookUps())
    edited = [sf_row("003A", link="101", **ANN_SF)]
    first, lines = gone_for(store, edited, [], hooks)
    assert first.api_calls == {"salesforce": 0, "hubspot": 2}  # live, then archived: neither answers
    assert first.tombstones[["side", "contact_id", "kind", "counterpart_id", "fresh"]].values.tolist() == [
        ["hubspot", "101", "privacy_deleted", "003A", True]
    ]
    assert lines[0].startswith("Gone: hubspot contact 101 deleted for good")

    again, _ = gone_for(store, edited, [], hooks)
    assert again.api_calls == {"salesforce": 0, "hubspot": 0} and again.found == []
    assert again.tombstones[["contact_id", "fresh"]].values.tolist() == [["101", False]]


def test_a_partner_only_not_read_is_not_gone_and_a_dry_run_records_nothing(store):
    alive = hs_row("102", link="003B", **ANN_HS)
    hooks = (LookUps(), LookUps(live=[alive]))
    found, _ = gone_for(store, [sf_row("003B", **ANN_SF)], [], hooks, pairs=[snapshot("003B", "102")])
    assert found.tombstones.empty and hooks[1].asked == [["102"], ["102"]]

    hooks = (LookUps(deleted=[sf_row("003C", link="103", deleted=True)]), LookUps())
    dry, _ = gone_for(store, [], [hs_row("103", link="003C", **ANN_HS)], hooks, dry_run=True)
    assert dry.tombstones["kind"].tolist() == ["deleted"] and store.read_all_tombstones().empty


def test_a_restored_contact_clears_its_tombstone(store):
    store.record_tombstones(
        pd.DataFrame([{"side": "hubspot", "contact_id": "101", "kind": "archived", "counterpart_id": "003A"}]),
        run_id="r0",
    )
    hooks = (LookUps(), LookUps())
    found, _ = gone_for(store, [sf_row("003A", link="101", **ANN_SF)], [hs_row("101", link="003A", **ANN_HS)], hooks)
    assert found.restored == ["hubspot contact 101 is back (restored or undeleted)"]
    assert found.tombstones.empty and store.read_all_tombstones().empty
    assert hooks[0].api_calls == hooks[1].api_calls == 0
