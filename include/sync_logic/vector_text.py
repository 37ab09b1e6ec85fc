"""Column-wise text building (labels, joined reasons, JSON objects) through Arrow, never row by row.

Decisions for a few hundred thousand contacts need a reason and a JSON payload each; building them as
whole columns keeps reconcile in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def labels(codes: np.ndarray, names: Sequence[str]) -> pd.Series:
    """Text by code (-1: missing) decoded by Arrow; far cheaper than building n Python strings."""
    codes = np.asarray(codes)
    array = pa.array(codes, type=pa.int32(), mask=codes < 0)
    decoded = pa.DictionaryArray.from_arrays(array, pa.array(list(names), type=pa.large_string()))
    return pd.Series(pd.array(decoded.cast(pa.large_string()), dtype="str"))


def any_of(masks: Iterable[pd.Series | np.ndarray], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for mask in masks:
        out |= np.asarray(mask, dtype=bool)
    return out


def fragment(condition: pd.Series | np.ndarray, text: str | Callable[[], str | pd.Series]) -> pd.Series | None:
    """A text fragment where ``condition`` holds, NA elsewhere; None if it holds nowhere (a callable ``text``,
    one that builds a text per row, is then never called)."""
    mask = np.asarray(condition, dtype=bool)
    if not mask.any():
        return None
    made = text() if callable(text) else text
    if isinstance(made, str):
        return labels(np.where(mask, 0, -1), [made])
    return made.reset_index(drop=True).where(mask)


def join(parts: Iterable[pd.Series | None], n: int, sep: str = "; ") -> pd.Series:
    """Join the present fragments of each row with ``sep`` (NA where a row has none), in Arrow calls."""
    arrays = [pa.array(part.reset_index(drop=True), type=pa.large_string()) for part in parts if part is not None]
    if not arrays:
        return pd.Series(pd.NA, index=range(n), dtype="str")
    separator = pa.scalar(sep, pa.large_string())
    joined = arrays[0]
    for array in arrays[1:]:
        # (null_handling="skip" drops all-null rows in this pyarrow: join pairwise, then coalesce.)
        joined = pc.coalesce(pc.binary_join_element_wise(joined, array, separator), joined, array)
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    return pd.Series(pd.array(joined, dtype="str"))


def json_objects(entries: Iterable[tuple[str, np.ndarray, pd.Series]], n: int, blank: str = "null") -> pd.Series:
    """One JSON object per row from (key, include mask, values) entries; a missing value is ``blank``."""
    parts = []
    for key, include, values in entries:
        include = np.asarray(include, dtype=bool)
        if not include.any():
            continue
        encoded = json_strings(values.reset_index(drop=True)).fillna(blank)
        parts.append((json.dumps(key) + ":" + encoded).where(include))
    return "{" + join(parts, n, sep=",").fillna("") + "}"


def json_strings(values: pd.Series) -> pd.Series:
    """JSON string literals of a text Series; the rare values with control characters go through json."""
    text = values.astype("str")
    special = text.str.contains(r'["\\\x00-\x1f]', regex=True).fillna(False).astype(bool).to_numpy()
    if special.any():
        text = text.mask(special, text[special].map(lambda v: json.dumps(v, ensure_ascii=False)[1:-1]))
    return '"' + text + '"'
