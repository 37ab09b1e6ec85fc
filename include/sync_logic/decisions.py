"""Decisions: per group and target CRM, what to write (create, update only the fields that win, delete),
what to skip and what to reject, each with a reason, a JSON payload and the values the write makes agreed.

Column arithmetic only; the per-field winners come from the three-way merge (merge.py).
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial

import numpy as np
import pandas as pd

from include.sync_logic.canonical import OWN_ID, PREFIX, equal
from include.sync_logic.mapping import ConflictRule, FieldMapping, MappingConfig, Validator
from include.sync_logic.merge import WINS, FieldOutcome
from include.sync_logic.normalize import is_valid_email
from include.sync_logic.sides import Action, Side
from include.sync_logic.vector_text import any_of, fragment, join, json_objects, labels

DECISION_COLUMNS = [
    "target",
    "action",
    "source_system",
    "source_id",
    "target_id",
    "payload",
    "changed_fields",
    "reason",
    "conflict",
    "matched_by",
    "agreed",
    "data_hash",
]
ACTIONS = list(Action)


class Reason(StrEnum):
    """Why a decision is what it is (templates: ``{source}`` and ``{target}`` are sides)."""

    NEW = "new in {source}"
    RECREATED = "{target} counterpart gone; re-created"
    SOURCE_DELETED = "{source} contact deleted"
    SOURCE_CHANGED = "{source} changed"
    LINK_MISSING = "link missing"
    DELETED_BOTH = "deleted on both sides"
    SOURCE_DELETED_EARLIER = "{source} contact deleted before this window; not propagated"
    SOURCE_DELETED_KEPT = "{source} contact deleted; delete propagation off"
    SOURCE_DELETED_ALONE = "{source} contact deleted; no {target} counterpart"
    TARGET_DELETED = "{target} counterpart deleted"
    TARGET_WINS = "{target} values win"
    EQUAL = "already equal"


REASONS = list(Reason)


def _code(reason: Reason) -> int:
    return REASONS.index(reason)


def _action(action: Action) -> int:
    return ACTIONS.index(action)


def decide(
    groups: pd.DataFrame, target: Side, mapping: MappingConfig, outcomes: dict[str, FieldOutcome]
) -> pd.DataFrame:
    """The decisions for ``target`` of every group holding a contact on the other (source) side."""
    source = target.other
    src, dst = PREFIX[source], PREFIX[target]
    rows = groups[src + "present"].to_numpy()
    g = groups[rows].reset_index(drop=True)
    n = len(g)
    src_del, dst_del = g[src + "deleted"].to_numpy(), g[dst + "deleted"].to_numpy()
    dst_present = g[dst + "present"].to_numpy()
    src_chg = g[src + "changed"].to_numpy()
    live = ~src_del & dst_present & ~dst_del
    create = ~src_del & ~dst_present

    written: list[tuple[FieldMapping, np.ndarray, pd.Series]] = []  # (field, include, value to write)
    refused: list[tuple[str, np.ndarray, pd.Series | None]] = []  # (field name, refused, reason text)
    conflicts: list[pd.Series | None] = []
    agreed: list[tuple[str, np.ndarray, pd.Series]] = []
    for item in mapping.fields:
        if not item.writes_to(target):
            continue
        value = g[src + item.name]
        if item.two_way:
            outcome = outcomes[item.name]
            wins = live & (outcome.winner[rows] == WINS[source])
            rule = mapping.conflict_rule(item)
            conflicts.append(fragment(wins & outcome.conflict[rows], partial(_conflict_text, item, rule, source, g)))
        else:
            wins = live & ~equal(value, g[dst + item.name]).to_numpy() & _one_way_wins(item, source, value)
        include = wins | (create & value.notna().to_numpy())
        canonical = value
        default = item.default_if_blank.get(target)
        if default is not None:
            value = value.fillna(default)
            include = include | create
        bad, text = _refusals(item, target, include | create, value)
        refused.append((item.name, bad, text))
        written.append((item, include & ~bad, value))
        agreed.append((item.name, (include & ~bad) | create, canonical))

    own_src = g[src + OWN_ID[source]]
    include_link = (live & ~equal(g[dst + OWN_ID[source]], own_src).to_numpy()) | create
    any_field = any_of((inc for _, inc, _ in written), n)
    refused_any = any_of((bad for _, bad, _ in refused), n)
    refusal_text = join([text for _, _, text in refused], n)
    conflict_text = join(conflicts, n)
    conflict_flag = conflict_text.notna().to_numpy()

    code = np.select(
        [
            create & refused_any,
            create,
            src_del & dst_present & ~dst_del & src_chg & mapping.propagate_deletes,
            live & (any_field | include_link),
            live & refused_any,
        ],
        [
            _action(Action.REJECT),
            _action(Action.CREATE),
            _action(Action.DELETE),
            _action(Action.UPDATE),
            _action(Action.REJECT),
        ],
        default=_action(Action.SKIP),
    )
    is_create, is_update = code == _action(Action.CREATE), code == _action(Action.UPDATE)
    is_reject = code == _action(Action.REJECT)
    differs = any_of((~equal(g[src + f.name], g[dst + f.name]).to_numpy() for f, _, _ in written), n)
    # A create whose source still links to a counterpart re-creates a contact the target had (and lost).
    relinked = g[src + OWN_ID[target]].notna().to_numpy()
    reason_code = np.select(
        [
            is_create & relinked,
            is_create,
            code == _action(Action.DELETE),
            is_update & any_field,
            is_update,
            src_del & dst_present & dst_del,
            src_del & dst_present & ~src_chg,
            src_del & dst_present,
            src_del,
            dst_del,
            live & differs,
        ],
        [
            _code(Reason.RECREATED),
            _code(Reason.NEW),
            _code(Reason.SOURCE_DELETED),
            _code(Reason.SOURCE_CHANGED),
            _code(Reason.LINK_MISSING),
            _code(Reason.DELETED_BOTH),
            _code(Reason.SOURCE_DELETED_EARLIER),
            _code(Reason.SOURCE_DELETED_KEPT),
            _code(Reason.SOURCE_DELETED_ALONE),
            _code(Reason.TARGET_DELETED),
            _code(Reason.TARGET_WINS),
        ],
        default=_code(Reason.EQUAL),
    )
    reason = labels(reason_code, [r.format(source=source, target=target) for r in REASONS])
    reason = reason.mask(is_reject, refusal_text)
    reason = reason.mask(is_update & conflict_flag, conflict_text)

    writes = is_create | is_update
    blank = "null" if target == Side.SALESFORCE else '""'
    payload_entries = [(item.on(target), inc & writes, val) for item, inc, val in written]
    payload_entries.append((mapping.link.on(target), include_link & writes, own_src))
    names = [fragment(inc, item.name) for item, inc, _ in written]
    names.append(fragment(include_link & ~create, "link"))
    refused_names = join([fragment(bad, name) for name, bad, _ in refused], n, sep=",").fillna("")
    changed = join(names, n, sep=",").fillna("").where(writes, refused_names.where(is_reject, ""))
    data_hash = _data_hash(g, src, [item.name for item in mapping.fields])
    frame = pd.DataFrame(
        {
            "target": str(target),
            "action": labels(code, ACTIONS),
            "source_system": str(source),
            "source_id": own_src,
            "target_id": g[dst + OWN_ID[target]].where(dst_present),
            "payload": json_objects(payload_entries, n, blank=blank),
            "changed_fields": changed,
            "reason": reason,
            "conflict": conflict_flag & is_update,
            "matched_by": g["matched_by"].astype("str"),
            "agreed": json_objects([(name, mask & writes, val) for name, mask, val in agreed], n),
            "data_hash": data_hash,
        }
    )
    partly_refused: np.ndarray = is_update & refused_any
    if not partly_refused.any():
        return frame
    extra = frame[partly_refused].assign(
        action=str(Action.REJECT),
        payload="{}",
        changed_fields=refused_names[partly_refused].to_numpy(),
        reason=refusal_text[partly_refused].to_numpy(),
        conflict=False,
        agreed="{}",
    )
    return pd.concat([frame, extra], ignore_index=True)


def decision_counts(decisions: pd.DataFrame) -> dict[str, int]:
    """``"<target>.<action>": n`` per target and action present: the keys of the run's counts."""
    counts = decisions.groupby(["target", "action"]).size()
    return {f"{target}.{action}": int(n) for (target, action), n in zip(counts.index, counts, strict=True)}


def _one_way_wins(item: FieldMapping, source: Side, value: pd.Series) -> np.ndarray:
    """A one-way field's value flows from its from-side; a blank one clears only under its explicit rule,
    so a contact created from HubSpot keeps its company when Salesforce has no Account yet."""
    if not item.writes_to(source.other):
        return np.zeros(len(value), dtype=bool)
    if item.conflict == ConflictRule(source):
        return np.ones(len(value), dtype=bool)
    return value.notna().to_numpy()


def _refusals(
    item: FieldMapping, target: Side, include: np.ndarray, value: pd.Series
) -> tuple[np.ndarray, pd.Series | None]:
    """Where the target would refuse the value about to be written, and why (NA where fine)."""
    checks: list[tuple[np.ndarray, pd.Series | None]] = []
    if target in item.required and target not in item.default_if_blank:
        missing = include & value.isna().to_numpy()
        text = f"missing required {item.on(target)}"
        checks.append((missing, fragment(missing, text)))
    if item.validate_as == Validator.EMAIL:
        invalid = include & ~is_valid_email(value).to_numpy()
        checks.append((invalid, fragment(invalid, "invalid email")))
    limit = item.max_length.get(target)
    if limit is not None:
        length = value.str.len()
        too_long = include & (length > limit).fillna(False).astype(bool).to_numpy()
        name = item.on(target)
        checks.append(
            (
                too_long,
                fragment(
                    too_long, lambda: f"{name} too long (" + length.astype("Int64").astype("str") + f" > {limit})"
                ),
            )
        )
    bad = any_of((mask for mask, _ in checks), len(value))
    texts = [text for _, text in checks if text is not None]
    return bad, (join(texts, len(value)) if texts else None)


def _conflict_text(item: FieldMapping, rule: ConflictRule, source: Side, g: pd.DataFrame) -> str | pd.Series:
    if rule != ConflictRule.LATEST:
        return f"conflict {item.name}: {source} wins by rule {rule}"
    src_at = g[PREFIX[source] + "modified_at"]
    dst_at = g[PREFIX[source.other] + "modified_at"]
    tie = (src_at == dst_at).fillna(False).astype(bool).to_numpy()
    newer = pd.Series(f"conflict {item.name}: {source} newer", index=g.index, dtype="str")
    return newer.mask(tie, f"conflict {item.name}: {source} wins tie")


def _data_hash(g: pd.DataFrame, prefix: str, names: list[str]) -> pd.Series:
    """A fingerprint of the source contact's mapped values: the retry queue starts over when it changes."""
    columns = g[[prefix + name for name in names]].astype("str").fillna("\x00")
    return pd.util.hash_pandas_object(columns, index=False).astype("str").reset_index(drop=True)


def duplicate_rejects(
    frame: pd.DataFrame, side: Side, dups: pd.DataFrame, active: set[int], mapping: MappingConfig
) -> pd.DataFrame:
    """Rejects naming each duplicate and its primary; reported when it or its primary's group is a candidate."""
    own = OWN_ID[side]
    if dups.empty:
        return empty_decisions()
    changed = frame["changed"].to_numpy()[dups.index.to_numpy()]
    report = dups[changed | dups["dup_pos"].isin(active).to_numpy()]
    rows = frame.loc[report.index].reset_index(drop=True)
    n = len(rows)
    return pd.DataFrame(
        {
            "target": str(side.other),
            "action": str(Action.REJECT),
            "source_system": str(side),
            "source_id": rows[own].to_numpy(),
            "target_id": pd.Series(pd.NA, index=range(n), dtype="str"),
            "payload": "{}",
            "changed_fields": "",
            "reason": ("duplicate of " + report["dup_of"].astype("str")).to_numpy(),
            "conflict": False,
            "matched_by": pd.Series(pd.NA, index=range(n), dtype="str"),
            "agreed": "{}",
            "data_hash": _data_hash(rows, "", [item.name for item in mapping.fields]),
        }
    )


def empty_decisions() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="str") for name in DECISION_COLUMNS})
    frame["conflict"] = frame["conflict"].astype(bool)
    return frame
