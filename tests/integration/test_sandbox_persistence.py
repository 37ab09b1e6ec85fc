"""`python -m sandbox serve --persist`: the CRMs' data survives a clean restart; a killed sandbox starts fresh."""

from __future__ import annotations

import signal

import pytest

from sandbox.testing import SandboxProcess, start_sandbox

pytestmark = pytest.mark.integration

NEW_CONTACT = {"Email": "ada.persisted@example.test", "FirstName": "Ada", "LastName": "Persisted"}


def records(sandbox: SandboxProcess) -> tuple[list[dict], list[dict]]:
    return (
        sandbox.admin("salesforce", "GET", "records").json()["contacts"],
        sandbox.admin("hubspot", "GET", "records").json()["contacts"],
    )


def add_contact(sandbox: SandboxProcess, email: str) -> str:
    """Seed one contact on each side; returns the new Salesforce id."""
    sandbox.admin("hubspot", "POST", "seed", {"contacts": [{"properties": {"email": email, "lastname": "P"}}]})
    answer = sandbox.admin("salesforce", "POST", "seed", {"contacts": [{**NEW_CONTACT, "Email": email}]}).json()
    return answer["ids"][0]


def test_a_clean_stop_keeps_the_data_and_the_id_counters(tmp_path) -> None:
    with start_sandbox(tmp_path, contacts=30, seed=3, persist=True) as first:
        first_id = add_contact(first, "one@example.test")
        before = records(first)
    assert first.proc.returncode == 0

    with start_sandbox(tmp_path, contacts=30, seed=99, persist=True) as second:
        assert records(second) == before, "restored, not seeded again (another seed would differ)"
        second_id = add_contact(second, "two@example.test")
        sf_ids = [row["Id"] for row in records(second)[0]]
        assert second_id != first_id and len(set(sf_ids)) == len(sf_ids), "ids continue where they stopped"
        hubspot_ids = [row["id"] for row in records(second)[1]]
        assert len(set(hubspot_ids)) == len(hubspot_ids)
        second.proc.send_signal(signal.SIGKILL)
        second.proc.wait()

    with start_sandbox(tmp_path, contacts=30, seed=3, persist=True) as third:
        emails = {row["Email"] for row in records(third)[0]}
        assert "one@example.test" not in emails and "two@example.test" not in emails, "killed: seeded afresh"
        assert len(records(third)[0]) == 30
