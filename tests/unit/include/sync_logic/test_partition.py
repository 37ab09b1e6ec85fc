"""Partitions keep every pair and every duplicate group whole."""

from __future__ import annotations

import pandas as pd

from include.sync_logic.partition import components, partition_numbers


def identity(rows: list[tuple[str, str | None, str | None]], own: str) -> pd.DataFrame:
    other = "hs_id" if own == "sf_id" else "sf_id"
    return pd.DataFrame(rows, columns=[own, other, "email_key"])


def test_links_and_emails_join_components_across_and_within_sides():
    sf = identity(
        [
            ("003A", "101", "ann@x.com"),  # linked to 101
            ("003B", None, "bo@x.com"),  # email pair with 102
            ("003C", None, "cy@x.com"),  # same email as 003D: one group
            ("003D", None, "cy@x.com"),
            ("003E", None, None),  # alone
            ("003F", "104", "fay@x.com"),  # linked by its own field; 104 also carries 003G's email
            ("003G", None, "gus@x.com"),
        ],
        "sf_id",
    )
    hs = identity(
        [
            ("101", "003A", "other@x.com"),
            ("102", None, "bo@x.com"),
            ("103", None, None),
            ("104", None, "gus@x.com"),
        ],
        "hs_id",
    )
    s, h = components(sf, hs)
    assert s[0] == h[0] and s[1] == h[1] and s[2] == s[3]
    assert s[5] == h[3] == s[6]  # 003F -link- 104 -email- 003G
    assert len({s[0], s[1], s[2], s[4], s[5], h[2]}) == 6


def test_partition_numbers_are_stable_and_in_range():
    labels = pd.Series(range(10_000)).to_numpy()
    numbers = partition_numbers(labels, 7)
    assert numbers.min() == 0 and numbers.max() == 6
    assert (numbers == partition_numbers(labels, 7)).all()
    assert pd.Series(numbers).value_counts().min() > 10_000 / 7 * 0.8  # spread evenly
    assert (partition_numbers(labels, 1) == 0).all()
