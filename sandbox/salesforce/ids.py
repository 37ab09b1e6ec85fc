"""Salesforce record ids: 15 case-sensitive characters plus the 3-character case-safe suffix.

The suffix encodes, for each 5-character chunk, which characters are upper case (bit i set when
character i is A-Z), mapped onto "A..Z0..5". Real clients may send either form; the sandbox keeps
the 18-character form and normalises what it is given.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?")

CONTACT_PREFIX = "003"
ACCOUNT_PREFIX = "001"
USER_PREFIX = "005"
ORG_PREFIX = "00D"
JOB_PREFIX = "750"
QUERY_LOCATOR_PREFIX = "01g"


def case_safe_suffix(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def to18(id15: str) -> str:
    return id15 + case_safe_suffix(id15)


@functools.lru_cache(maxsize=65536)
def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not an id at all."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return None
    return to18(value[:15])


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


class IdFactory:
    """Unique ids per key prefix; the "SB" pod marker makes sandbox ids easy to spot in logs."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            number = next(counter)
        return to18(f"{prefix}SB{_base62(number, 10)}")
