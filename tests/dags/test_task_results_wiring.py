"""Every task result a task reads is wired in the DAG file from the task that returns that type.

Consumers take upstream results as XComArgs (`reconcile_result=reconcile.output`), never literal task-id pulls:
a renamed or missing producer fails here (or at parse) instead of silently emptying the report.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from airflow.sdk import Context
from airflow.sdk.definitions.xcom_arg import XComArg

from crm_sync import task_results

ROOT = Path(__file__).resolve().parents[2]
RESULT_TYPES = {value for value in vars(task_results).values() if typing.is_typeddict(value)}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["crm_contact_sync"]


def _hints(function: Any) -> dict[str, Any]:
    """A function's annotations resolved, the names its module imports only for type checkers included."""
    return get_type_hints(function, localns={**vars(task_results), "Context": Context, "Mapping": Mapping})


def _returns(task: Any) -> Any:
    return _hints(task.operator_class.execute)["return"]


def _without_none(annotation: Any) -> Any:
    if isinstance(annotation, UnionType) or get_origin(annotation) is typing.Union:
        (kept,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kept
    return annotation


def _wired(value: Any, annotation: Any, path: str) -> Iterator[tuple[str, XComArg, Any]]:
    """(where, XComArg, the type the consumer expects there) for each XComArg in an argument, nested in mappings."""
    if isinstance(value, XComArg):
        yield path, value, _without_none(annotation)
    elif isinstance(value, Mapping):
        value_type = get_args(_without_none(annotation))[1]
        for key, item in value.items():
            yield from _wired(item, value_type, f"{path}[{key}]")


def _inputs(dag: Any) -> Iterator[tuple[Any, str, XComArg, Any]]:
    for task in dag.tasks:
        if task.is_mapped:
            continue  # a mapped task takes its shard through expand, which Airflow checks
        hints = _hints(type(task).__init__)
        for field in task.template_fields:
            for where, arg, expected in _wired(getattr(task, field), hints.get(field), field):
                yield task, where, arg, expected


def test_every_result_a_task_reads_comes_from_an_upstream_task_returning_that_type(dag) -> None:
    inputs = list(_inputs(dag))
    assert len(inputs) >= 10
    for task, where, arg, expected in inputs:
        producer = arg.operator
        name = f"{task.task_id}.{where} <- {producer.task_id}"
        assert dag.task_dict.get(producer.task_id) is producer, f"{name}: the producer is not in the DAG"
        assert producer.task_id in task.upstream_task_ids, f"{name}: the producer is not upstream"
        if producer.is_mapped:  # one result per mapped instance
            assert get_origin(expected) in (Sequence, list), f"{name}: a mapped producer gives a sequence"
            (expected,) = get_args(expected)
        assert expected in RESULT_TYPES, f"{name}: annotate the argument with its task_results type"
        assert _returns(producer) is expected, f"{name}: returns {_returns(producer)}, the consumer reads {expected}"


def test_the_report_reads_every_task_that_calls_a_crm(dag) -> None:
    """A task whose result carries API counters must reach the report, or the report's calls silently shrink."""
    report = dag.get_task("report")
    read = {arg.operator.task_id for task, _, arg, _ in _inputs(dag) if task is report}
    calling = {
        task.task_id
        for task in dag.tasks
        if task is not report and (returned := _returns(task)) in RESULT_TYPES and "api" in returned.__annotations__
    }
    assert calling >= {"extract_salesforce", "reconcile", "load_hubspot", "link_back"}
    assert calling <= read, f"the report does not read {sorted(calling - read)}"
    assert "settle_state" in read  # what the state and the retry queue did


def _mentions(annotation: Any) -> set[Any]:
    """The task_results types an annotation names, however nested."""
    return ({annotation} & RESULT_TYPES).union(*(_mentions(arg) for arg in get_args(annotation)))


def test_result_arguments_have_no_default_so_an_unwired_consumer_fails_at_parse(dag) -> None:
    checked = 0
    for operator in {task.operator_class for task in dag.tasks}:
        hints = _hints(operator.__init__)
        for name, parameter in inspect.signature(operator.__init__).parameters.items():
            if _mentions(hints.get(name)):
                checked += 1
                assert parameter.default is inspect.Parameter.empty, f"{operator.__name__}({name}=...) has a default"
    assert checked >= 6


def test_no_task_pulls_xcom_by_a_literal_task_id() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "plugins" / "crm_sync").rglob("*.py")
        if "xcom_pull(task_ids=" in path.read_text()
    ]
    assert offenders == []
