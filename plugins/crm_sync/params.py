"""A run's DAG params, typed: the behaviour switches of one run, and the DAG's defaults for them.

Connection ids are params too (CONTRACT.md), but no task reads them here: operators take them as templated
arguments (`{{ params.salesforce_conn_id }}`), and their defaults are `[crm_sync]` settings (`crm_sync.settings`).
A missing param or a None (a nullable form field left empty) means the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from include.sync_logic.sides import Direction


def param(params: Mapping[str, Any], name: str, default: Any) -> Any:
    """The param's value, or `default` when the run has none or it is None."""
    value = params.get(name)
    return default if value is None else value


@dataclass(frozen=True)
class RunParams:
    """What one run does: its direction, whether it writes, its window, its logs and its mass-change gate."""

    direction: Direction = Direction.BOTH
    dry_run: bool = False
    full_resync: bool = False
    # Covers the CRMs' read-after-write lag (HubSpot's search index, Salesforce's late commits); re-reading a
    # contact that equals its sync-state snapshot costs a read, never a write.
    lookback_minutes: int = 10
    log_pii: bool = False
    allow_mass_change: bool = False
    max_change_share: float = 0.5
    mass_change_min_count: int = 100

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunParams:
        return cls(
            direction=Direction(param(params, "direction", cls.direction)),
            dry_run=bool(param(params, "dry_run", cls.dry_run)),
            full_resync=bool(param(params, "full_resync", cls.full_resync)),
            lookback_minutes=int(param(params, "lookback_minutes", cls.lookback_minutes)),
            log_pii=bool(param(params, "log_pii", cls.log_pii)),
            allow_mass_change=bool(param(params, "allow_mass_change", cls.allow_mass_change)),
            max_change_share=float(param(params, "max_change_share", cls.max_change_share)),
            mass_change_min_count=int(param(params, "mass_change_min_count", cls.mass_change_min_count)),
        )
