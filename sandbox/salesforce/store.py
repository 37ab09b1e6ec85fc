"""The sandbox org's records: Contacts and Accounts, with the indexes a sync leans on.

Indexes: Id (the dict itself), lower-cased Email, the unique HubSpot_Contact_Id__c, and a sorted
(SystemModstamp, Id) list so window queries touch only the window. The modstamp list is append-only
while stamps move forward (they do: they come from the clock); superseded entries are skipped at read
time and compacted away when they outnumber live ones. Deleted rows stay (IsDeleted = true, as in the
recycle bin) so queryAll sees them.

Not thread-safe on its own: the App runs every handler under its lock.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sandbox.core import parse_iso
from sandbox.salesforce import soql
from sandbox.salesforce.ids import IdFactory, normalize_id
from sandbox.salesforce.recycle import GET_DELETED_LIMIT, RecycleBin
from sandbox.salesforce.schema import ACCOUNT, CONTACT, LINK, OBJECTS, ObjectDef
from sandbox.salesforce.validation import DuplicateRule, OrgRules, RecordError, RecordFailed, clean_values

EXTERNAL_ID = LINK.name if LINK else ""  # the org's link field; "" when the org has none
UNIQUE_LINK = bool(LINK and LINK.unique)  # a non-unique link field keeps duplicates (upserts take one match)
ENTITY_IS_DELETED = RecordError("ENTITY_IS_DELETED", "entity is deleted")
STAMP_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


def not_found() -> RecordError:
    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")


def _key(value: str) -> str:
    return value.casefold()


def stamp(when: datetime) -> datetime:
    """A dateTime as a record keeps it: whole seconds. Salesforce zeroes the milliseconds of what it stores
    ("Datetime fields do not store milliseconds"; LastModifiedDate is stamped "to the second, the millisecond
    value simply zeroed out", as practitioners report), so many rows share a SystemModstamp second."""
    return when.replace(microsecond=0)


class Store:
    def __init__(self, ids: IdFactory | None = None) -> None:
        self.ids = ids or IdFactory()
        self.rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self._by_email: dict[str, set[str]] = {}
        self._by_external: dict[str, str] = {}
        self._account_by_name: dict[str, str] = {}
        self._stamps: list[tuple[datetime, str]] = []
        self._stale = 0
        self._undo: list[tuple[str, str, dict[str, Any] | None]] | None = None
        self.recycle = RecycleBin()
        self.rules = OrgRules()  # the org's validation and duplicate rules (admin API)

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        normalized = normalize_id(record_id)
        return self.rows[obj.name].get(normalized) if normalized else None

    def by_external_id(self, value: str) -> dict[str, Any] | None:
        record_id = self._by_external.get(_key(value))
        return self.rows["Contact"][record_id] if record_id else None

    def parent(self, row: soql.Row, relationship: str) -> dict[str, Any] | None:
        if relationship == "Account":
            account_id = row.get("AccountId")
            return self.rows["Account"].get(account_id) if account_id else None
        if relationship == "MasterRecord":
            master_id = row.get("MasterRecordId")
            return self.rows["Contact"].get(master_id) if master_id else None
        return None

    # ---- query ------------------------------------------------------------------------------------
    def run_query(self, query: soql.Query, include_deleted: bool, now: datetime | None = None) -> list[dict[str, Any]]:
        """Rows matching `query`, ordered, offset and limited. Narrows by index where a top-level
        AND term allows it; the full WHERE is always applied afterwards. With `now`, rows whose
        transaction commits later are not seen yet (see `seed_contact`)."""
        table = self.rows[query.sobject]
        candidates = self._candidates(query) if query.sobject == "Contact" else None
        source = table.values() if candidates is None else (table[i] for i in candidates if i in table)
        matched = [
            row
            for row in source
            if (include_deleted or not row["IsDeleted"])
            and (now is None or row.get("_visible_at") is None or row["_visible_at"] <= now)
            and soql.evaluate(query.where, row, self.parent)
        ]
        if query.order_by:
            matched = soql.sort_rows(matched, query.order_by, self.parent)
        elif candidates is not None:
            matched.sort(key=lambda row: row["_seq"])
        end = None if query.limit is None else query.offset + query.limit
        return matched[query.offset : end]

    def _candidates(self, query: soql.Query) -> list[str] | None:
        best: list[str] | None = None
        low: tuple[datetime, bool] | None = None  # (bound, inclusive)
        high: tuple[datetime, bool] | None = None
        for term in query.conjuncts():
            found: list[str] | None = None
            if isinstance(term, soql.Compare | soql.InList) and len(term.path.parts) == 1:
                name = term.path.parts[0]
                values = [term.value] if isinstance(term, soql.Compare) else list(term.values)
                positive = (isinstance(term, soql.Compare) and term.op == "=") or (
                    isinstance(term, soql.InList) and not term.negated
                )
                if positive and None not in values:
                    found = self._lookup(name, values)
                if isinstance(term, soql.Compare) and name == "SystemModstamp" and term.value is not None:
                    bound = term.value
                    if term.op in (">", ">=", "=") and (low is None or bound > low[0]):
                        low = (bound, term.op != ">")
                    if term.op in ("<", "<=", "=") and (high is None or bound < high[0]):
                        high = (bound, term.op != "<")
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        if low or high:
            window = self._stamp_range(low, high)
            if best is None or len(window) < len(best):
                best = window
        return best

    def _lookup(self, name: str, values: list[Any]) -> list[str] | None:
        if name == "Id":
            return list(dict.fromkeys(values))
        if name == "Email":
            return list(dict.fromkeys(i for v in values for i in self._by_email.get(_key(v), ())))
        if name == EXTERNAL_ID and UNIQUE_LINK:
            return list(dict.fromkeys(self._by_external[_key(v)] for v in values if _key(v) in self._by_external))
        return None

    def _stamp_range(self, low: tuple[datetime, bool] | None, high: tuple[datetime, bool] | None) -> list[str]:
        stamps = self._stamps
        start = 0
        if low:
            key = (low[0], "") if low[1] else (low[0], "\uffff")
            start = bisect.bisect_left(stamps, key)
        stop = len(stamps)
        if high:
            key = (high[0], "\uffff") if high[1] else (high[0], "")
            stop = bisect.bisect_left(stamps, key)
        contacts = self.rows["Contact"]
        live = (i for stamp, i in stamps[start:stop] if i in contacts and contacts[i]["SystemModstamp"] == stamp)
        return list(dict.fromkeys(live))  # a rollback can re-add an entry that is still live

    # ---- writes ---------------------------------------------------------------------------------
    def create(
        self,
        obj: ObjectDef,
        values: dict[str, Any],
        now: datetime,
        stamps: dict[str, datetime] | None = None,
        *,
        allow_save: bool = False,
    ) -> str:
        """Insert a record; `stamps` (seeding only) overrides CreatedDate/LastModifiedDate/SystemModstamp;
        `allow_save`: the request's Sforce-Duplicate-Rule-Header (Bulk API jobs never pass it)."""
        now = stamp(now)
        cleaned = clean_values(obj, values, creating=True)
        self._check_references(cleaned)
        row: dict[str, Any] = dict.fromkeys(obj.field_map)
        row.update(cleaned)
        record_id = self.ids.new(obj.key_prefix)
        self._check_unique(obj, row, record_id)
        self._check_rules(obj, row, record_id, creating=True, allow_save=allow_save)
        row.update(Id=record_id, IsDeleted=False, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
        row.update(stamps or {})
        self._put(obj, row, None)
        return record_id

    def update(
        self, obj: ObjectDef, record_id: str, values: dict[str, Any], now: datetime, *, allow_save: bool = False
    ) -> str:
        now = stamp(now)
        current = self._writable(obj, record_id)
        cleaned = clean_values(obj, values, creating=False)
        self._check_references(cleaned)
        row = {**current, **cleaned, "LastModifiedDate": now, "SystemModstamp": now}
        self._check_unique(obj, row, current["Id"])
        self._check_rules(obj, row, current["Id"], creating=False, allow_save=allow_save)
        self._put(obj, row, current)
        return current["Id"]

    def upsert(
        self, value: str, values: dict[str, Any], now: datetime, *, allow_save: bool = False
    ) -> tuple[str, bool]:
        """Upsert a Contact on HubSpot_Contact_Id__c; return (id, created)."""
        body = {k: v for k, v in values.items() if k.lower() != EXTERNAL_ID.lower()}
        supplied = next((v for k, v in values.items() if k.lower() == EXTERNAL_ID.lower()), value)
        if supplied is not None and str(supplied) != value:
            raise RecordFailed(
                [
                    RecordError(
                        "INVALID_FIELD",
                        f"The value of the external ID field in the body "
                        f"({supplied}) doesn't match the value in the URL ({value})",
                        [EXTERNAL_ID],
                    )
                ]
            )
        existing = self.by_external_id(value)
        if existing is None:
            return self.create(CONTACT, {**body, EXTERNAL_ID: value}, now, allow_save=allow_save), True
        return self.update(CONTACT, existing["Id"], body, now, allow_save=allow_save), False

    def delete(self, obj: ObjectDef, record_id: str, now: datetime, master_id: str | None = None) -> str:
        """Move a row to the Recycle Bin; a merge names the record it was merged into (`MasterRecordId`)."""
        now = stamp(now)
        current = self._writable(obj, record_id)
        row = {**current, "IsDeleted": True, "SystemModstamp": now}
        if master_id is not None:
            row["MasterRecordId"] = master_id
        self._put(obj, row, current)
        self.recycle.add(now, obj.name, current["Id"])
        return current["Id"]

    # ---- merge, undelete and the Recycle Bin ------------------------------------------------------
    def merge(self, master_id: str, loser_ids: list[str], values: dict[str, Any], now: datetime) -> list[str]:
        """SOAP `merge()` / Apex `merge` of Contacts: the master takes `values` (the field values the request
        sets on it, checked as an update would be); the losers are deleted with MasterRecordId = the master,
        so queryAll finds them (SOAP API guide, "merge()"). A unique value may move from a loser to the
        master. The org's validation and duplicate rules are not applied to merges here. Returns the
        losers' ids."""
        now = stamp(now)
        master = self._writable(CONTACT, master_id)
        losers = [self._writable(CONTACT, loser_id) for loser_id in loser_ids]
        cleaned = clean_values(CONTACT, values, creating=False)
        self._check_references(cleaned)
        row = {**master, **cleaned, "LastModifiedDate": now, "SystemModstamp": now}
        loser_keys = {loser["Id"] for loser in losers}
        holder = self._by_external.get(_key(row[EXTERNAL_ID])) if EXTERNAL_ID and row.get(EXTERNAL_ID) else None
        self._check_unique(CONTACT, row, holder if holder in loser_keys else master["Id"])
        for loser in losers:
            self.delete(CONTACT, loser["Id"], now, master_id=master["Id"])
        self._put(CONTACT, row, self.rows["Contact"][master["Id"]])  # after the losers: its values index last
        return [loser["Id"] for loser in losers]

    def undelete(self, obj: ObjectDef, record_id: str, now: datetime) -> str:
        """SOAP/Apex `undelete`: a row still in the Recycle Bin comes back under the same Id."""
        normalized = normalize_id(record_id)
        if normalized is None:
            raise RecordFailed([RecordError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}")])
        current = self.rows[obj.name].get(normalized)
        if current is None and normalized not in self.recycle.purged:
            raise RecordFailed([not_found()])
        if current is None or not current["IsDeleted"]:
            raise RecordFailed([RecordError("UNDELETE_FAILED", "Entity is not in the recycle bin")])
        row = {**current, "IsDeleted": False, "SystemModstamp": stamp(now)}
        self._check_unique(obj, row, normalized)
        self._put(obj, row, current)
        return normalized

    def purge_recycle_bin(self, now: datetime) -> int:
        """Physically delete the rows that have been in the Recycle Bin longer than its retention period."""
        purged = 0
        for stamp, name, record_id in self.recycle.expired(now):
            row = self.rows[name].get(record_id)
            if row is None or not row["IsDeleted"] or row["SystemModstamp"] != stamp:
                continue  # undeleted, deleted again later, or a rolled-back delete
            self._unindex(OBJECTS[name], row)
            del self.rows[name][record_id]
            self.recycle.purged.add(record_id)
            self._stale += name == "Contact"
            purged += 1
        return purged

    def deleted_between(
        self, obj: ObjectDef, start: datetime, end: datetime, limit: int = GET_DELETED_LIMIT
    ) -> list[tuple[datetime, str]]:
        """(deletedDate, Id) of the rows of `obj` deleted in [start, end) and still deleted (Get Deleted)."""
        found = []
        for stamp, record_id in self.recycle.between(start, end, obj.name):
            row = self.rows[obj.name].get(record_id)
            if row is not None and row["IsDeleted"] and row["SystemModstamp"] == stamp:
                found.append((stamp, record_id))
        if len(found) > limit:
            raise RecordFailed([RecordError("EXCEEDED_ID_LIMIT", f"more than {limit} ids; narrow start and end")])
        return found

    def age(self, by: timedelta) -> int:
        """Move every row's CreatedDate, LastModifiedDate and SystemModstamp (and the Recycle Bin's deletion
        times, which are SystemModstamps) `by` into the past; the modstamp index is rebuilt. Returns the rows
        moved."""
        rows = [row for table in self.rows.values() for row in table.values()]
        for row in rows:
            for name in STAMP_FIELDS:
                if row.get(name) is not None:
                    row[name] -= by
            if row.get("_visible_at") is not None:
                row["_visible_at"] -= by
        self.recycle.entries = [
            (deleted_at - by, name, record_id) for deleted_at, name, record_id in self.recycle.entries
        ]
        self._stamps = sorted((row["SystemModstamp"], row["Id"]) for row in self.rows["Contact"].values())
        self._stale = 0
        return len(rows)

    def account_for_name(self, name: str | None, now: datetime) -> str | None:
        """The Account with this name, created when missing (used by seeding)."""
        if not name:
            return None
        account_id = self._account_by_name.get(_key(name))
        if account_id is None:
            account_id = self.create(ACCOUNT, {"Name": name}, now)
        return account_id

    def seed_contact(self, values: dict[str, Any], now: datetime) -> str:
        """Insert a Contact with explicit timestamps (LastModifiedDate/SystemModstamp/CreatedDate).

        `CommitDelaySeconds` models a long transaction: Salesforce stamps SystemModstamp when the
        transaction starts, but queries see the row only when it commits, that many seconds later.
        """
        values = dict(values)
        delay = float(values.pop("CommitDelaySeconds", 0) or 0)
        given = {
            k: stamp(parse_iso(v) if isinstance(v, str) else v) for k, v in values.items() if k in STAMP_FIELDS and v
        }
        fields = {k: v for k, v in values.items() if k not in given and k != "AccountName"}
        fields["AccountId"] = self.account_for_name(values.get("AccountName"), now)
        stamps = None
        if given:
            modified = given.get("LastModifiedDate") or given["SystemModstamp"]
            system = given.get("SystemModstamp") or modified
            created = given.get("CreatedDate") or min(modified, system)
            stamps = {"CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": system}
        record_id = self.create(CONTACT, fields, now, stamps)
        if delay > 0:
            row = self.rows["Contact"][record_id]
            row["_visible_at"] = row["SystemModstamp"] + timedelta(seconds=delay)
        return record_id

    @contextmanager
    def all_or_none(self) -> Iterator[list[tuple[str, str, dict[str, Any] | None]]]:
        """Record an undo log; callers roll back with `rollback(log)` when any record failed."""
        outer = self._undo
        self._undo = []
        try:
            yield self._undo
        finally:
            self._undo = outer

    def rollback(self, log: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        for obj_name, record_id, old in reversed(log):
            obj = OBJECTS[obj_name]
            current = self.rows[obj_name].get(record_id)
            if old is None:
                if current is not None:
                    self._unindex(obj, current)
                    del self.rows[obj_name][record_id]
            else:
                self._put(obj, old, current, log=False)

    # ---- internals --------------------------------------------------------------------------------
    def _writable(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        current = self.get(obj, record_id)
        if current is None:
            if normalize_id(record_id) is None:
                raise RecordFailed(
                    [RecordError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ["Id"])]
                )
            raise RecordFailed([not_found()])
        if current["IsDeleted"]:
            raise RecordFailed([ENTITY_IS_DELETED])
        return current

    def _check_references(self, cleaned: dict[str, Any]) -> None:
        account_id = cleaned.get("AccountId")
        if account_id is not None:
            account = self.rows["Account"].get(account_id)
            if account is None or account["IsDeleted"]:
                raise RecordFailed(
                    [
                        RecordError(
                            "INVALID_CROSS_REFERENCE_KEY",
                            f"Account ID: id value of incorrect type: {account_id}",
                            ["AccountId"],
                        )
                    ]
                )

    def _check_unique(self, obj: ObjectDef, row: dict[str, Any], record_id: str) -> None:
        if obj is not CONTACT or not UNIQUE_LINK or row.get(EXTERNAL_ID) is None:
            return
        owner = self._by_external.get(_key(row[EXTERNAL_ID]))
        if owner is not None and owner != record_id:
            raise RecordFailed(
                [
                    RecordError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {EXTERNAL_ID} duplicates value on record with id: {owner}",
                        [],
                    )
                ]
            )

    def _check_rules(
        self, obj: ObjectDef, row: dict[str, Any], record_id: str, *, creating: bool, allow_save: bool
    ) -> None:
        if obj is CONTACT:
            self.rules.check(row, creating=creating, allow_save=allow_save, matches=self._duplicates(record_id))

    def _duplicates(self, record_id: str) -> Callable[[DuplicateRule, dict[str, Any]], list[str]]:
        """The rule's matches for a row: other live Contacts equal (case-insensitively) on its match fields."""

        def matches(rule: DuplicateRule, row: dict[str, Any]) -> list[str]:
            candidates = self._by_email.get(_key(row["Email"]), set()) if "Email" in rule.match_fields else None
            rows = self.rows["Contact"]
            pool = [rows[i] for i in sorted(candidates)] if candidates is not None else list(rows.values())
            return [
                other["Id"]
                for other in pool
                if other["Id"] != record_id
                and not other["IsDeleted"]
                and all(_key(str(other.get(f) or "")) == _key(str(row[f])) for f in rule.match_fields)
            ]

        return matches

    def _put(self, obj: ObjectDef, row: dict[str, Any], old: dict[str, Any] | None, log: bool = True) -> None:
        if log and self._undo is not None:
            self._undo.append((obj.name, row["Id"], old))
        if obj is CONTACT:
            first, last = row.get("FirstName"), row.get("LastName")
            row["Name"] = " ".join(part for part in (first, last) if part)
        row.setdefault("_seq", old["_seq"] if old else len(self.rows[obj.name]))
        if old is not None:
            self._unindex(obj, old)
        self.rows[obj.name][row["Id"]] = row
        self._index(obj, row, old)

    def _index(self, obj: ObjectDef, row: dict[str, Any], old: dict[str, Any] | None) -> None:
        if obj is ACCOUNT:
            self._account_by_name.setdefault(_key(row["Name"]), row["Id"])
            return
        if row.get("Email"):
            self._by_email.setdefault(_key(row["Email"]), set()).add(row["Id"])
        if row.get(EXTERNAL_ID):
            self._by_external[_key(row[EXTERNAL_ID])] = row["Id"]
        stamp = row["SystemModstamp"]
        if old is not None and old["SystemModstamp"] == stamp:
            return
        if old is not None:
            self._stale += 1
        entry = (stamp, row["Id"])
        if not self._stamps or self._stamps[-1] <= entry:
            self._stamps.append(entry)
        else:
            bisect.insort(self._stamps, entry)
        if self._stale > 1000 and self._stale > len(self._stamps) // 2:
            contacts = self.rows["Contact"]
            self._stamps = [(s, i) for s, i in self._stamps if i in contacts and contacts[i]["SystemModstamp"] == s]
            self._stale = 0

    def _unindex(self, obj: ObjectDef, row: dict[str, Any]) -> None:
        if obj is ACCOUNT:
            if self._account_by_name.get(_key(row["Name"])) == row["Id"]:
                del self._account_by_name[_key(row["Name"])]
            return
        if row.get("Email"):
            ids = self._by_email.get(_key(row["Email"]))
            if ids:
                ids.discard(row["Id"])
                if not ids:
                    del self._by_email[_key(row["Email"])]
        if row.get(EXTERNAL_ID) and self._by_external.get(_key(row[EXTERNAL_ID])) == row["Id"]:
            del self._by_external[_key(row[EXTERNAL_ID])]
