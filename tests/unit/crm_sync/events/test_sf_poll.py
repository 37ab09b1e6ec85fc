"""The Salesforce poll against the HTTPS sandbox and a real Redis: one query a poll, each change queued once,
deletes and merges named, the mark kept in Redis and moved only after the events were queued."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import redis

from crm_sync.events.queue import ContactEventQueue
from crm_sync.events.sf_poll import MARK_KEY_PREFIX, SalesforceChangePoll
from crm_sync.hooks.contacts import contacts_hook
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
REDIS_DB = 7


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, REDIS_DB, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(crm: SandboxProcess, redis_url: str) -> SandboxProcess:
    crm.admin("salesforce", "POST", "reset")
    crm.admin("salesforce", "POST", "clock", json={"set": NOW.isoformat()})
    redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}").flushdb()
    return crm


def _seed(crm: SandboxProcess, *names: str) -> list[str]:
    contacts = [{"Email": f"{name}@example.com", "LastName": name.title()} for name in names]
    result = crm.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()
    assert not result["rejected"], result["rejected"]
    return list(result["ids"])


def _advance(crm: SandboxProcess, seconds: float) -> None:
    crm.admin("salesforce", "POST", "clock", json={"advance_seconds": seconds})


def _requests(crm: SandboxProcess) -> int:
    return int(crm.admin("salesforce", "GET", "stats").json()["total"]["requests"])


def _clock(crm: SandboxProcess) -> datetime:
    return datetime.fromisoformat(crm.admin("salesforce", "GET", "clock").json()["now"])


def _poll(crm: SandboxProcess, redis_url: str) -> SalesforceChangePoll:
    """A poll on the org's clock (frozen, moved by `_advance`), with the default skew margin."""
    client = redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}")
    hook = contacts_hook(Side.SALESFORCE, "salesforce_default", redis_conn_id="redis_default")
    hook.get_conn()  # the token request is no API call in Salesforce's limits: not part of a poll's cost
    return SalesforceChangePoll(hook, client, conn_id="salesforce_default", now=lambda: _clock(crm))


class Queue:
    """What the poll hands its events to."""

    def __init__(self) -> None:
        self.events: list[ContactEvent] = []

    def __call__(self, events: Sequence[ContactEvent]) -> None:
        self.events.extend(events)


def test_each_change_is_queued_once_at_one_query_a_poll(sf: SandboxProcess, redis_url: str) -> None:
    first, second = _seed(sf, "ada", "bob")
    _advance(sf, 3)  # the seed's second is over, even allowing for the clock skew
    poll, queue = _poll(sf, redis_url), Queue()
    before = _requests(sf)
    poll.poll(queue)
    assert [(e.contact_id, e.kind) for e in queue.events] == [(first, EventKind.CHANGED), (second, EventKind.CHANGED)]
    assert {e.side for e in queue.events} == {Side.SALESFORCE}
    assert poll.poll(queue) == []  # the same second read again: nothing new
    assert _requests(sf) - before == 2
    _advance(sf, 5)
    poll.hook.get_conn().Contact.update(second, {"Title": "Engineer"})  # an edit through the API, as a user's
    _advance(sf, 3)
    before = _requests(sf)
    news = poll.poll(queue)
    assert [(e.contact_id, e.kind) for e in news] == [(second, EventKind.CHANGED)]
    assert news[0].occurred_at_ms == int((NOW + timedelta(seconds=8)).timestamp() * 1000)
    assert _requests(sf) - before == 1
    stored = poll.redis.get(MARK_KEY_PREFIX + "salesforce_default")
    assert stored is not None and (NOW + timedelta(seconds=8)).isoformat() in stored.decode()


def test_deletes_and_merges_are_named_and_a_new_poll_resumes_from_the_stored_mark(
    sf: SandboxProcess, redis_url: str
) -> None:
    master, loser, gone = _seed(sf, "master", "loser", "gone")
    _poll(sf, redis_url).poll(Queue())
    _advance(sf, 3)
    sf.admin("salesforce", "POST", "merge", json={"masterRecord": {"Id": master}, "recordToMergeIds": [loser]})
    poll = _poll(sf, redis_url)  # a restarted triggerer: the mark comes from Redis
    poll.hook.get_conn().Contact.delete(gone)
    queue = Queue()
    poll.poll(queue)
    kinds = {(e.kind, e.contact_id, e.merged_ids) for e in queue.events}
    assert (EventKind.MERGED, master, (loser,)) in kinds
    assert (EventKind.DELETED, gone, ()) in kinds
    assert (EventKind.CHANGED, master, ()) in kinds  # the master's own values changed with the merge


def test_the_mark_stays_when_the_events_could_not_be_queued(sf: SandboxProcess, redis_url: str) -> None:
    (contact,) = _seed(sf, "dora")
    poll = _poll(sf, redis_url)

    def broken(events: Sequence[ContactEvent]) -> None:
        raise ConnectionError("queue unreachable")

    with pytest.raises(ConnectionError):
        poll.poll(broken)
    queue = Queue()
    poll.poll(queue)
    assert [e.contact_id for e in queue.events] == [contact]


def test_a_contact_edited_again_within_the_second_of_a_poll_is_queued_again(sf: SandboxProcess, redis_url: str) -> None:
    (contact,) = _seed(sf, "erin")  # Salesforce stamps whole seconds: the seed and the edit below read as NOW
    poll = _poll(sf, redis_url)
    queue = ContactEventQueue(poll.redis)  # the real queue: it drops an event id it has seen
    poll.poll(queue.add)
    _advance(sf, 0.4)
    poll.hook.get_conn().Contact.update(contact, {"Title": "Engineer"})  # the same second as the seed
    assert [e.contact_id for e in poll.poll(queue.add)] == [contact]
    _advance(sf, 3)
    assert [e.contact_id for e in poll.poll(queue.add)] == [contact]  # its second is over now: queued a last time
    assert poll.poll(queue.add) == []
    assert [claimed.event.contact_id for claimed in queue.claim("run", 10)] == [contact] * 3


def test_the_poll_digests_the_fields_the_event_run_records_in_the_same_query(
    sf: SandboxProcess, redis_url: str
) -> None:
    from crm_sync.events.echo_ledger import EchoLedger
    from include.sync_logic.event_echoes import row_digest

    (ada,) = _seed(sf, "ada")
    _advance(sf, 3)
    poll, queue = _poll(sf, redis_url), Queue()
    EchoLedger(poll.redis).set_row_fields(["Email", "LastName", "Title"])
    before = _requests(sf)
    (event,) = poll.poll(queue)
    assert _requests(sf) - before == 1
    row = {"Email": "ada@example.com", "LastName": "Ada", "Title": None}
    assert event.contact_id == ada and event.fingerprint == row_digest(row, ["Email", "LastName", "Title"])


def test_a_polled_row_digests_as_the_event_runs_read_of_it_does(sf: SandboxProcess, redis_url: str) -> None:
    """The poll's queryAll and the event run's read by id frame a contact alike: its echo can match."""
    from crm_sync.events.echo_ledger import EchoLedger
    from crm_sync.hooks.contacts import LookupKey
    from crm_sync.operators.base import load_mapping_file
    from include.sync_logic.event_echoes import row_digest, salesforce_row_fields

    mapping = load_mapping_file("include/mappings/contacts.yaml")
    (ada,) = _seed(sf, "ada")
    _advance(sf, 3)
    poll, queue = _poll(sf, redis_url), Queue()
    row_fields = salesforce_row_fields(mapping)
    EchoLedger(poll.redis).set_row_fields(row_fields)
    (event,) = poll.poll(queue)
    (read,) = poll.hook.fetch_contacts(LookupKey.OWN_ID, [ada], mapping.salesforce_fields).to_dict("records")
    assert event.fingerprint == row_digest(read, row_fields)
