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
    link, per side) and ``email_key``. Labels are integers shared by the rows of one component. Nodes are
    integer codes (Salesforce ids, then HubSpot ids, then emails), never new strings: a million contacts a
    side stay a few hundred MiB.
    """
    n_s, n_h = len(sf), len(hs)
    sf_codes, sf_domain = pd.factorize(pd.concat([sf["sf_id"], hs["sf_id"]], ignore_index=True))
    hs_codes, hs_domain = pd.factorize(pd.concat([hs["hs_id"], sf["hs_id"]], ignore_index=True))
    email_codes, _ = pd.factorize(pd.concat([sf["email_key"], hs["email_key"]], ignore_index=True))
    hs_base, email_base = len(sf_domain), len(sf_domain) + len(hs_domain)
    nodes = email_base + int(email_codes.max(initial=-1)) + 1
    sf_node, nodes = _own(sf_codes[:n_s], 0, nodes)
    hs_node, nodes = _own(hs_codes[:n_h], hs_base, nodes)
    pairs = [
        (sf_node, email_base, email_codes[:n_s]),
        (hs_node, email_base, email_codes[n_s:]),
        (sf_node, hs_base, hs_codes[n_h:]),  # a Salesforce row's link: a HubSpot id
        (hs_node, 0, sf_codes[n_s:]),  # a HubSpot row's link: a Salesforce id
    ]
    u = np.concatenate([node[code >= 0] for node, _, code in pairs])
    v = np.concatenate([base + code[code >= 0] for _, base, code in pairs])
    labels = _connected(u, v, nodes)
    return labels[sf_node], labels[hs_node]


def _own(codes: np.ndarray, base: int, nodes: int) -> tuple[np.ndarray, int]:
    """Rows' own node numbers; a row without an id gets a node of its own past ``nodes``."""
    missing = codes < 0
    own = base + codes
    own[missing] = nodes + np.arange(int(missing.sum()))
    return own, nodes + int(missing.sum())


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
