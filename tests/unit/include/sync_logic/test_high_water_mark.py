"""The Salesforce poll's mark: news once, ties on a second kept, merges and deletes named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from include.sync_logic.events import EventKind
from include.sync_logic.high_water_mark import (
    POLL_FIELDS,
    PollMark,
    PollOutcome,
    first_open_second,
    news_since,
    polls_per_day,
)
from include.sync_logic.sides import Side

T = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
SETTLED = T + timedelta(minutes=1)
"""A poll long after every row of these tests: all their seconds are closed."""


def rows(*items: tuple[str, str, bool, str | None]) -> pd.DataFrame:
    """(Id, SystemModstamp ISO, IsDeleted, MasterRecordId) rows as the hook frames them."""
    frame = pd.DataFrame(list(items), columns=list(POLL_FIELDS))
    frame["SystemModstamp"] = pd.to_datetime(frame["SystemModstamp"], utc=True)
    return frame


def poll(read: pd.DataFrame, mark: PollMark, at: datetime = SETTLED, skew: float = 0.0) -> PollOutcome:
    """`news_since` for a poll that asked Salesforce at `at`, on a clock up to `skew` seconds ahead of its."""
    return news_since(read, mark, polled_at=at, clock_skew=timedelta(seconds=skew))


def test_first_poll_passes_on_every_row_oldest_first_and_moves_the_mark_to_the_newest_second() -> None:
    read = rows(
        ("003B", "2026-12-06T10:00:05.000Z", False, None),
        ("003A", "2026-12-06T10:00:02.000Z", False, None),
    )
    outcome = poll(read, PollMark.starting_at(T))
    assert [event.contact_id for event in outcome.events] == ["003A", "003B"]
    assert {event.kind for event in outcome.events} == {EventKind.CHANGED}
    assert {event.side for event in outcome.events} == {Side.SALESFORCE}
    assert outcome.events[0].occurred_at_ms == int(datetime(2026, 12, 6, 10, 0, 2, tzinfo=UTC).timestamp() * 1000)
    assert outcome.mark.second == datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC)
    assert outcome.mark.seen == {outcome.events[1].event_id.removeprefix("sf-poll:")}


def test_a_row_read_again_at_the_marks_second_is_not_news_but_a_new_row_in_that_second_is() -> None:
    first = poll(rows(("003A", "2026-12-06T10:00:05.100Z", False, None)), PollMark.starting_at(T))
    again = rows(
        ("003A", "2026-12-06T10:00:05.100Z", False, None),  # the `>=` query reads the mark's second again
        ("003C", "2026-12-06T10:00:05.900Z", False, None),  # committed later within the same second
    )
    second = poll(again, first.mark)
    assert [event.contact_id for event in second.events] == ["003C"]
    assert len(second.mark.seen) == 2
    third = poll(again, second.mark)
    assert third.events == []
    assert third.mark == second.mark


def test_a_contact_changed_again_is_news_again_and_the_mark_forgets_older_seconds() -> None:
    first = poll(rows(("003A", "2026-12-06T10:00:05Z", False, None)), PollMark.starting_at(T))
    later = poll(rows(("003A", "2026-12-06T10:00:09Z", False, None)), first.mark)
    assert [event.contact_id for event in later.events] == ["003A"]
    assert later.events[0].event_id != first.events[0].event_id  # a new delivery, not a duplicate of the first
    assert later.mark.second == datetime(2026, 12, 6, 10, 0, 9, tzinfo=UTC)
    assert len(later.mark.seen) == 1


def test_a_quiet_poll_keeps_the_mark() -> None:
    mark = PollMark(T, frozenset({"003A@1"}))
    outcome = poll(rows(), mark)
    assert outcome.events == []
    assert outcome.mark is mark


def test_merged_away_rows_name_their_master_and_deleted_rows_are_deletions() -> None:
    read = rows(
        ("003L", "2026-12-06T10:00:03Z", True, "003M"),
        ("003D", "2026-12-06T10:00:04Z", True, None),
    )
    merged, deleted = poll(read, PollMark.starting_at(T)).events
    assert (merged.kind, merged.contact_id, merged.merged_ids) == (EventKind.MERGED, "003M", ("003L",))
    assert (deleted.kind, deleted.contact_id, deleted.merged_ids) == (EventKind.DELETED, "003D", ())


def test_the_mark_round_trips_through_json_and_refuses_fractions_and_naive_times() -> None:
    mark = PollMark(T, frozenset({"003A@1", "003B@2"}))
    assert PollMark.from_json(mark.to_json()) == mark
    assert PollMark.starting_at(T.replace(microsecond=500)).second == T
    with pytest.raises(ValueError, match="whole second"):
        PollMark(T.replace(microsecond=1))
    with pytest.raises(ValueError, match="timezone"):
        PollMark(T.replace(tzinfo=None))


@pytest.mark.parametrize(("seconds", "calls"), [(30, 2880), (60, 1440), (45, 1920)])
def test_polls_per_day_is_the_daily_budget_a_quiet_org_pays(seconds: int, calls: int) -> None:
    assert polls_per_day(seconds) == calls


def test_a_contact_edited_again_within_the_second_of_a_poll_is_news_again() -> None:
    # Salesforce stamps whole seconds: both edits of 003A (10:00:05.2 and 10:00:05.6) read as 10:00:05.
    read = rows(("003A", "2026-12-06T10:00:05Z", False, None))
    at_05 = T + timedelta(seconds=5)
    first = poll(read, PollMark.starting_at(T), at=at_05 + timedelta(milliseconds=400))  # between the two edits
    second = poll(read, first.mark, at=at_05 + timedelta(milliseconds=800))  # after the second edit
    assert [event.contact_id for event in second.events] == ["003A"]
    assert second.events[0].event_id != first.events[0].event_id  # the queue drops a repeated event id


def test_a_row_of_a_second_still_open_is_passed_on_until_a_poll_sees_it_closed_then_remembered() -> None:
    read = rows(
        ("003A", "2026-12-06T10:00:03Z", False, None),
        ("003B", "2026-12-06T10:00:05Z", False, None),
    )
    at_05 = T + timedelta(seconds=5, milliseconds=400)
    open_poll = poll(read, PollMark.starting_at(T), at=at_05)
    assert [event.contact_id for event in open_poll.events] == ["003A", "003B"]
    assert open_poll.still_open == 1
    assert open_poll.mark == PollMark(datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC))  # 003B is not remembered
    assert open_poll.events[1].event_id == f"sf-poll:003B@{_ms('2026-12-06T10:00:05Z')}~{_ms(at_05)}"
    assert open_poll.events[0].event_id == f"sf-poll:003A@{_ms('2026-12-06T10:00:03Z')}"
    again = rows(("003B", "2026-12-06T10:00:05Z", False, None))  # what `>= 10:00:05` reads next
    closing = poll(again, open_poll.mark, at=T + timedelta(seconds=35))
    assert [event.event_id for event in closing.events] == [f"sf-poll:003B@{_ms('2026-12-06T10:00:05Z')}"]
    assert (closing.still_open, closing.mark.seen) == (0, {"003B@" + str(_ms("2026-12-06T10:00:05Z"))})
    assert poll(again, closing.mark, at=T + timedelta(seconds=65)).events == []


def test_the_clock_skew_keeps_the_seconds_before_the_poll_open_too() -> None:
    read = rows(("003A", "2026-12-06T10:00:03Z", False, None), ("003B", "2026-12-06T10:00:01Z", False, None))
    at = T + timedelta(seconds=5, milliseconds=400)
    assert first_open_second(at, timedelta(seconds=2)) == T + timedelta(seconds=3)
    skewed = poll(read, PollMark.starting_at(T), at=at, skew=2)
    assert (skewed.still_open, skewed.mark) == (1, PollMark(T + timedelta(seconds=3)))
    assert poll(read, PollMark.starting_at(T), at=at, skew=1).still_open == 0


def test_each_poll_names_a_row_of_an_open_second_anew() -> None:
    read = rows(("003A", "2026-12-06T10:00:05Z", False, None))
    ids = [
        poll(read, PollMark.starting_at(T), at=T + timedelta(seconds=5, milliseconds=ms)).events[0].event_id
        for ms in (100, 200, 300)
    ]
    assert len(set(ids)) == 3


def _ms(moment: str | datetime) -> int:
    return int(pd.Timestamp(moment).value // 1_000_000)


def test_live_rows_carry_a_digest_of_the_row_fields_deleted_ones_none() -> None:
    from include.sync_logic.event_echoes import row_digest

    read = rows(
        ("003A", "2026-12-06T10:00:02.000Z", False, None),
        ("003D", "2026-12-06T10:00:03.000Z", True, None),
    )
    read["LastName"] = ["Lovelace", "Gone"]
    outcome = news_since(
        read, PollMark.starting_at(T), polled_at=SETTLED, clock_skew=timedelta(0), row_fields=["LastName"]
    )
    live, deleted = outcome.events
    assert live.fingerprint == row_digest({"LastName": "Lovelace"}, ["LastName"])
    assert deleted.kind is EventKind.DELETED and deleted.fingerprint == ""
    assert all(event.fingerprint == "" for event in poll(read, PollMark.starting_at(T)).events)  # no fields: none
