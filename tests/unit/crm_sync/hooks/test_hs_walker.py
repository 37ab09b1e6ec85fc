"""The HubSpot window walker against an in-memory search that enforces HubSpot's documented limits."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from crm_sync.hooks.hs_walker import parse_hubspot_ms, range_request, tie_request, to_epoch_ms, walk_window

CAP = 10_000


class FakeSearch:
    """Filter groups (OR of ANDs; 5 groups, 10 filters each, 25 in all), ONE sort, limit <= 200, `after` below
    10,000; ties in random order; `total` counts the query's matches."""

    def __init__(self, contacts: dict[int, int], seed: int = 1) -> None:
        self.contacts = contacts  # id -> lastmodifieddate ms
        self.requests: list[dict] = []
        self.rng = random.Random(seed)

    def __call__(self, body: dict) -> dict:
        self.requests.append(body)
        assert len(body["sorts"]) == 1, "HubSpot accepts one sort per search"
        assert 0 < body["limit"] <= 200
        after = int(body.get("after") or 0)
        if after >= CAP:
            raise AssertionError("paged past the 10,000-result cap")
        groups = [g["filters"] for g in body["filterGroups"]]
        assert len(groups) <= 5 and all(len(g) <= 10 for g in groups) and sum(map(len, groups)) <= 25
        rows = [
            (cid, ts)
            for cid, ts in self.contacts.items()
            if any(all(self._ok(cid, ts, f) for f in group) for group in groups)
        ]
        self.rng.shuffle(rows)  # ties come back in no particular order
        sort = body["sorts"][0]["propertyName"]
        rows.sort(key=(lambda r: r[1]) if sort == "lastmodifieddate" else (lambda r: r[0]))
        page = rows[after : after + body["limit"]]
        results = [
            {"id": str(cid), "properties": {"lastmodifieddate": _iso(ts), "hs_object_id": str(cid)}} for cid, ts in page
        ]
        out: dict = {"total": len(rows), "results": results}
        if after + body["limit"] < len(rows):
            out["paging"] = {"next": {"after": str(after + body["limit"])}}
        return out

    @staticmethod
    def _ok(cid: int, ts: int, flt: dict) -> bool:
        value = ts if flt["propertyName"] == "lastmodifieddate" else cid
        if flt["operator"] == "NOT_IN":
            return str(value) not in flt["values"]
        bound = int(flt["value"])
        return {
            "GTE": value >= bound,
            "GT": value > bound,
            "LT": value < bound,
            "EQ": value == bound,
        }[flt["operator"]]


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


START = to_epoch_ms(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
END = START + 15 * 60 * 1000


def _walk(search: FakeSearch) -> list[str]:
    ids: list[str] = []
    for page in walk_window(search, START, END, ["email"]):
        ids.extend(r["id"] for r in page)
    return ids


def test_window_bounds_are_half_open():
    contacts = {1: START - 1, 2: START, 3: START + 5, 4: END - 1, 5: END, 6: END + 10}
    assert sorted(_walk(FakeSearch(contacts)), key=int) == ["2", "3", "4"]


def test_empty_window_costs_one_search():
    search = FakeSearch({1: START - 5})
    assert _walk(search) == []
    assert len(search.requests) == 1


def test_12000_contacts_sharing_one_timestamp_are_read_whole_once():
    t = START + 60_000
    contacts = {i: START + i for i in range(1, 301)}  # 300 before the bulk edit
    contacts.update({i: t for i in range(1000, 13_000)})  # 12,000 with one timestamp
    contacts.update({i: t + 1 + i for i in range(20_000, 20_500)})  # 500 after
    search = FakeSearch(contacts)
    ids = _walk(search)
    assert len(ids) == len(set(ids)) == 12_800
    assert set(ids) == {str(i) for i in contacts}
    tie_queries = [r for r in search.requests if r["sorts"][0]["propertyName"] == "hs_object_id"]
    assert len(tie_queries) == 60  # 12,000 / 200 full pages; the last one's total shows nothing is left
    assert len(search.requests) < 80


def test_more_than_10000_distinct_timestamps():
    contacts = {i: START + (i * 7) % (END - START) for i in range(25_000)}
    search = FakeSearch(contacts, seed=3)
    ids = _walk(search)
    assert len(ids) == len(set(ids)) == 25_000
    assert all("after" not in r for r in search.requests)  # keyset only: the cap is never approached


def test_many_mid_sized_ties_terminate_and_are_complete():
    contacts = {i: START + (i // 150) * 1000 for i in range(9_000)}  # 60 bulk edits of 150
    ids = _walk(FakeSearch(contacts, seed=5))
    assert sorted(map(int, ids)) == list(range(9_000))


def test_query_sequence_for_a_tie_at_a_page_boundary():
    t = START + 10
    contacts = {i: START + i for i in range(1, 100)}  # 99 distinct
    contacts.update({i: t + 1000 for i in range(500, 900)})  # 400 sharing one later timestamp
    search = FakeSearch(contacts)
    ids = _walk(search)
    assert len(ids) == 499
    shapes = [
        (
            r["sorts"][0]["propertyName"],
            [(f["propertyName"], f["operator"], f["value"]) for f in r["filterGroups"][0]["filters"]],
        )
        for r in search.requests
    ]
    tie_ms = str(t + 1000)
    assert shapes == [
        ("lastmodifieddate", [("lastmodifieddate", "GTE", str(START)), ("lastmodifieddate", "LT", str(END))]),
        ("lastmodifieddate", [("lastmodifieddate", "GTE", tie_ms), ("lastmodifieddate", "LT", str(END))]),
        ("hs_object_id", [("lastmodifieddate", "EQ", tie_ms)]),
        ("hs_object_id", [("lastmodifieddate", "EQ", tie_ms), ("hs_object_id", "GT", "699")]),
        ("lastmodifieddate", [("lastmodifieddate", "GT", tie_ms), ("lastmodifieddate", "LT", str(END))]),
    ]


def test_pages_ending_inside_batch_written_groups_read_nothing_twice():
    """Batch writes stamp 100 contacts with one timestamp: 1,000 of them cost 5 searches, the minimum."""
    contacts = {i: START + 1000 * (i // 100) for i in range(1_000)}
    search = FakeSearch(contacts, seed=7)
    ids = _walk(search)
    assert sorted(map(int, ids)) == list(range(1_000))
    assert len(search.requests) == 5
    second = search.requests[1]["filterGroups"]
    assert [(f["propertyName"], f["operator"]) for f in second[1]["filters"]] == [
        ("lastmodifieddate", "EQ"),
        ("hs_object_id", "NOT_IN"),
    ]
    assert sorted(map(int, second[1]["filters"][1]["values"])) == list(range(100, 200))


def test_a_window_that_fills_its_last_page_costs_no_empty_search():
    search = FakeSearch({i: START + i for i in range(400)})
    assert len(_walk(search)) == 400
    assert len(search.requests) == 2


def test_requests_stay_within_documented_limits():
    body = range_request("GTE", 1, 2, ["email"], 200)
    assert len(body["sorts"]) == 1 and len(body["filterGroups"]) == 1
    assert len(tie_request(5, 7, ["email"], 200)["filterGroups"][0]["filters"]) == 2


@pytest.mark.parametrize(
    ("raw", "ms"),
    [("2026-01-01T12:00:00.123Z", START + 123), (str(START), START), (START, START), ("", None), (None, None)],
)
def test_parse_hubspot_ms(raw, ms):
    assert parse_hubspot_ms(raw) == ms


def test_pendulum_datetimes_as_airflow_passes_them():
    import pendulum

    moment = pendulum.datetime(2026, 1, 1, 12, 0, 0, 123000, tz="Europe/Paris")
    assert to_epoch_ms(moment) == START - 3_600_000 + 123


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        to_epoch_ms(datetime(2026, 1, 1))
