"""The side-parameterised operators take a CRM's name or its `Side`, and refuse anything else when the DAG is parsed."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import DAG

from crm_sync.operators.extract import ExtractContactsOperator
from crm_sync.operators.load import LoadContactsOperator
from include.sync_logic.sides import Side

MAPPING = "include/mappings/contacts.yaml"
OPERATORS: list[tuple[type, dict[str, Any]]] = [
    (ExtractContactsOperator, {"mapping_path": MAPPING}),
    (LoadContactsOperator, {"mapping_path": MAPPING, "shard": []}),
]


@pytest.mark.parametrize(("operator", "arguments"), OPERATORS)
@pytest.mark.parametrize("side", [Side.SALESFORCE, "hubspot"])
def test_a_side_or_its_name_is_taken_as_the_side(operator, arguments, side) -> None:
    with DAG("crm_contact_sync", schedule=None):
        task = operator(task_id="task", side=side, **arguments)
    assert task.side is Side(side)


@pytest.mark.parametrize(("operator", "arguments"), OPERATORS)
@pytest.mark.parametrize("side", ["marketo", "HubSpot", "", None])
def test_a_name_that_is_no_crm_is_refused_at_parse_time(operator, arguments, side) -> None:
    with DAG("crm_contact_sync", schedule=None), pytest.raises(ValueError, match="is not a valid Side"):
        operator(task_id="task", side=side, **arguments)
