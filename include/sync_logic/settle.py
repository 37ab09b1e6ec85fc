"""Settling a run into the sync state: which snapshots move, which retry-queue entries close or count an attempt.

Pure frames in, pure frames out; the settle task hands them to the state store. Snapshots move only for
what both CRMs hold: the values of writes the target CRM confirmed (the baseline, values already equal and
bases of first-seen conflicts, was recorded by reconcile before any write). Every write that did not land,
and every contact the rules refused, becomes a retry-queue attempt with the reason; every contact with
nothing left to write closes its entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from include.sync_logic.sides import WRITE_ACTIONS, Action, Side

QUEUE_KEY = ["target", "source_id"]
ATTEMPT_COLUMNS = ["target", "source_id", "target_id", "action", "data_hash", "code", "message"]
RULES_CODE = "REJECTED_BY_RULES"
NO_ANSWER_CODE = "NO_ANSWER"
NO_ANSWER_MESSAGE = "the load ended before this record got an answer (see the load task's log)"


@dataclass(frozen=True)
class Settlement:
    """``snapshots``: frames for ``merge_snapshots``, applied in order (each has unique pairs);
    ``deleted_pairs``: pairs whose counterpart a confirmed delete removed; ``resolved``: queue keys to close;
    ``attempts``: queue entries to count an attempt for (``ATTEMPT_COLUMNS``)."""

    snapshots: list[pd.DataFrame]
    deleted_pairs: pd.DataFrame
    resolved: pd.DataFrame
    attempts: pd.DataFrame


def settle(decisions: pd.DataFrame, results: pd.DataFrame | None) -> Settlement:
    """What a run leaves in the sync state, from its decisions and its load results."""
    results = _load_results(results)
    writes = decisions[decisions["action"].isin(WRITE_ACTIONS)]
    answered = writes.merge(
        results[["target", "ref", "action", "ok", "result_target_id", "error_code", "message"]],
        left_on=["target", "source_id", "action"],
        right_on=["target", "ref", "action"],
        how="left",
    )
    ok = answered["ok"].fillna(False).astype(bool)
    confirmed = answered[ok & answered["action"].isin([Action.CREATE, Action.UPDATE])]
    snapshots = [_pairs(confirmed[confirmed["target"] == side], side) for side in Side]
    deletes = answered[ok & (answered["action"] == Action.DELETE)]
    deleted_pairs = pd.concat([_pairs(deletes[deletes["target"] == side], side) for side in Side], ignore_index=True)

    failed = answered[answered["ok"].notna() & ~ok]
    unanswered = answered[answered["ok"].isna()]
    rule_rejects = decisions[decisions["action"] == Action.REJECT]
    attempts = pd.concat(
        [
            failed.assign(code=failed["error_code"].fillna("ERROR"), message=failed["message"].fillna("")),
            unanswered.assign(code=NO_ANSWER_CODE, message=NO_ANSWER_MESSAGE),
            rule_rejects.assign(
                # The write the rules stopped: a create where the target has no counterpart yet.
                action=rule_rejects["target_id"].isna().map({True: str(Action.CREATE), False: str(Action.UPDATE)}),
                code=RULES_CODE,
                message=rule_rejects["reason"],
            ),
        ],
        ignore_index=True,
    ).reindex(columns=ATTEMPT_COLUMNS)
    attempts = attempts.drop_duplicates(QUEUE_KEY, keep="first").reset_index(drop=True).astype("object")
    attempts = attempts.where(attempts.notna(), None)

    done = pd.concat(
        [answered.loc[ok, QUEUE_KEY], decisions.loc[decisions["action"] == Action.SKIP, QUEUE_KEY]], ignore_index=True
    ).drop_duplicates()
    open_keys = attempts[QUEUE_KEY].astype("str")
    resolved = done.merge(open_keys, on=QUEUE_KEY, how="left", indicator=True)
    resolved = resolved.loc[resolved["_merge"] == "left_only", QUEUE_KEY].reset_index(drop=True)
    return Settlement(snapshots=snapshots, deleted_pairs=deleted_pairs, resolved=resolved, attempts=attempts)


def _load_results(results: pd.DataFrame | None) -> pd.DataFrame:
    """Load results (link-back rows left out: a link changes no snapshot), one row per record and action."""
    columns = ["target", "ref", "action", "ok", "target_id", "error_code", "message"]
    if results is None or results.empty:
        return pd.DataFrame(columns=[*columns[:4], "result_target_id", *columns[5:]])
    frame = results[results["action"].isin(WRITE_ACTIONS)].reindex(columns=columns)
    if "dry_run" in results:
        frame = frame[~results.loc[frame.index, "dry_run"].astype(bool)]
    frame = frame.astype({"ref": "str", "target": "str", "action": "str"})
    return frame.rename(columns={"target_id": "result_target_id"}).drop_duplicates(
        ["target", "ref", "action"], keep="last"
    )


def _pairs(rows: pd.DataFrame, target: Side) -> pd.DataFrame:
    """(salesforce_id, hubspot_id, field_values) of confirmed writes to ``target``."""
    written_id = rows["target_id"].where(rows["target_id"].notna(), rows["result_target_id"])
    source_id = rows["source_id"]
    salesforce_id, hubspot_id = (source_id, written_id) if target == Side.HUBSPOT else (written_id, source_id)
    return pd.DataFrame(
        {
            "salesforce_id": salesforce_id.to_numpy(),
            "hubspot_id": hubspot_id.to_numpy(),
            "field_values": rows["agreed"].to_numpy(),
        }
    ).astype("str")
