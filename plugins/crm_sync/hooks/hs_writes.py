"""HubSpot contacts written, a result per record: batch upserts (creates, keyed by the unique link property),
updates and archives of 100, and the merge API.

A batch HubSpot refuses whole for one record's error is halved until it names that record; an error about the
call (a scope, a property, the daily limit) is raised, never split into rejects (`hs_errors`). Every batch
write is idempotent; a merge is not, and is never sent again once it may have been applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_sync.hooks.base import parallel_refs
from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.hs_batch import error_result, match_batch
from crm_sync.hooks.hs_errors import HubSpotError, configuration_detail, is_record_level
from crm_sync.hooks.hs_reads import BATCH_SIZE, HubSpotReads
from crm_sync.hooks.results import RecordResult
from include.sync_logic.sides import Action

Input = dict[str, Any]  # one batch input as HubSpot takes it: {"id", "idProperty"?, "properties"}


class HubSpotWrites(HubSpotReads):
    """The contacts hook's writes (see `ContactsHook.write_contacts`), and merges."""

    def write_contacts(
        self,
        action: Action,
        records: Sequence[ContactWrite],
        refs: Sequence[str],
        *,
        link_field: str,
        bulk: bool = False,
    ) -> list[RecordResult]:
        """Batches of 100: creates upsert on the unique property `link_field` (a retry creates no duplicate),
        updates and deletes (archives) name their HubSpot id. HubSpot has no bulk API."""
        if bulk:
            raise ValueError("HubSpot has no bulk API: write in batches")
        refs = parallel_refs(records, refs)
        if not records:
            return []
        match action:
            case Action.CREATE:
                return self._upsert(records, refs, link_field)
            case Action.UPDATE:
                ids = [str(record.target_id) for record in records]
                inputs = [{"id": cid, "properties": dict(r.fields)} for cid, r in zip(ids, records, strict=True)]
                return self._write("update", inputs, refs, ids, "id", drop_refused=True)
            case Action.DELETE:
                return self._archive([str(record.target_id) for record in records], refs)
        raise ValueError(f"HubSpot: cannot write {action!r}")

    def merge_contacts(self, primary_id: str, merged_id: str) -> str:
        """Merge `merged_id` into `primary_id` (`POST .../contacts/merge`); returns the id HubSpot answers, a new
        record's since HubSpot's merge change. Never resent once it may have been applied: a second merge of the
        same ids is refused (both now read as the new record)."""
        body = {"primaryObjectId": str(primary_id), "objectIdToMerge": str(merged_id)}
        _, data = self._request(
            "merge",
            lambda: self._contacts.basic_api.merge(
                public_merge_input=body, _preload_content=False, _request_timeout=self.request_timeout
            ),
            idempotent=False,
        )
        return str((data or {})["id"])

    def _upsert(self, records: Sequence[ContactWrite], refs: list[str], link_field: str) -> list[RecordResult]:
        """Batch upsert by the unique property `link_field` (HubSpot refuses one without unique values for the
        whole call); `created` tells new from updated, a taken email links its unlinked holder."""
        keys = [str(record.fields.get(link_field) or "") for record in records]
        if not all(keys):
            raise ValueError(f"upsert: every record needs a value of {link_field}")
        inputs = [
            {"idProperty": link_field, "id": key, "properties": dict(record.fields)}
            for key, record in zip(keys, records, strict=True)
        ]
        results = self._write("upsert", inputs, refs, list(keys), link_field)
        if link_field != "email":
            self._link_taken_emails(inputs, results, link_field)
        return results

    def _link_taken_emails(self, inputs: list[Input], results: list[RecordResult], link: str) -> None:
        """An upsert refused because another contact holds its email (409, either shape) links that contact
        instead, when it has the same normalised email and no link yet: its link property is set, nothing else
        (its values meet the source's in the next run's merge). The result then names it as `existing_id`. Two
        inputs naming one contact: only the first may link it."""
        taken: dict[int, str] = {}
        for i, result in enumerate(results):
            email = (inputs[i]["properties"].get("email") or "").strip()
            if not result.ok and result.existing_id and email and result.existing_id not in taken.values():
                taken[i] = result.existing_id
        if not taken:
            return
        found = self.fetch_contacts(LookupKey.OWN_ID, list(taken.values()), ["email", link])
        holders = {str(row["id"]): row for row in found.to_dict("records")}
        linkable = [
            i
            for i, existing in taken.items()
            if existing in holders
            and _same_email(holders[existing].get("email"), inputs[i]["properties"].get("email"))
            and _blank(holders[existing].get(link))
        ]
        if not linkable:
            return
        links = [{"id": taken[i], "properties": {link: inputs[i]["id"]}} for i in linkable]
        linked = self._write("update", links, [results[i].ref for i in linkable], [taken[i] for i in linkable], "id")
        for i, outcome in zip(linkable, linked, strict=True):
            if outcome.ok:
                results[i] = RecordResult(
                    ref=results[i].ref,
                    target_id=taken[i],
                    ok=True,
                    existing_id=taken[i],
                    message=f"linked to existing contact {taken[i]} (same email, no link); values not written",
                )
        done = sum(outcome.ok for outcome in linked)
        self.log.info("HubSpot upsert: %d of %d taken emails linked to their unlinked contact", done, len(taken))

    def _archive(self, ids: list[str], refs: list[str]) -> list[RecordResult]:
        """Batch archive by id (HubSpot answers 204 for the batch, also for unknown ids)."""

        def archive(part: slice) -> list[RecordResult]:
            body = {"inputs": [{"id": cid} for cid in ids[part]]}
            self._request(
                "batch archive",
                lambda: self._contacts.batch_api.archive(
                    batch_input_simple_public_object_id=body,
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                ),
            )
            return [
                RecordResult(ref=ref, target_id=cid, ok=True) for ref, cid in zip(refs[part], ids[part], strict=True)
            ]

        return self.write_in_batches("archive", len(ids), BATCH_SIZE, archive)

    def _write(
        self,
        kind: str,
        inputs: list[Input],
        refs: list[str],
        keys: Sequence[str | None],
        key_of_result: str,
        *,
        drop_refused: bool = False,
    ) -> list[RecordResult]:
        """Batches of 100 (`kind`: update or upsert); `drop_refused`: see `resend_without_refused`."""

        def write(part: slice) -> list[RecordResult]:
            batch, part_refs, part_keys = inputs[part], refs[part], keys[part]
            results = self._write_batch(kind, batch, part_refs, part_keys, key_of_result)
            if not drop_refused:
                return results
            return self.resend_without_refused(
                kind,
                batch,
                results,
                _without_refused,
                lambda at, again: self._write_batch(
                    kind, again, [part_refs[i] for i in at], [part_keys[i] for i in at], key_of_result
                ),
            )

        return self.write_in_batches(kind, len(inputs), BATCH_SIZE, write)

    def _write_batch(
        self, kind: str, inputs: list[Input], refs: list[str], keys: Sequence[str | None], key_of_result: str
    ) -> list[RecordResult]:
        """One batch call. A batch refused whole for a record-level error (HubSpot may reject all inputs for
        one bad value or conflict) is split until it names the inputs that caused it; any other error is
        about the call, not its records, and is raised (see `hs_errors`)."""
        body = {"inputs": [{**item, "objectWriteTraceId": str(i)} for i, item in enumerate(inputs)]}
        try:
            _, data = self._request(f"batch {kind}", lambda: self._send_batch(kind, body))
        except HubSpotError as exc:
            if not exc.record_level:
                raise
            if len(inputs) == 1:
                error = {"category": exc.code, "message": exc.message}
                return [error_result(refs[0], error, target_id=keys[0] if key_of_result == "id" else None)]
            # HubSpot rejects the whole batch for one bad input (nothing is applied): halve to find it.
            mid = len(inputs) // 2
            self.log.info("HubSpot batch %s of %d rejected (%s); splitting", kind, len(inputs), exc.code)
            first = self._write_batch(kind, inputs[:mid], refs[:mid], keys[:mid], key_of_result)
            return first + self._write_batch(kind, inputs[mid:], refs[mid:], keys[mid:], key_of_result)
        results = match_batch(refs, keys, key_of_result, data)
        for error in (data or {}).get("errors") or []:
            category, message = error.get("category"), error.get("message")
            if not is_record_level(category, message):
                raise HubSpotError(207, category, message, detail=configuration_detail(category, message, error))
        unmatched = [i for i, r in enumerate(results) if r.error_code == "UNMATCHED"]
        if len(unmatched) > 1:
            # Several errors HubSpot did not tie to inputs: send those inputs one by one to tell them apart.
            for i in unmatched:
                (results[i],) = self._write_batch(kind, [inputs[i]], [refs[i]], [keys[i]], key_of_result)
        return results

    def _send_batch(self, kind: str, body: dict[str, Any]) -> Any:
        api = self._contacts.batch_api
        options = {"_preload_content": False, "_request_timeout": self.request_timeout}
        if kind == "update":
            return api.update(batch_input_simple_public_object_batch_input=body, **options)
        return api.upsert(batch_input_simple_public_object_batch_input_upsert=body, **options)


def _without_refused(result: RecordResult, item: Input) -> Input | None:
    """`item` without every property its refusal names, when it carries them all and others besides (an input
    left with nothing to write is refused whole)."""
    named = set((result.refused_fields or "").split(",")) - {""}
    properties = item.get("properties") or {}
    if result.ok or not named or not named < set(properties):
        return None
    return {**item, "properties": {key: value for key, value in properties.items() if key not in named}}


def _blank(value: Any) -> bool:
    """None, NaN (a frame's missing value) or only white space."""
    return value is None or value != value or not str(value).strip()


def _same_email(left: Any, right: Any) -> bool:
    """Equal after trimming and lower-casing (the mapping's email normalisation)."""
    return not _blank(left) and str(left).strip().lower() == str(right or "").strip().lower()
