"""Every store test runs on both databases the store supports: a SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.state.engine import create_state_engine
from crm_sync.state.schema import metadata
from crm_sync.state.store import SyncStateStore


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty state database; on PostgreSQL the session's cluster, its tables dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    engine = create_state_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def store(state_url: str) -> Iterator[SyncStateStore]:
    engine = create_state_engine(state_url)
    state = SyncStateStore(engine)
    state.create_schema()
    yield state
    engine.dispose()
