"""Partitions of a large reconcile: every contact that reconcile could pair, or flag as a duplicate, together.

Reconcile relates contacts by link id (either side's link field) and by normalised email (within a side
and across). Those relations make a graph whose connected components are small (a pair, a handful of
duplicates); each component goes whole to one partition, picked by a stable hash, so reconciling the
partitions one at a time decides exactly what one reconcile of everything would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

def components(sf: pd.DataFrame, hs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The component label of each Salesforce row and each HubSpot row.

    ``sf`` and ``hs`` hold the identity columns of the canonical frame: ``sf_id``, ``hs_id`` (own id and
    link, per side) and ``email_key``. Labels are integers shared by the rows of one component.
    """
    s_node = "s:" + sf["sf_id"].astype("object").fillna("").astype(str)
    h_node = "h:" + hs["hs_id"].astype("object").fillna("").astype(str)
    edges = [
        (s_node, "e:" + sf["email_key"].astype("object")),
        (h_node, "e:" + hs["email_key"].astype("object")),
        (s_node, "h:" + sf["hs_id"].astype("object")),
        (h_node, "s:" + hs["sf_id"].astype("object")),
    ]
    left = pd.concat([a[b.notna().to_numpy()] for a, b in edges], ignore_index=True)
    right = pd.concat([b.dropna() for _, b in edges], ignore_index=True)
    codes, _ = pd.factorize(pd.concat([s_node, h_node, left, right], ignore_index=True))
    n_rows = len(s_node) + len(h_node)
    u = codes[n_rows : n_rows + len(left)]
    v = codes[n_rows + len(left) :]
    labels = _connected(u, v, int(codes.max()) + 1 if len(codes) else 0)
    rows = labels[codes[:n_rows]]
    return rows[: len(s_node)], rows[len(s_node) :]


def _connected(u: np.ndarray, v: np.ndarray, nodes: int) -> np.ndarray:
    """Smallest node number of each node's component: min-label propagation with pointer jumping."""
    labels = np.arange(nodes)
    while True:
        before = labels.copy()
        np.minimum.at(labels, u, labels[v])
        np.minimum.at(labels, v, labels[u])
        labels = labels[labels]
        if np.array_equal(labels, before):
            return labels


def partition_numbers(labels: np.ndarray, partitions: int) -> np.ndarray:
    """A stable partition number in [0, partitions) per component label."""
    if partitions <= 1:
        return np.zeros(len(labels), dtype=np.int32)
    hashed = pd.util.hash_array(labels.astype(np.int64))
    return (hashed % np.uint64(partitions)).astype(np.int32)
