"""Benchmark: vectorised reconcile against a straightforward per-row Python version of the same rules.

Generates N contacts per side (overlapping people, linked and unlinked pairs, one-sided changes,
conflicts, bad emails, too-long names, duplicates, deletes), then runs each implementation in its
own child process (so each peak memory is its own) on the same staged Parquet files, prints
rows/second, the ratio and peak memory, and checks both reached the same decisions.

    .venv/bin/python benchmarks/bench_reconcile.py [--contacts 200000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.sync_logic.mapping import (  # noqa: E402
    BOTH,
    HUBSPOT,
    SALESFORCE,
    MappingConfig,
    load_mapping,
    other_side,
)
from include.sync_logic.normalize import EMAIL_PATTERN  # noqa: E402
from include.sync_logic.reconcile import reconcile  # noqa: E402

MAPPING_PATH = ROOT / "include" / "mappings" / "contacts.yaml"
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")
FIRST = np.array(["Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo", "Ned"])
LAST = np.array(["Lee", "Park", "Smith", "Okafor", "Nguyen", "Garcia", "Müller", "O'Neil", "Rossi", "Kim"])
TITLES = np.array(["CEO", "CTO", "Engineer", "Buyer", "Head of Ops", None], dtype=object)
COMPANIES = np.array(["Acme", "Globex", "Initech", "Umbrella", "Hooli", None], dtype=object)


# --------------------------------------------------------------------------- data


def generate(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged frames of both sides, shaped as the extracts write them (README: staged frames)."""
    rng = np.random.default_rng(seed)
    linked, unlinked = int(n * 0.6), int(n * 0.1)
    overlap = linked + unlinked
    idx = np.arange(n)
    sf_ids = np.char.add("003", np.char.zfill(idx.astype(str), 15))
    hs_ids = (10_000_000 + idx).astype(str)

    emails = np.char.add(np.char.add("person", idx.astype(str)), "@example.com").astype(object)
    first = FIRST[rng.integers(0, len(FIRST), n)].astype(object)
    last = LAST[rng.integers(0, len(LAST), n)].astype(object)
    title = TITLES[rng.integers(0, len(TITLES), n)]
    company = COMPANIES[rng.integers(0, len(COMPANIES), n)]
    digits = rng.integers(2_000_000_000, 9_999_999_999, n).astype(str)
    sf_phone = np.array([f"({d[:3]}) {d[3:6]}-{d[6:]}" for d in digits], dtype=object)
    hs_phone = np.char.add("+1", digits).astype(object)
    sf_time = T0 + pd.to_timedelta(rng.integers(0, 15 * 60, n), unit="s")
    hs_time = T0 + pd.to_timedelta(rng.integers(0, 15 * 60, n), unit="s")

    sf = pd.DataFrame(
        {
            "Id": sf_ids,
            "Email": emails.copy(),
            "FirstName": first.copy(),
            "LastName": last.copy(),
            "Phone": sf_phone,
            "MobilePhone": None,
            "Title": title.copy(),
            "Account.Name": company,
            "HubSpot_Contact_Id__c": np.where(idx < linked, hs_ids, None),
            "SystemModstamp": sf_time,
            "LastModifiedDate": sf_time,
            "IsDeleted": False,
        }
    )
    hs_emails = emails.copy()
    hs_emails[overlap:] = np.char.add(np.char.add("hs", idx[overlap:].astype(str)), "@example.com")
    hs = pd.DataFrame(
        {
            "id": hs_ids,
            "email": np.where(rng.random(n) < 0.3, np.char.upper(hs_emails.astype(str)), hs_emails),
            "firstname": first.copy(),
            "lastname": last.copy(),
            "phone": hs_phone,
            "mobilephone": "",
            "jobtitle": np.where(pd.isna(title), "", title),
            "company": np.where(pd.isna(company), "", company),
            "salesforce_contact_id": np.where(idx < linked * 0.95, sf_ids, None),
            "lastmodifieddate": hs_time,
            "archived": False,
        }
    )
    pair = idx < overlap
    roll = rng.random(n)
    sf.loc[pair & (roll < 0.20), "FirstName"] = "Changed"  # Salesforce-side edits
    hs.loc[pair & (roll >= 0.20) & (roll < 0.40), "jobtitle"] = "Director"  # HubSpot-side edits
    both = pair & (roll >= 0.40) & (roll < 0.45)  # conflicts: both sides edited the last name
    sf.loc[both, "LastName"] = "SfName"
    hs.loc[both, "lastname"] = "HsName"
    rest = ~pair
    sf.loc[rest & (roll < 0.01), "Email"] = "broken@"  # invalid emails
    hs.loc[rest & (roll >= 0.01) & (roll < 0.015), "lastname"] = "x" * 95  # too long for Salesforce
    dup = np.flatnonzero(rest & (roll >= 0.02) & (roll < 0.025))
    sf.loc[dup, "Email"] = sf.loc[dup - 1, "Email"].to_numpy()  # duplicates inside Salesforce
    sf.loc[(idx < linked) & (roll >= 0.9) & (roll < 0.905), "IsDeleted"] = True
    hs.loc[rest & (roll >= 0.5) & (roll < 0.7), "lastname"] = ""  # HubSpot contacts without a last name
    return sf, hs


# --------------------------------------------------------------------------- per-row reference

_PHONE_CHARS = re.compile(r"[0-9+ ().\-/]+")
_EMAIL = re.compile(EMAIL_PATTERN)
_TRUNK_IN_BRACKETS = re.compile(r"^(\+[0-9]{1,3})[ ]*\(0\)")
_NOT_DIGIT = re.compile(r"[^0-9]")


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    return text if text.strip() else None


def _phone(text: str, mapping: MappingConfig) -> str:
    cfg = mapping.phone
    digits = _NOT_DIGIT.sub("", _TRUNK_IN_BRACKETS.sub(r"\1", text))
    cc, national, trunk = cfg.default_country_code, cfg.national_number_length, cfg.trunk_prefix
    if text.startswith("+"):
        candidate = "+" + digits
    elif text.startswith("00"):
        candidate = "+" + digits[2:]
    elif len(digits) == national:
        candidate = "+" + cc + digits
    elif len(digits) == len(cc) + national and digits.startswith(cc):
        candidate = "+" + digits
    elif trunk and digits.startswith(trunk) and len(digits) == len(trunk) + national:
        candidate = "+" + cc + digits[len(trunk) :]
    else:
        return text
    ok = _PHONE_CHARS.fullmatch(text) and 8 <= len(candidate) - 1 <= 15
    return candidate if ok else text


def _normalise(value: object, item, mapping: MappingConfig) -> str | None:
    text = _text(value)
    for name in item.transforms:
        if text is None:
            return None
        if name == "strip":
            text = text.strip()
        elif name == "lowercase":
            text = text.lower()
        elif name == "title_case":
            text = text.title()
        elif name == "phone_e164":
            text = _phone(text.strip(), mapping)
    if text is not None and item.truncate_length is not None:
        text = text[: item.truncate_length]
    text = _text(text)
    if text is not None and text in item.default_if_blank.values():
        return None
    return text


def _canonical_row(rec: dict, side: str, mapping: MappingConfig) -> dict:
    row = {f.name: _normalise(rec.get(f.on(side)), f, mapping) for f in mapping.fields}
    if side == SALESFORCE:
        own, link = _text(rec.get("Id")), _text(rec.get(mapping.link.salesforce))
        row.update(sf_id=own, hs_id=link, deleted=bool(rec.get("IsDeleted")))
        row["modified_at"] = rec.get("LastModifiedDate") or rec.get("SystemModstamp")
    else:
        own, link = _text(rec.get("id")), _text(rec.get(mapping.link.hubspot))
        row.update(hs_id=own, sf_id=link, deleted=bool(rec.get("archived")))
        row["modified_at"] = rec.get("lastmodifieddate")
    row["sf_id"] = row["sf_id"] and row["sf_id"].strip()
    row["hs_id"] = row["hs_id"] and row["hs_id"].strip()
    email = _text(rec.get(mapping.match_field.on(side)))
    row["email_key"] = email.strip().lower() if email else None
    return row


def rowwise_reconcile(sf_records, hs_records, sf_changed, hs_changed, mapping: MappingConfig) -> list[tuple]:
    """The same decisions, one contact at a time: returns (target, action, source_id, reason) tuples."""
    sides = {}
    for side, records, changed in ((SALESFORCE, sf_records, sf_changed), (HUBSPOT, hs_records, hs_changed)):
        own = "sf_id" if side == SALESFORCE else "hs_id"
        latest: dict[str, dict] = {}
        for rec in records:
            row = _canonical_row(rec, side, mapping)
            if row[own] is None:
                continue
            kept = latest.get(row[own])
            if kept is None or (row["modified_at"] is not None and kept["modified_at"] < row["modified_at"]):
                latest[row[own]] = row
        rows = [latest[k] for k in sorted(latest)]
        for row in rows:
            row["changed"] = row[own] in changed
        sides[side] = rows
    S, H = sides[SALESFORCE], sides[HUBSPOT]
    s_pos = {r["sf_id"]: i for i, r in enumerate(S)}
    h_pos = {r["hs_id"]: i for i, r in enumerate(H)}

    strength: Counter = Counter()
    for i, r in enumerate(S):
        if r["hs_id"] in h_pos:
            strength[(i, h_pos[r["hs_id"]])] += 1
    for j, r in enumerate(H):
        if r["sf_id"] in s_pos:
            strength[(s_pos[r["sf_id"]], j)] += 1
    ordered = sorted(strength, key=lambda p: (-strength[p], p))
    first_per_s, seen = [], set()
    for s, h in ordered:
        if s not in seen:
            seen.add(s)
            first_per_s.append((s, h))
    pairs, used_h = [], set()
    for s, h in first_per_s:
        if h not in used_h:
            used_h.add(h)
            pairs.append((s, h, "link"))
    linked_s = {p[0] for p in pairs}
    linked_h = {p[1] for p in pairs}

    def duplicates(rows, own, paired):
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            if not r["deleted"] and r["email_key"] is not None:
                groups.setdefault(r["email_key"], []).append(i)
        dups = {}
        for members in groups.values():
            members.sort(
                key=lambda i: (
                    i not in paired,
                    rows[i]["modified_at"] is None,
                    rows[i]["modified_at"] or T0,
                    rows[i][own],
                )
            )
            primary = members[0]
            for i in members[1:]:
                if i not in paired:
                    dups[i] = (rows[primary][own], primary)
        return dups

    s_dups, h_dups = duplicates(S, "sf_id", linked_s), duplicates(H, "hs_id", linked_h)
    free_h = {}
    for j, r in enumerate(H):
        if not r["deleted"] and r["email_key"] is not None and j not in linked_h and j not in h_dups:
            free_h.setdefault(r["email_key"], j)
    taken_h = set()
    for i, r in enumerate(S):
        if r["deleted"] or r["email_key"] is None or i in linked_s or i in s_dups:
            continue
        j = free_h.get(r["email_key"])
        if j is not None and j not in taken_h:
            taken_h.add(j)
            pairs.append((i, j, "email"))

    def cross(rows, own, dups, other_rows, mine_index):
        partner = {}
        for pair in sorted(pairs, key=lambda p: p[mine_index]):
            mine, theirs = pair[mine_index], pair[1 - mine_index]
            key = other_rows[theirs]["email_key"]
            if key is not None and key not in partner:
                partner[key] = (rows[mine][own], mine)
        in_pairs = {p[mine_index] for p in pairs}
        for i, r in enumerate(rows):
            if r["deleted"] or r["email_key"] is None or i in in_pairs or i in dups:
                continue
            if r["email_key"] in partner:
                dups[i] = partner[r["email_key"]]

    cross(S, "sf_id", s_dups, H, 0)
    cross(H, "hs_id", h_dups, S, 1)

    paired_s = {p[0] for p in pairs}
    paired_h = {p[1] for p in pairs}
    groups = [(S[s], H[h], how) for s, h, how in pairs]
    groups += [(r, None, None) for i, r in enumerate(S) if i not in paired_s and i not in s_dups]
    groups += [(None, r, None) for j, r in enumerate(H) if j not in paired_h and j not in h_dups]

    decisions: list[tuple] = []
    active_s, active_h = set(), set()
    for s, h, _ in groups:
        if not ((s and s["changed"]) or (h and h["changed"])):
            continue
        if s:
            active_s.add(s["sf_id"])
        if h:
            active_h.add(h["hs_id"])
        for target in (HUBSPOT, SALESFORCE):
            src, dst = (s, h) if target == HUBSPOT else (h, s)
            if src is not None:
                decisions.append(_decide_row(src, dst, target, mapping))
    for side, rows, dups, active, own in (
        (SALESFORCE, S, s_dups, active_s, "sf_id"),
        (HUBSPOT, H, h_dups, active_h, "hs_id"),
    ):
        for i, (dup_of, primary) in dups.items():
            if rows[i]["changed"] or rows[primary][own] in active:
                decisions.append((other_side(side), "reject", rows[i][own], f"duplicate of {dup_of}"))
    return decisions


def _decide_row(src: dict, dst: dict | None, target: str, mapping: MappingConfig) -> tuple:
    source = other_side(target)
    own_src = src["sf_id"] if source == SALESFORCE else src["hs_id"]
    if src["deleted"]:
        if dst is None:
            return (target, "skip", own_src, f"{source} contact deleted; no {target} counterpart")
        if dst["deleted"]:
            return (target, "skip", own_src, "deleted on both sides")
        if not src["changed"]:
            return (target, "skip", own_src, f"{source} contact deleted before this window; not propagated")
        if mapping.propagate_deletes:
            return (target, "delete", own_src, f"{source} contact deleted")
        return (target, "skip", own_src, f"{source} contact deleted; delete propagation off")
    if dst is not None and dst["deleted"]:
        return (target, "skip", own_src, f"{target} counterpart deleted")
    create = dst is None
    both_changed = not create and src["changed"] and dst["changed"]
    src_newer = src["changed"] and (
        not (dst and dst["changed"])
        or (src["modified_at"] > dst["modified_at"])
        or (source == SALESFORCE and src["modified_at"] == dst["modified_at"])
    )
    rejects, conflicts, any_field, any_diff = [], [], False, False
    for item in mapping.fields:
        if not item.writes_to(target):
            continue
        value, theirs = src[item.name], (None if create else dst[item.name])
        if create:
            include = value is not None
        else:
            equal = value == theirs
            any_diff |= not equal
            rule = mapping.conflict_rule(item)
            if item.direction != BOTH:
                wins = item.conflict == source or value is not None
            elif rule == "latest":
                wins = src_newer
            elif rule in (SALESFORCE, HUBSPOT):
                wins = rule == source
            elif rule == f"prefer_{source}_unless_blank":
                wins = value is not None
            else:
                wins = theirs is None
            include = not equal and wins
        default = item.default_if_blank.get(target)
        if default is not None:
            value = default if value is None else value
            include = include or create
        elif target in item.required and (include or create) and value is None:
            rejects.append(f"missing required {item.on(target)}")
        if include and value is not None:
            if item.validate == "email" and not _EMAIL.fullmatch(value):
                rejects.append("invalid email")
            limit = item.max_length.get(target)
            if limit is not None and len(value) > limit:
                rejects.append(f"{item.on(target)} too long ({len(value)} > {limit})")
        if include and both_changed and item.direction == BOTH:
            rule = mapping.conflict_rule(item)
            if rule != "latest":
                conflicts.append(f"conflict {item.name}: {source} wins by rule {rule}")
            elif src["modified_at"] == dst["modified_at"]:
                conflicts.append(f"conflict {item.name}: {source} wins tie")
            else:
                conflicts.append(f"conflict {item.name}: {source} newer")
        any_field |= include
    if rejects:
        return (target, "reject", own_src, "; ".join(rejects))
    if create:
        return (target, "create", own_src, f"new in {source}")
    link_missing = dst["sf_id" if source == SALESFORCE else "hs_id"] != own_src
    if any_field or link_missing:
        reason = "; ".join(conflicts) if conflicts else (f"{source} changed" if any_field else "link missing")
        return (target, "update", own_src, reason)
    return (target, "skip", own_src, f"{target} values kept" if any_diff else "already equal")


# --------------------------------------------------------------------------- runs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(impl: str, workdir: Path) -> None:
    """Run one implementation on the staged files; write its timing, memory and decisions."""
    mapping = load_mapping(MAPPING_PATH)
    sf = pd.read_parquet(workdir / "sf.parquet")
    hs = pd.read_parquet(workdir / "hs.parquet")
    baseline = _current_rss_mb()
    start = time.perf_counter()
    if impl == "vectorised":
        frame = reconcile(sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=mapping, direction=BOTH)
        elapsed = time.perf_counter() - start
        decisions = list(zip(frame["target"], frame["action"], frame["source_id"], frame["reason"], strict=True))
    else:
        sf_records = sf.astype(object).where(sf.notna(), None).to_dict("records")
        hs_records = hs.astype(object).where(hs.notna(), None).to_dict("records")
        decisions = rowwise_reconcile(sf_records, hs_records, set(sf["Id"]), set(hs["id"]), mapping)
        elapsed = time.perf_counter() - start
    result = {"seconds": elapsed, "peak_rss_mb": _peak_rss_mb(), "baseline_rss_mb": baseline}
    (workdir / f"{impl}.json").write_text(json.dumps(result))
    (workdir / f"{impl}.pickle").write_bytes(pickle.dumps(decisions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=200_000, help="contacts per side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["vectorised", "rowwise"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_reconcile_") as tmp:
        workdir = Path(tmp)
        sf, hs = generate(args.contacts, args.seed)
        sf.to_parquet(workdir / "sf.parquet")
        hs.to_parquet(workdir / "hs.parquet")
        rows = len(sf) + len(hs)
        print(f"{len(sf):,} Salesforce + {len(hs):,} HubSpot contacts (full resync: all rows changed)")
        results, decisions = {}, {}
        for impl in ("vectorised", "rowwise"):
            cmd = [sys.executable, __file__, "--child", impl, "--workdir", str(workdir)]
            subprocess.run(cmd, check=True)
            results[impl] = json.loads((workdir / f"{impl}.json").read_text())
            decisions[impl] = pickle.loads((workdir / f"{impl}.pickle").read_bytes())
        for impl, res in results.items():
            print(
                f"{impl:>10}: {res['seconds']:7.2f} s  {rows / res['seconds']:>11,.0f} rows/s  "
                f"peak RSS {res['peak_rss_mb']:,.0f} MiB ({res['peak_rss_mb'] - res['baseline_rss_mb']:+,.0f} MiB "
                "over the loaded frames)"
            )
        print(f"speed-up: {results['rowwise']['seconds'] / results['vectorised']['seconds']:.1f}x")
        counts = {impl: Counter((t, a) for t, a, _, _ in d) for impl, d in decisions.items()}
        for key in sorted(counts["vectorised"].keys() | counts["rowwise"].keys()):
            print(f"  {key[0]:>10} {key[1]:<7} {counts['vectorised'][key]:>8,} {counts['rowwise'][key]:>8,}")
        same_counts = counts["vectorised"] == counts["rowwise"]
        same_decisions = Counter(decisions["vectorised"]) == Counter(decisions["rowwise"])
        print(
            f"decision counts agree: {same_counts}; "
            f"every decision (target, action, id, reason) agrees: {same_decisions}"
        )
        if not (same_counts and same_decisions):
            diff = Counter(decisions["vectorised"]) - Counter(decisions["rowwise"])
            print("first differences (vectorised only):", list(diff)[:5])
            diff = Counter(decisions["rowwise"]) - Counter(decisions["vectorised"])
            print("first differences (rowwise only):", list(diff)[:5])
            sys.exit(1)


if __name__ == "__main__":
    main()
