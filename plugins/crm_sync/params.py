"""Reading a run's DAG params: a missing param or a None (a nullable form field left empty) means the default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def param(params: Mapping[str, Any], name: str, default: Any) -> Any:
    """The param's value, or `default` when the run has none or it is None."""
    value = params.get(name)
    return default if value is None else value
