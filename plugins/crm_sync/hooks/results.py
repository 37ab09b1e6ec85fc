"""Per-record write results, one shape for both CRMs so operators report rejects uniformly."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
# Codes a hook gives an input the CRM never answered for (e.g. a bulk job's unprocessed rows): not a verdict.
NO_ANSWER_CODES = frozenset({"UNPROCESSED", "NO_RESULT"})


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What happened to one input record of a write.

    ref: the caller's reference for the input (its source id), so a reject can be named.
    target_id: the id on the written side (None when the write failed and no id is known).
    error_code / message: the CRM's own code (Salesforce statusCode, HubSpot category) and text.
    existing_id: for a HubSpot duplicate-email conflict, the id of the contact that already exists,
        so the caller can link instead of failing.
    """

    ref: str
    target_id: str | None
    ok: bool
    created: bool = False
    error_code: str | None = None
    message: str | None = None
    existing_id: str | None = None

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


def results_frame(results: Iterable[RecordResult]) -> pd.DataFrame:
    """Results as a frame (one row per input), for staging and reports.

    Text columns are object columns, so a missing id or message stays None (pandas 3 would infer `str` with NaN,
    which JSON and XCom refuse). A Parquet round trip brings `str` columns with NaN back.
    """
    import pandas as pd

    columns = list(RecordResult.__dataclass_fields__)
    frame = pd.DataFrame([asdict(result) for result in results], columns=columns, dtype=object)
    return frame.astype({"ok": bool, "created": bool})
