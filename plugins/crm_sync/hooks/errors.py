"""What a failed CRM call is, once classified: the shared error base of both CRMs' hooks.

Each CRM's module holds a pure `classify(exc)` from what its client raised to one of these (`sf_errors`,
`hs_errors`), so a hook's call path only calls, classifies and raises. `TransientError` is the one exception
the retry layer (`retry`) sends again; a `CrmApiError` is a permanent refusal of the call (a refusal of one
record ends as that record's result instead) and fails the task at once.
"""

from __future__ import annotations

from typing import ClassVar

from include.sync_logic.sides import Side


class TransientError(Exception):
    """A failure that may succeed when tried again; `retry_after` is the wait the server asked for."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class CrmApiError(Exception):
    """A permanent refusal of a CRM call: its HTTP status (0: no answer), the CRM's own code (Salesforce's
    errorCode, HubSpot's category), its message and the wait it asked for (`retry_after`).

    The message stays an attribute, out of the text: the CRMs echo values (emails) in it, and exception text
    ends up in task logs. `detail` is the value-free sentence the text carries (the fix, when one is known).
    """

    side: ClassVar[Side]

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str | None = None,
        *,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{self.side.label} API error: HTTP {status} {code}" + (f": {detail}" if detail else ""))
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
