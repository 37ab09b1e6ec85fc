"""Reconciliation: from the staged frames of both CRMs to one decision per contact and target.

All of it is column arithmetic on pandas frames (no loop over rows), so a full resync of a few
hundred thousand contacts decides in seconds. The rules are documented in README.md beside this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.sync_logic.mapping import (
    BOTH,
    DIRECTIONS,
    HUBSPOT,
    HUBSPOT_TO_SALESFORCE,
    SALESFORCE,
    SALESFORCE_TO_HUBSPOT,
    FieldMapping,
    MappingConfig,
    other_side,
)
from include.sync_logic.normalize import apply_transforms, as_text, email_key, is_in, is_valid_email

DECISION_COLUMNS = [
    "target",
    "action",
    "source_system",
    "source_id",
    "target_id",
    "payload",
    "changed_fields",
    "reason",
    "conflict",
    "matched_by",
]
ACTIONS = ["create", "update", "delete", "skip", "reject"]
WRITE_ACTIONS = ("create", "update", "delete")
# Own id column and link column (the counterpart's id) of each side in the canonical frame.
OWN_ID = {SALESFORCE: "sf_id", HUBSPOT: "hs_id"}
PREFIX = {SALESFORCE: "s.", HUBSPOT: "h."}


@dataclass(frozen=True)
class CounterpartRequest:
    """What to fetch from each side because the window did not bring the counterpart.

    ``hubspot_by_salesforce_id``: HubSpot contacts whose link property holds one of these Salesforce
    Ids (a batch read with ``idProperty``); ``salesforce_by_hubspot_id``: Salesforce contacts whose
    link field holds one of these HubSpot ids (a SOQL ``IN``).
    """

    hubspot_ids: list[str]
    hubspot_emails: list[str]
    salesforce_ids: list[str]
    salesforce_emails: list[str]
    hubspot_by_salesforce_id: list[str]
    salesforce_by_hubspot_id: list[str]

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.hubspot_ids,
                self.hubspot_emails,
                self.salesforce_ids,
                self.salesforce_emails,
                self.hubspot_by_salesforce_id,
                self.salesforce_by_hubspot_id,
            )
        )


def to_canonical(frame: pd.DataFrame, side: str, mapping: MappingConfig) -> pd.DataFrame:
    """One row per contact: the mapped fields by canonical name (normalised) plus identity columns.

    Identity columns: ``sf_id``, ``hs_id`` (own id and link, whichever side), ``modified_at``
    (Salesforce LastModifiedDate, else SystemModstamp; HubSpot lastmodifieddate), ``deleted``,
    ``email_key``. A ``default_if_blank`` placeholder reads as blank on both sides, so a LastName
    filled with "[not provided]" equals a blank HubSpot lastname.
    """
    frame = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for item in mapping.fields:
        value = apply_transforms(_column(frame, item.on(side)), item, mapping.phone)
        if item.default_if_blank:
            placeholders = apply_transforms(pd.Series(list(item.default_if_blank.values())), item, mapping.phone)
            value = value.mask(is_in(value, placeholders))
        out[item.name] = value
    if side == SALESFORCE:
        own, link = _ids(_column(frame, "Id")), _ids(_column(frame, mapping.link.salesforce))
        modified = _timestamps(_column(frame, "LastModifiedDate")).fillna(_timestamps(_column(frame, "SystemModstamp")))
        deleted = _column(frame, "IsDeleted")
        out["sf_id"], out["hs_id"] = own, link
    elif side == HUBSPOT:
        own, link = _ids(_column(frame, "id")), _ids(_column(frame, mapping.link.hubspot))
        modified = _timestamps(_column(frame, "lastmodifieddate"))
        deleted = _column(frame, "archived")
        out["sf_id"], out["hs_id"] = link, own
    else:
        raise ValueError(f"side must be {SALESFORCE} or {HUBSPOT}, not {side!r}")
    out["modified_at"] = modified
    out["deleted"] = deleted.fillna(False).astype(bool)
    out["email_key"] = email_key(_column(frame, mapping.match_field.on(side)))
    return pd.DataFrame(out, index=frame.index)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(pd.NA, index=frame.index, dtype="object")


def _ids(values: pd.Series) -> pd.Series:
    return as_text(values).str.strip()


def _timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")


def counterpart_requests(
    sf_changed: pd.DataFrame, hs_changed: pd.DataFrame, mapping: MappingConfig
) -> CounterpartRequest:
    """Ids and emails to fetch so every changed contact meets its counterpart (link first, else email)."""
    s = to_canonical(sf_changed, SALESFORCE, mapping)
    h = to_canonical(hs_changed, HUBSPOT, mapping)
    return CounterpartRequest(
        hubspot_ids=_wanted(s["hs_id"], h["hs_id"]),
        hubspot_emails=_wanted(s["email_key"].where(s["hs_id"].isna() & ~s["deleted"]), h["email_key"]),
        salesforce_ids=_wanted(h["sf_id"], s["sf_id"]),
        salesforce_emails=_wanted(h["email_key"].where(h["sf_id"].isna() & ~h["deleted"]), s["email_key"]),
        hubspot_by_salesforce_id=_wanted(s["sf_id"].where(s["hs_id"].isna()), h["sf_id"]),
        salesforce_by_hubspot_id=_wanted(h["hs_id"].where(h["sf_id"].isna()), s["hs_id"]),
    )


def _wanted(keys: pd.Series, have: pd.Series) -> list[str]:
    keys = keys.dropna()
    return sorted(set(keys[~is_in(keys, have)]))


def reconcile(
    sf: pd.DataFrame,
    hs: pd.DataFrame,
    *,
    sf_changed_ids: Iterable[str],
    hs_changed_ids: Iterable[str],
    mapping: MappingConfig,
    direction: str = BOTH,
) -> pd.DataFrame:
    """Decide, per contact and target CRM, what to write (columns: ``DECISION_COLUMNS``).

    ``sf``/``hs`` are raw staged frames (window changes plus fetched counterparts); the changed ids
    say which rows changed in the window. Only groups with a changed row get decisions.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    s = _prepare(to_canonical(sf, SALESFORCE, mapping), SALESFORCE, sf_changed_ids)
    h = _prepare(to_canonical(hs, HUBSPOT, mapping), HUBSPOT, hs_changed_ids)
    links = _link_pairs(s, h)
    s_dups = _same_side_duplicates(s, SALESFORCE, links["s"])
    h_dups = _same_side_duplicates(h, HUBSPOT, links["h"])
    pairs = pd.concat([links, _email_pairs(s, h, links, s_dups, h_dups)], ignore_index=True)
    pairs = pairs.astype({"s": "int64", "h": "int64"})
    s_dups = _add_cross_duplicates(s_dups, s, SALESFORCE, h, pairs)
    h_dups = _add_cross_duplicates(h_dups, h, HUBSPOT, s, pairs)
    groups = _groups(s, h, pairs, s_dups, h_dups)
    active = groups["s.changed"] | groups["h.changed"]
    targets = _targets(direction)
    parts = [_decide(groups[active], target, mapping) for target in targets]
    active_s = set(groups.loc[active & (groups["s"] >= 0), "s"])
    active_h = set(groups.loc[active & (groups["h"] >= 0), "h"])
    if HUBSPOT in targets:
        parts.append(_duplicate_rejects(s, SALESFORCE, s_dups, active_s))
    if SALESFORCE in targets:
        parts.append(_duplicate_rejects(h, HUBSPOT, h_dups, active_h))
    parts = [part for part in parts if len(part)]
    if not parts:
        return _empty_decisions()
    decisions = pd.concat(parts, ignore_index=True)
    decisions = decisions.sort_values(["target", "source_system", "source_id"], kind="stable")
    return decisions.reset_index(drop=True)[DECISION_COLUMNS]


def _targets(direction: str) -> list[str]:
    if direction == SALESFORCE_TO_HUBSPOT:
        return [HUBSPOT]
    if direction == HUBSPOT_TO_SALESFORCE:
        return [SALESFORCE]
    return [HUBSPOT, SALESFORCE]


def _empty_decisions() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="str") for name in DECISION_COLUMNS})
    frame["conflict"] = frame["conflict"].astype(bool)
    return frame


def _prepare(canonical: pd.DataFrame, side: str, changed_ids: Iterable[str]) -> pd.DataFrame:
    """Drop rows without an id; keep one row per id (the latest); flag the rows changed in the window."""
    own = OWN_ID[side]
    frame = canonical[canonical[own].notna()]
    frame = frame.sort_values([own, "modified_at"], ascending=[True, False], na_position="last")
    frame = frame.drop_duplicates(own).reset_index(drop=True)
    frame["changed"] = is_in(frame[own], changed_ids)
    return frame


def _link_pairs(s: pd.DataFrame, h: pd.DataFrame) -> pd.DataFrame:
    """Pairs joined by a link on either side; mutual links first, then one-to-one by position."""
    s_pos = s[["sf_id", "hs_id"]].reset_index(names="s")
    h_pos = h[["hs_id", "sf_id"]].reset_index(names="h")
    by_s = s_pos.dropna(subset="hs_id").merge(h_pos[["h", "hs_id"]], on="hs_id")[["s", "h"]]
    by_h = h_pos.dropna(subset="sf_id").merge(s_pos[["s", "sf_id"]], on="sf_id")[["s", "h"]]
    both = pd.concat([by_s, by_h], ignore_index=True)
    strength = both.groupby(["s", "h"]).size().rename("strength").reset_index()
    strength = strength.sort_values(["strength", "s", "h"], ascending=[False, True, True])
    pairs = strength.drop_duplicates("s").drop_duplicates("h")[["s", "h"]]
    return pairs.assign(matched_by="link").reset_index(drop=True)


def _same_side_duplicates(frame: pd.DataFrame, side: str, paired: pd.Series) -> pd.DataFrame:
    """Live rows sharing an email key: one primary (linked, else earliest modified, else smallest id).

    The other rows that have no link pair are duplicates. Returns ``dup_of`` (primary id) and
    ``dup_pos`` (primary position), indexed by the duplicates' positions.
    """
    own = OWN_ID[side]
    live = frame[~frame["deleted"] & frame["email_key"].notna()][["email_key", "modified_at", own]]
    live = live.assign(paired=live.index.isin(paired), pos=live.index)
    ordered = live.sort_values(
        ["email_key", "paired", "modified_at", own],
        ascending=[True, False, True, True],
        na_position="last",
        kind="stable",
    )
    grouped = ordered.groupby("email_key", sort=False)
    ordered = ordered.assign(
        dup_of=grouped[own].transform("first"),
        dup_pos=grouped["pos"].transform("first"),
    )
    dups = ordered[ordered["email_key"].duplicated() & ~ordered["paired"]]
    return dups[["dup_of", "dup_pos"]]


def _email_pairs(
    s: pd.DataFrame, h: pd.DataFrame, links: pd.DataFrame, s_dups: pd.DataFrame, h_dups: pd.DataFrame
) -> pd.DataFrame:
    """Pairs of unlinked live rows with one email key (unique per side after the duplicate rule)."""

    def free(frame: pd.DataFrame, taken: pd.Series, dups: pd.DataFrame, name: str) -> pd.DataFrame:
        keep = ~frame["deleted"] & frame["email_key"].notna()
        keep &= ~frame.index.isin(taken) & ~frame.index.isin(dups.index)
        return frame.loc[keep, ["email_key"]].reset_index(names=name)

    pairs = free(s, links["s"], s_dups, "s").merge(free(h, links["h"], h_dups, "h"), on="email_key")
    pairs = pairs.drop_duplicates("s").drop_duplicates("h")
    return pairs[["s", "h"]].assign(matched_by="email")


def _add_cross_duplicates(
    dups: pd.DataFrame, frame: pd.DataFrame, side: str, other: pd.DataFrame, pairs: pd.DataFrame
) -> pd.DataFrame:
    """Unpaired rows whose email is held by an already paired contact on the other side.

    Creating them would collide with that contact, so they are duplicates of its partner.
    """
    mine, theirs = ("s", "h") if side == SALESFORCE else ("h", "s")
    own = OWN_ID[side]
    partner = pairs[[mine, theirs]].assign(email_key=other["email_key"].to_numpy()[pairs[theirs].to_numpy()])
    partner = partner.dropna(subset="email_key").sort_values(mine).drop_duplicates("email_key")
    partner = partner.assign(dup_of=frame[own].to_numpy()[partner[mine].to_numpy()], dup_pos=partner[mine])
    keep = ~frame["deleted"] & frame["email_key"].notna()
    keep &= ~frame.index.isin(pairs[mine]) & ~frame.index.isin(dups.index)
    loose = frame.loc[keep, ["email_key"]].reset_index(names="pos")
    found = loose.merge(partner[["email_key", "dup_of", "dup_pos"]], on="email_key").set_index("pos")
    if found.empty:
        return dups
    return pd.concat([dups, found[["dup_of", "dup_pos"]]])


def _groups(
    s: pd.DataFrame, h: pd.DataFrame, pairs: pd.DataFrame, s_dups: pd.DataFrame, h_dups: pd.DataFrame
) -> pd.DataFrame:
    """One wide row per pair or lone contact: ``s.<col>`` and ``h.<col>`` columns, -1 for no row."""
    s_alone = s.index[~s.index.isin(pairs["s"]) & ~s.index.isin(s_dups.index)]
    h_alone = h.index[~h.index.isin(pairs["h"]) & ~h.index.isin(h_dups.index)]
    keys = pd.concat(
        [
            pairs[["s", "h", "matched_by"]],
            pd.DataFrame({"s": s_alone, "h": -1, "matched_by": None}),
            pd.DataFrame({"s": -1, "h": h_alone, "matched_by": None}),
        ],
        ignore_index=True,
    ).astype({"s": "int64", "h": "int64"})
    wide = keys.merge(s.add_prefix("s."), left_on="s", right_index=True, how="left")
    wide = wide.merge(h.add_prefix("h."), left_on="h", right_index=True, how="left").reset_index(drop=True)
    for prefix, key in (("s.", "s"), ("h.", "h")):
        wide[prefix + "present"] = wide[key] >= 0
        for flag in ("changed", "deleted"):
            wide[prefix + flag] = wide[prefix + flag].fillna(False).astype(bool)
    return wide


def _decide(groups: pd.DataFrame, target: str, mapping: MappingConfig) -> pd.DataFrame:
    """The decision for ``target`` of every group holding a contact on the other (source) side."""
    source = other_side(target)
    src, dst = PREFIX[source], PREFIX[target]
    g = groups[groups[src + "present"]].reset_index(drop=True)
    n = len(g)
    src_del, dst_del = g[src + "deleted"], g[dst + "deleted"]
    dst_present = g[dst + "present"]
    src_chg, dst_chg = g[src + "changed"], g[dst + "changed"]
    live_pair = ~src_del & dst_present & ~dst_del
    create = ~src_del & ~dst_present

    src_newer = _source_newer(g, source, src_chg, dst_chg)
    fields: list[tuple[FieldMapping, pd.Series, pd.Series]] = []  # (field, included, value to write)
    rejects: list[pd.Series | None] = []
    conflicts: list[pd.Series | None] = []
    for item in mapping.fields:
        if not item.writes_to(target):
            continue
        value, theirs = g[src + item.name], g[dst + item.name]
        equal = _equal(value, theirs)
        wins = _source_wins(item, mapping.conflict_rule(item), source, value, theirs, src_chg, src_newer)
        include = (live_pair & ~equal & wins) | (create & value.notna())
        default = item.default_if_blank.get(target)
        if default is not None:
            value = value.fillna(default)
            include |= create
        elif target in item.required:
            missing = f"missing required {item.on(target)}"
            rejects.append(_fragment((include | create) & value.isna(), lambda text=missing: text))
        fields.append((item, include, value))
        rejects.extend(_validate(item, target, include, value))
        if item.direction == BOTH:
            clash = include & live_pair & src_chg & dst_chg
            rule = mapping.conflict_rule(item)
            conflicts.append(_fragment(clash, lambda f=item, r=rule: _conflict_text(f, r, source, g)))

    own_src = g[src + OWN_ID[source]]
    link_value = own_src
    link_key = mapping.link.on(target)
    include_link = (live_pair & ~_equal(g[dst + OWN_ID[source]], own_src)) | create
    any_field = _any((inc for _, inc, _ in fields), n)
    rejects = [r for r in rejects if r is not None]
    conflicts = [c for c in conflicts if c is not None]
    rejected = _any((r.notna() for r in rejects), n)
    conflict_flag = _any((c.notna() for c in conflicts), n)
    propagate = mapping.propagate_deletes

    code = np.select(
        [
            create & rejected,
            create,
            src_del & dst_present & ~dst_del & src_chg & propagate,
            live_pair & rejected,
            live_pair & (any_field | include_link),
        ],
        [ACTIONS.index(a) for a in ("reject", "create", "delete", "reject", "update")],
        default=ACTIONS.index("skip"),
    )
    is_create, is_update = code == ACTIONS.index("create"), code == ACTIONS.index("update")
    reasons = [
        "deleted on both sides",
        f"{source} contact deleted before this window; not propagated",
        f"{source} contact deleted; delete propagation off",
        f"{source} contact deleted; no {target} counterpart",
        f"{target} counterpart deleted",
        f"{target} values kept",
        "already equal",
        f"new in {source}",
        f"{source} contact deleted",
        f"{source} changed",
        "link missing",
    ]
    differs = _any((~_equal(g[src + f.name], g[dst + f.name]) for f, _, _ in fields), n)
    reason_code = np.select(
        [
            is_create,
            code == ACTIONS.index("delete"),
            is_update & any_field,
            is_update,
            src_del & dst_present & dst_del,
            src_del & dst_present & ~src_chg,
            src_del & dst_present,
            src_del,
            dst_del,
            live_pair & differs,
        ],
        [7, 8, 9, 10, 0, 1, 2, 3, 4, 5],
        default=6,
    )
    reason = _labels(reason_code, reasons)
    if rejects:
        reason = reason.mask(code == ACTIONS.index("reject"), _join(rejects, n))
    if conflicts:
        reason = reason.mask(is_update & conflict_flag, _join(conflicts, n))

    writes = pd.Series(is_create | is_update)
    payload_parts = [(item.on(target), inc & writes, val, target) for item, inc, val in fields]
    payload_parts.append((link_key, include_link & writes, link_value, target))
    names = [(item.name, inc) for item, inc, _ in fields] + [("link", include_link & ~create)]
    return pd.DataFrame(
        {
            "target": target,
            "action": _labels(code, ACTIONS),
            "source_system": source,
            "source_id": own_src,
            "target_id": g[dst + OWN_ID[target]].where(dst_present),
            "payload": _payload(payload_parts, n),
            "changed_fields": _names(names, n, code != ACTIONS.index("skip")),
            "reason": reason,
            "conflict": (conflict_flag & is_update).to_numpy(),
            "matched_by": g["matched_by"].astype("str"),
        }
    )


def _source_newer(g: pd.DataFrame, source: str, src_chg: pd.Series, dst_chg: pd.Series) -> pd.Series:
    """For ``latest``: the source's change wins (only it changed, or it is later; Salesforce wins ties)."""
    src_at, dst_at = g[PREFIX[source] + "modified_at"], g[PREFIX[other_side(source)] + "modified_at"]
    later = (src_at > dst_at).fillna(False).astype(bool)
    if source == SALESFORCE:
        later |= (src_at == dst_at).fillna(False).astype(bool)
    return (src_chg & ~dst_chg) | (src_chg & dst_chg & later)


def _source_wins(
    item: FieldMapping,
    rule: str,
    source: str,
    value: pd.Series,
    theirs: pd.Series,
    src_chg: pd.Series,
    src_newer: pd.Series,
) -> pd.Series:
    """Where the source's value of this field is the one both sides should hold."""
    index = value.index
    if item.direction != BOTH:
        # One-way: only the from side's values flow; a blank one clears only under its explicit rule,
        # so a contact created from HubSpot keeps its company when Salesforce has no Account yet.
        if not item.writes_to(other_side(source)):
            return pd.Series(False, index=index)
        return pd.Series(True, index=index) if item.conflict == source else value.notna()
    if rule == "latest":
        return src_newer
    if rule in (SALESFORCE, HUBSPOT):
        return pd.Series(rule == source, index=index)
    preferred = SALESFORCE if rule == "prefer_salesforce_unless_blank" else HUBSPOT
    return value.notna() if preferred == source else theirs.isna()


def _conflict_text(item: FieldMapping, rule: str, source: str, g: pd.DataFrame) -> str | pd.Series:
    if rule != "latest":
        return f"conflict {item.name}: {source} wins by rule {rule}"
    src_at = g[PREFIX[source] + "modified_at"]
    dst_at = g[PREFIX[other_side(source)] + "modified_at"]
    tie = (src_at == dst_at).fillna(False).astype(bool).to_numpy()
    newer = pd.Series(f"conflict {item.name}: {source} newer", index=g.index, dtype="str")
    return newer.mask(tie, f"conflict {item.name}: {source} wins tie")


def _validate(item: FieldMapping, target: str, include: pd.Series, value: pd.Series) -> list[pd.Series | None]:
    """Reasons the target would refuse the values about to be written (NA where fine)."""
    out = []
    if item.validate == "email":
        out.append(_fragment(include & ~is_valid_email(value), lambda: "invalid email"))
    limit = item.max_length.get(target)
    if limit is not None:
        length = value.str.len()
        too_long = include & (length > limit).fillna(False).astype(bool)
        name = item.on(target)
        out.append(
            _fragment(too_long, lambda: f"{name} too long (" + length.astype("Int64").astype("str") + f" > {limit})")
        )
    return out


def _equal(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b).fillna(False).astype(bool) | (a.isna() & b.isna())


def _fragment(condition: pd.Series, make_text: Callable[[], str | pd.Series]) -> pd.Series | None:
    """A reason fragment where ``condition`` holds, NA elsewhere; None (text never built) if it holds nowhere."""
    mask = condition.to_numpy(dtype=bool)
    if not mask.any():
        return None
    text = make_text()
    if isinstance(text, str):
        return _labels(np.where(mask, 0, -1), [text])
    return text.where(mask)


def _labels(codes: np.ndarray, labels: list[str]) -> pd.Series:
    """Text by code (-1: missing) decoded by Arrow; far cheaper than building n Python strings."""
    codes = pa.array(codes, type=pa.int32(), mask=codes < 0)
    decoded = pa.DictionaryArray.from_arrays(codes, pa.array(labels, type=pa.large_string()))
    return pd.Series(pd.array(decoded.cast(pa.large_string()), dtype="str"))


def _any(masks: Iterable[pd.Series], n: int) -> pd.Series:
    out = np.zeros(n, dtype=bool)
    for mask in masks:
        out |= mask.to_numpy(dtype=bool)
    return pd.Series(out)


def _join(parts: list[pd.Series | None], n: int, sep: str = "; ") -> pd.Series:
    """Join the present fragments of each row with ``sep`` (NA where a row has none), in one Arrow call."""
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


def _names(names: list[tuple[str, pd.Series]], n: int, shown: np.ndarray) -> pd.Series:
    """Comma-joined names of the fields a decision writes (or would have: rejects); "" elsewhere."""
    parts = [_fragment(inc.reset_index(drop=True), lambda name=name: name) for name, inc in names]
    joined = _join(parts, n, sep=",").fillna("")
    return joined.where(shown, "")


def _payload(parts: list[tuple[str, pd.Series, pd.Series, str]], n: int) -> pd.Series:
    """JSON objects built column-wise: key -> value for the included entries of each row.

    A blank value clears the field: null for Salesforce, "" for HubSpot (its API clears with "").
    """
    entries = []
    for key, include, value, target in parts:
        if not include.any():
            continue
        blank = "null" if target == SALESFORCE else '""'
        encoded = _json_strings(value.reset_index(drop=True)).fillna(blank)
        entries.append((json.dumps(key) + ":" + encoded).where(include.to_numpy()))
    return "{" + _join(entries, n, sep=",").fillna("") + "}"


def _json_strings(values: pd.Series) -> pd.Series:
    """JSON string literals of a text Series; the rare values with control characters go through json."""
    text = values.astype("str")
    special = text.str.contains(r'["\\\x00-\x1f]', regex=True).fillna(False).astype(bool).to_numpy()
    if special.any():
        text = text.mask(special, text[special].map(lambda v: json.dumps(v, ensure_ascii=False)[1:-1]))
    return '"' + text + '"'


def _duplicate_rejects(frame: pd.DataFrame, side: str, dups: pd.DataFrame, active: set[int]) -> pd.DataFrame:
    """Rejects naming each reported duplicate and its primary; reported when it or its primary's group changed."""
    own = OWN_ID[side]
    if dups.empty:
        return _empty_decisions()
    changed = frame["changed"].to_numpy()[dups.index.to_numpy()]
    report = dups[changed | dups["dup_pos"].isin(active).to_numpy()]
    rows = frame.loc[report.index]
    return pd.DataFrame(
        {
            "target": other_side(side),
            "action": "reject",
            "source_system": side,
            "source_id": rows[own].to_numpy(),
            "target_id": pd.Series(pd.NA, index=range(len(rows)), dtype="str"),
            "payload": "{}",
            "changed_fields": "",
            "reason": ("duplicate of " + report["dup_of"].astype("str")).to_numpy(),
            "conflict": False,
            "matched_by": pd.Series(pd.NA, index=range(len(rows)), dtype="str"),
        }
    )
