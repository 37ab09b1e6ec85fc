"""Per-record write results, one shape for both CRMs so operators report rejects uniformly."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
# Codes a hook gives an input the CRM never answered for (e.g. a bulk job's unprocessed rows): not a verdict.
NO_ANSWER_CODES = frozenset({"UNPROCESSED", "NO_RESULT"})
REJECT = "reject"  # the action of a refused field's own row (the record's other fields were written)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What happened to one input record of a write.

    ref: the caller's reference for the input (its source id), so a reject can be named.
    target_id: the id on the written side (None when the write failed and no id is known).
    error_code / message: the CRM's own code (Salesforce statusCode, HubSpot category) and text.
    existing_id: for a HubSpot duplicate-email conflict, the id of the contact that already exists; on a written
        result, the contact the input was linked to instead of created (its values were not written).
    permanent: the refusal comes from the record's data (sending it unchanged again cannot pass).
    refused_fields: ","-joined fields the CRM refused; on a written result, the record was written without them
        and the refusal (error_code, message, permanent) is theirs.
    """

    ref: str
    target_id: str | None
    ok: bool
    created: bool = False
    error_code: str | None = None
    message: str | None = None
    existing_id: str | None = None
    permanent: bool = False
    refused_fields: str | None = None

    @property
    def final(self) -> bool:
        """The CRM gave this record its answer (written or refused); otherwise it is to be sent again."""
        return self.ok or self.error_code not in NO_ANSWER_CODES


def existing_id_from_message(message: str | None) -> str | None:
    """HubSpot names the conflicting contact only in prose: 'Contact already exists. Existing ID: 123'."""
    if not message:
        return None
    match = _EXISTING_ID.search(message)
    return match.group(1) if match else None


def written_without(result: RecordResult, refusal: RecordResult) -> RecordResult:
    """`result` (the record sent again without the fields `refusal` named) carrying that refusal when it was written."""
    if not result.ok:
        return replace(result, message="; ".join(m for m in (refusal.message, result.message) if m) or None)
    return replace(
        result,
        error_code=refusal.error_code,
        message=refusal.message,
        permanent=refusal.permanent,
        refused_fields=refusal.refused_fields,
    )


def results_frame(results: Iterable[RecordResult], field_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Results as a frame, for staging and reports: one row per input, and for a record written without the
    fields the CRM refused, a second row, action "reject", holding that refusal alone (as reconcile's decisions
    reject a refused value alone); `field_names` renames those fields (CRM name -> the mapping's name).
    `action` is None on the other rows: the caller's.

    Text columns are object columns, so a missing id or message stays None (pandas 3 would infer `str` with NaN,
    which JSON and XCom refuse). A Parquet round trip brings `str` columns with NaN back.
    """
    import pandas as pd

    names = field_names or {}
    rows = []
    for result in results:
        if not (result.ok and result.refused_fields):
            rows.append({**asdict(result), "action": None})
            continue
        written = replace(result, error_code=None, message=None, permanent=False, refused_fields=None)
        refused = ",".join(names.get(name, name) for name in result.refused_fields.split(","))
        rows.append({**asdict(written), "action": None})
        rows.append({**asdict(replace(result, ok=False, created=False, refused_fields=refused)), "action": REJECT})
    columns = [*RecordResult.__dataclass_fields__, "action"]
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return frame.astype({"ok": bool, "created": bool, "permanent": bool})
