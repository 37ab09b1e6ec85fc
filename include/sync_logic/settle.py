"""Settling a run into the sync state: which snapshots move, which retry-queue entries close or count an attempt.

Pure frames in, pure frames out; the settle task hands them to the state store. Snapshots move only for
what both CRMs hold: the values of writes the target CRM confirmed (the baseline, values already equal and
bases of first-seen conflicts, was recorded by reconcile before any write), without the fields it refused
(a load result row of action "reject" names them) and not at all for a create the target answered by linking
an existing contact (its values were not written: they meet in the next run's merge). Every write that did
not land, every field refused alone, and every contact the rules refused, becomes a retry-queue attempt with
the reason, `permanent` when the CRM's refusal cannot pass unchanged (the store parks it at once); every
contact with nothing left to write closes its entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from include.sync_logic.sides import WRITE_ACTIONS, Action, Side

QUEUE_KEY = ["target", "source_id"]
ATTEMPT_COLUMNS = ["target", "source_id", "target_id", "action", "data_hash", "code", "message", "permanent"]
REFUSED = Action.REJECT  # the action of a load result row holding the fields a CRM refused alone
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
    refused = _refused_fields(results)
    results = _load_results(results)
    writes = decisions[decisions["action"].isin(WRITE_ACTIONS)]
    answered = writes.merge(
        results,
        left_on=["target", "source_id", "action"],
        right_on=["target", "ref", "action"],
        how="left",
    )
    ok = answered["ok"].fillna(False).astype(bool)
    linked = answered["existing_id"].notna()  # answered by linking an existing contact: nothing written
    confirmed = answered[ok & ~linked & answered["action"].isin([Action.CREATE, Action.UPDATE])]
    confirmed = _without_refused(confirmed, refused)
    snapshots = [_pairs(confirmed[confirmed["target"] == side], side) for side in Side]
    deletes = answered[ok & (answered["action"] == Action.DELETE)]
    deleted_pairs = pd.concat([_pairs(deletes[deletes["target"] == side], side) for side in Side], ignore_index=True)

    failed = answered[answered["ok"].notna() & ~ok]
    unanswered = answered[answered["ok"].isna()]
    written = answered[ok].drop(columns=["ref", "error_code", "message", "permanent"])
    refused_alone = written.merge(refused, left_on=["target", "source_id"], right_on=["target", "ref"])
    rule_rejects = decisions[decisions["action"] == Action.REJECT]
    attempts = pd.concat(
        [
            failed.assign(code=failed["error_code"].fillna("ERROR"), message=failed["message"].fillna("")),
            refused_alone.assign(code=refused_alone["error_code"].fillna("ERROR")),
            unanswered.assign(code=NO_ANSWER_CODE, message=NO_ANSWER_MESSAGE, permanent=False),
            rule_rejects.assign(
                # The write the rules stopped: a create where the target has no counterpart yet.
                action=rule_rejects["target_id"].isna().map({True: str(Action.CREATE), False: str(Action.UPDATE)}),
                code=RULES_CODE,
                message=rule_rejects["reason"],
                permanent=False,
            ),
        ],
        ignore_index=True,
    ).reindex(columns=ATTEMPT_COLUMNS)
    attempts["permanent"] = attempts["permanent"].eq(True)
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
    columns = ["target", "ref", "action", "ok", "target_id", "error_code", "message", "existing_id", "permanent"]
    if results is None or results.empty:
        return pd.DataFrame(columns=[*columns[:4], "result_target_id", *columns[5:]])
    frame = _sent(results, results["action"].isin(WRITE_ACTIONS)).reindex(columns=columns)
    frame = frame.astype({"ref": "str", "target": "str", "action": "str"})
    frame["permanent"] = frame["permanent"].eq(True)
    return frame.rename(columns={"target_id": "result_target_id"}).drop_duplicates(
        ["target", "ref", "action"], keep="last"
    )


def _refused_fields(results: pd.DataFrame | None) -> pd.DataFrame:
    """Fields a CRM refused while writing the rest of the record: (target, ref, fields, code, message, permanent)."""
    columns = ["target", "ref", "refused_fields", "error_code", "message", "permanent"]
    if results is None or results.empty or "refused_fields" not in results:
        return pd.DataFrame(columns=columns)
    frame = _sent(results, results["action"] == REFUSED).reindex(columns=columns)
    frame = frame.astype({"ref": "str", "target": "str"})
    frame["permanent"] = frame["permanent"].eq(True)
    return frame.drop_duplicates(["target", "ref"], keep="last")


def _sent(results: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
    """The selected rows of results that were sent (a dry run's are not)."""
    if "dry_run" in results:
        rows = rows & ~results["dry_run"].astype(bool)
    return results[rows]


def _without_refused(confirmed: pd.DataFrame, refused: pd.DataFrame) -> pd.DataFrame:
    """Confirmed writes whose agreed values leave out the fields the CRM refused: their base stays what it was
    (the value the target still holds), so the source stays "the one that changed" and nothing ping-pongs."""
    if refused.empty or confirmed.empty:
        return confirmed
    fields = confirmed.merge(refused, left_on=["target", "source_id"], right_on=["target", "ref"], how="left")
    names = fields["refused_fields"].to_numpy()
    agreed = [
        text if not isinstance(dropped, str) else _drop_keys(text, dropped.split(","))
        for text, dropped in zip(confirmed["agreed"], names, strict=True)
    ]
    return confirmed.assign(agreed=agreed)


def _drop_keys(agreed: str, names: list[str]) -> str:
    values = json.loads(agreed)
    return json.dumps({key: value for key, value in values.items() if key not in names}, separators=(",", ":"))


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
