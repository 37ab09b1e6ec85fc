"""The HubSpot sandbox: CRM v3 contacts (basic, batch, search) and properties, behind private-app auth
and HubSpot's rate limits, answered in the shapes hubspot-api-client 12 deserialises."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.core import App, Clock, Request, Response
from sandbox.hubspot.errors import (
    CONFLICT_SHAPES,
    PORTAL_ID,
    HubSpotError,
    correlation_id,
    missing_scopes,
    non_unique_id_property,
    not_found,
    unauthorized,
    validation_error,
)
from sandbox.hubspot.ratelimit import HubSpotLimits
from sandbox.hubspot.search import SearchEngine, parse_request
from sandbox.hubspot.store import (
    DEFAULT_GET_PROPERTIES,
    DEFAULT_LINK_PROPERTY,
    Claims,
    Contact,
    ContactStore,
    iso_ms,
    to_ms,
)
from sandbox.hubspot.webhook_sender import WebhookSender
from sandbox.hubspot.webhooks import (
    API,
    CREATION,
    CRM_UI,
    DELETION,
    IMPORT,
    MERGE,
    PRIVACY_DELETION,
    PROPERTY_CHANGE,
    RESTORE,
    Change,
    WebhookConfig,
)

log = logging.getLogger(__name__)

CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"  # needs no scope
READ, WRITE = "crm.objects.contacts.read", "crm.objects.contacts.write"
SCHEMA_READ, SCHEMA_WRITE = "crm.schemas.contacts.read", "crm.schemas.contacts.write"
ALL_SCOPES = (READ, WRITE, SCHEMA_READ, SCHEMA_WRITE)
ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")
MAX_BATCH = 100
MAX_LIST_LIMIT = 100
BATCH_MODES = ("multi-status", "atomic")
DEFAULT_TOKEN = "pat-sandbox-0000-local"


class HubSpotApp(App):
    name = "hubspot"

    def __init__(
        self,
        clock: Clock | None = None,
        access_token: str = DEFAULT_TOKEN,
        requests_per_10s: int = 100,
        search_requests_per_s: int = 5,
        daily_limit: int = 500_000,
        batch_mode: str = "multi-status",
        retry_after_header: bool = False,
        scopes: tuple[str, ...] = ALL_SCOPES,
        link_property: str = DEFAULT_LINK_PROPERTY,
        search_index_delay_seconds: float = 0.0,
    ) -> None:
        super().__init__(clock)
        self.access_token = access_token
        self.limits = HubSpotLimits(requests_per_10s, search_requests_per_s, daily_limit)
        self.batch_mode = batch_mode
        self.retry_after_header = retry_after_header
        self.scopes = set(scopes)
        self.store = ContactStore(link_property)
        self.store.index_delay_ms = int(search_index_delay_seconds * 1000)
        self.search_engine = SearchEngine(self.store)
        self.webhooks = WebhookSender()
        self._routes_for_contacts()
        self.admin_route("GET", "limits", lambda req: self.limits.settings())
        self.admin_route("POST", "limits", self._admin_limits)
        self.admin_route("GET", "settings", lambda req: self._settings())
        self.admin_route("POST", "settings", self._admin_settings)
        self.admin_route("POST", "restore", self._admin_restore)
        self.admin_route("GET", "webhooks", lambda req: self._webhook_state())
        self.admin_route("POST", "webhooks", lambda req: self.configure_webhooks(req.json() or {}))
        self.admin_route("DELETE", "webhooks", lambda req: self.configure_webhooks(None))

    def _routes_for_contacts(self) -> None:
        one = rf"{CONTACTS}/(?P<contact_id>[^/]+)"
        api: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", CONTACTS, self.list_contacts),
            ("POST", CONTACTS, self.create_contact),
            ("POST", f"{CONTACTS}/search", self.search),
            ("POST", f"{CONTACTS}/merge", self.merge_contacts),
            ("POST", f"{CONTACTS}/gdpr-delete", self.gdpr_delete),
            ("POST", f"{CONTACTS}/batch/read", self.batch_read),
            ("POST", f"{CONTACTS}/batch/create", lambda req: self.batch_write(req, "create")),
            ("POST", f"{CONTACTS}/batch/update", lambda req: self.batch_write(req, "update")),
            ("POST", f"{CONTACTS}/batch/upsert", lambda req: self.batch_write(req, "upsert")),
            ("POST", f"{CONTACTS}/batch/archive", self.batch_archive),
            ("GET", one, self.get_contact),
            ("PATCH", one, self.update_contact),
            ("DELETE", one, self.archive_contact),
            ("GET", PROPERTIES, self.list_properties),
            ("POST", PROPERTIES, self.create_property),
            ("GET", rf"{PROPERTIES}/(?P<name>[^/]+)", self.get_property),
            ("POST", TOKEN_INFO, self.token_info),
        ]
        for method, pattern, handler in api:
            self.route(method, pattern, _errors_as_responses(handler))

    # ---- auth, limits, headers -------------------------------------------------------------------
    def _authorized(self, req: Request) -> bool:
        return req.headers.get("authorization", "") == f"Bearer {self.access_token}"

    def before_request(self, req: Request, endpoint: str) -> Response | None:
        if req.path == TOKEN_INFO:
            return None  # the token travels in the body; HubSpot asks no scope for this call
        if not self._authorized(req):
            return _error(unauthorized())
        scope = _required_scope(req)
        if scope not in self.scopes:
            return _error(missing_scopes(scope))
        if not self.limits.day.try_acquire(self.clock.now().date()):
            return self._limited("DAILY", "You have reached your daily limit.", _seconds_to_midnight(self.clock))
        if req.path.endswith("/search"):
            if not self.limits.search.try_acquire():
                return self._limited("SECONDLY", "You have reached your secondly limit.", 1)
        elif not self.limits.ten_secondly.try_acquire():
            retry = self.limits.ten_secondly.retry_after()
            return self._limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", retry)
        return None

    def after_request(self, req: Request, resp: Response) -> Response:
        # Search responses carry no X-HubSpot-RateLimit-* headers; neither do unauthenticated ones.
        if self._authorized(req) and not req.path.endswith("/search") and not req.path.startswith("/__admin"):
            resp.headers.update(self._rate_headers())
        return resp

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.limits.day.remaining()),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.limits.requests_per_10s),
            "X-HubSpot-RateLimit-Remaining": str(self.limits.ten_secondly.remaining()),
        }

    def _limited(self, policy: str, message: str, retry_after: int) -> Response:
        """HubSpot's 429. Retry-After is opt-in: HubSpot documents the X-HubSpot-RateLimit-* headers, not it,
        and urllib3's default Retry would silently sleep on it and retry GETs."""
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": policy,
            "category": "RATE_LIMITS",
        }
        return Response(429, body, {"Retry-After": str(retry_after)} if self.retry_after_header else {})

    def rate_limited_response(self, req: Request) -> Response:
        return self._limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", 1)

    def server_error_response(self, req: Request, status: int) -> Response:
        message = "internal error" if status == 500 else "Service Unavailable"
        return _error(HubSpotError(status, "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE", message))

    def not_found_response(self, req: Request) -> Response:
        return _error(HubSpotError(404, "OBJECT_NOT_FOUND", f"No route for {req.method} {req.path}"))

    # ---- admin -----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.store.reset()
        self.limits.clear()
        self.webhooks.clear()

    def seed(self, payload: Any) -> Any:
        records = payload.get("contacts", []) if isinstance(payload, dict) else payload
        if not isinstance(records, list):
            raise ValueError("seed takes {'contacts': [...]} or a list of contacts")
        now = self._now_ms()
        result = self.store.seed(records, now)
        log.info("hubspot seed: %d created, %d rejected", result["created"], len(result["rejected"]))
        if self.webhooks.config is not None:  # an import fires creation events like any other create
            for contact in (self.store.contacts[int(i)] for i in result["ids"]):
                if not contact.archived:
                    self._emit(CREATION, contact.id, now, IMPORT, dict(contact.props))
        return result

    def records(self, ids: set[str] | None = None) -> Any:
        names = list(self.store.properties)
        contacts = self.store.contacts
        chosen = (
            contacts.values() if ids is None else [contacts[int(i)] for i in ids if i.isdigit() and int(i) in contacts]
        )
        return {"contacts": [c.to_json(names) for c in chosen]}

    def age_records(self, by: timedelta) -> int:
        return self.store.age(int(by.total_seconds() * 1000))

    def _admin_limits(self, req: Request) -> dict:
        self.limits.configure(**(req.json() or {}))
        return self.limits.settings()

    def _settings(self) -> dict:
        return {
            "batch_mode": self.batch_mode,
            "retry_after_header": self.retry_after_header,
            "scopes": sorted(self.scopes),
            "search_index_delay_seconds": self.store.index_delay_ms / 1000,
            "conflict_shape": self.store.conflict_shape,
        }

    def _admin_settings(self, req: Request) -> dict:
        body = req.json() or {}
        known = {"batch_mode", "retry_after_header", "scopes", "search_index_delay_seconds", "conflict_shape"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        mode = body.get("batch_mode", self.batch_mode)
        if mode not in BATCH_MODES:
            raise ValueError(f"batch_mode must be one of {BATCH_MODES}")
        self.batch_mode = mode
        self.retry_after_header = bool(body.get("retry_after_header", self.retry_after_header))
        self.scopes = set(body.get("scopes", self.scopes))
        delay = float(body.get("search_index_delay_seconds", self.store.index_delay_ms / 1000))
        self.store.index_delay_ms = int(delay * 1000)
        shape = body.get("conflict_shape", self.store.conflict_shape)
        if shape not in CONFLICT_SHAPES:
            raise ValueError(f"conflict_shape must be one of {CONFLICT_SHAPES}")
        self.store.conflict_shape = shape
        return self._settings()

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    # ---- webhooks --------------------------------------------------------------------------------
    def configure_webhooks(self, settings: dict | None) -> dict:
        """Apply a private app's webhook settings (None: off); see sandbox/hubspot/webhooks.py."""
        config = None if settings is None else WebhookConfig.from_json(settings, self.store.link_property)
        self.webhooks.configure(config)
        log.info(
            "hubspot webhooks: %s",
            "off" if config is None else f"{len(config.subscriptions)} subscriptions, app {config.app_id}",
        )
        return self._webhook_state()

    def _webhook_state(self) -> dict:
        config = self.webhooks.config
        return {**self.webhooks.stats(), "config": None if config is None else config.public()}

    def _emit(
        self,
        kind: str,
        object_id: int,
        now: int,
        source: str = API,
        properties: dict[str, str] | None = None,
        merge: dict[str, Any] | None = None,
    ) -> None:
        self.webhooks.emit(Change(kind, object_id, now, source, properties or {}, merge or {}))

    def _create(self, clean: dict[str, str], now: int) -> Contact:
        contact = self.store.create(clean, now)
        self._emit(CREATION, contact.id, now, properties={k: v for k, v in clean.items() if v})
        return contact

    def _update(self, contact: Contact, clean: dict[str, str], now: int) -> Contact:
        changed = {k: v for k, v in clean.items() if contact.props.get(k, "") != v}
        self.store.update(contact, clean, now)
        self._emit(PROPERTY_CHANGE, contact.id, now, properties=changed)
        return contact

    def _archive(self, contact: Contact, now: int) -> None:
        self.store.archive(contact, now)
        self._emit(DELETION, contact.id, now)

    # ---- basic API -------------------------------------------------------------------------------
    def list_contacts(self, req: Request) -> Response:
        limit = _int_arg(req, "limit", 10)
        if not 0 < limit <= MAX_LIST_LIMIT:
            raise validation_error(f"limit must be between 1 and {MAX_LIST_LIMIT}", limit=limit)
        archived = _bool_arg(req, "archived")
        ids = self.store.archived_ids if archived else self.store.active_ids
        after = _int_arg(req, "after", 0)
        start = bisect.bisect_left(ids, after)
        page = ids[start : start + limit]
        names = self._names(req.query.get("properties"))
        body: dict[str, Any] = {"results": [self.store.contacts[i].to_json(names) for i in page]}
        if start + limit < len(ids):
            next_id = str(ids[start + limit])
            body["paging"] = {"next": {"after": next_id, "link": f"{CONTACTS}?after={next_id}"}}
        return Response(200, body)

    def get_contact(self, req: Request, contact_id: str) -> Response:
        contact = self.store.find(contact_id, req.arg("idProperty"), _bool_arg(req, "archived"))
        if contact is None:
            raise _missing(contact_id)
        return Response(200, contact.to_json(self._names(req.query.get("properties"))))

    def create_contact(self, req: Request) -> Response:
        body = _json_object(req)
        clean = self.store.validate(body.get("properties") or {}, None)
        contact = self._create(clean, self._now_ms())
        return Response(201, self._written(contact))

    def update_contact(self, req: Request, contact_id: str) -> Response:
        body = _json_object(req)
        contact = self.store.find(contact_id, req.arg("idProperty"))
        if contact is None:
            raise _missing(contact_id)
        clean = self.store.validate(body.get("properties") or {}, contact)
        self._update(contact, clean, self._now_ms())
        return Response(200, self._written(contact))

    def archive_contact(self, req: Request, contact_id: str) -> Response:
        contact = self.store.find(contact_id)
        if contact is not None:
            self._archive(contact, self._now_ms())
        return Response(204)

    # ---- merge and GDPR delete -------------------------------------------------------------------
    def merge_contacts(self, req: Request) -> Response:
        """`POST .../contacts/merge` {primaryObjectId, objectIdToMerge}: 200 with the NEW merged record."""
        body = _json_object(req)
        primary_id, secondary_id = (str(body.get(k) or "") for k in ("primaryObjectId", "objectIdToMerge"))
        if not primary_id or not secondary_id:
            raise validation_error("primaryObjectId and objectIdToMerge are required")
        primary, secondary = self.store.find(primary_id), self.store.find(secondary_id)
        if primary is None or secondary is None:
            raise _missing(primary_id if primary is None else secondary_id)
        if primary is secondary:
            raise validation_error(f"Cannot merge contact {primary.id} with itself", objectIdToMerge=secondary_id)
        moved = sum(1 for name, value in secondary.props.items() if value and not primary.props.get(name))
        now = self._now_ms()
        merged = self.store.merge(primary, secondary, now)
        log.info("hubspot merge: %d and %d -> %d", primary.id, secondary.id, merged.id)
        ids = {
            "primaryObjectId": primary.id,
            "mergedObjectIds": [secondary.id],
            "newObjectId": merged.id,
            "numberOfPropertiesMoved": moved,
        }
        self._emit(MERGE, primary.id, now, merge=ids)
        return Response(200, self._written(merged))

    def gdpr_delete(self, req: Request) -> Response:
        """`POST .../contacts/gdpr-delete` {objectId, idProperty?}: 204; an unknown email is blocklisted."""
        body = _json_object(req)
        object_id, id_property = str(body.get("objectId") or ""), body.get("idProperty")
        if not object_id:
            raise validation_error("objectId is required")
        contact = self.store.find(object_id, id_property) or self.store.find(object_id, id_property, archived=True)
        if contact is not None:
            was_live, now = not contact.archived, self._now_ms()
            self.store.purge(contact)
            self._emit(PRIVACY_DELETION, contact.id, now)
            if was_live:  # "A privacy deletion event will also trigger the contact deletion event"
                self._emit(DELETION, contact.id, now)
        elif id_property == "email":
            self.store.block_email(object_id)
        else:
            raise _missing(object_id)
        return Response(204)

    def _admin_restore(self, req: Request) -> dict:
        """Admin `POST restore` {"ids": [...]}: the UI's restore of archived contacts (no API exists)."""
        ids = (req.json() or {}).get("ids")
        if not isinstance(ids, list):
            raise ValueError("restore takes {'ids': [...]}")
        restored, failed = [], []
        for value in map(str, ids):
            contact = self.store.find(value, archived=True)
            try:
                if contact is None:
                    raise _missing(value)
                now = self._now_ms()
                self.store.restore(contact, now)
                self._emit(RESTORE, contact.id, now, CRM_UI)
                restored.append(value)
            except HubSpotError as exc:
                failed.append({"id": value, "reason": exc.message})
        return {"restored": restored, "failed": failed}

    # ---- batch API -------------------------------------------------------------------------------
    def batch_read(self, req: Request) -> Response:
        body = _json_object(req)
        inputs = _inputs(body)
        id_property = body.get("idProperty")
        archived = _bool_arg(req, "archived")
        names = self._names(body.get("properties"))
        started = self._now_iso()
        results, missing = [], []
        for item in inputs:
            value = str(item.get("id", ""))
            contact = self.store.find(value, id_property, archived)
            if contact is None:
                missing.append(value)
            else:
                results.append(contact.to_json(names))
        errors = [not_found(missing)] if missing else []
        return self._batch_response(200, results, errors, started)

    def batch_write(self, req: Request, kind: str) -> Response:
        body = _json_object(req)
        inputs = _inputs(body)
        _reject_duplicate_ids(inputs, kind)
        self._check_id_properties(inputs)
        started, now, claims = self._now_iso(), self._now_ms(), Claims()
        plans: list[Callable[[], dict]] = []
        errors: list[HubSpotError] = []
        for item in inputs:
            try:
                plans.append(self._plan(kind, item, claims, now))
            except HubSpotError as exc:
                if self.batch_mode == "atomic" or exc.whole_request:
                    raise
                errors.append(exc)
        results = [apply() for apply in plans]
        return self._batch_response(201 if kind == "create" else 200, results, errors, started)

    def _check_id_properties(self, inputs: list[Any]) -> None:
        """An idProperty without unique values fails the whole batch (HubSpot's 400, not one per input)."""
        named = {str(i["idProperty"]) for i in inputs if isinstance(i, dict) and i.get("idProperty")}
        for name in sorted(named - self.store.unique_properties() - {"hs_object_id"}):
            raise non_unique_id_property(name)

    def _plan(self, kind: str, item: Any, claims: Claims, now: int) -> Callable[[], dict]:
        """Validate one batch input against the store and earlier inputs; return how to apply it."""
        if not isinstance(item, dict):
            raise validation_error("Each batch input must be an object")
        props = item.get("properties") or {}
        if kind == "create":
            clean = self.store.validate(props, None, claims)
            return lambda: self._written(self._create(clean, now))
        value, id_property = str(item.get("id", "")), item.get("idProperty")
        if kind == "upsert" and id_property not in self.store.unique_properties():
            raise validation_error(
                f"idProperty must be one of {sorted(self.store.unique_properties())} for upsert",
                idProperty=id_property,
            )
        target = self.store.find(value, id_property)
        if target is None and kind == "update":
            raise not_found([value])
        if target is None:
            clean = self.store.validate({**props, id_property: value}, None, claims)
            return lambda: {**self._written(self._create(clean, now)), "new": True}
        clean = self.store.validate(props, target, claims)
        extra = {"new": False} if kind == "upsert" else {}
        return lambda: {**self._written(self._update(target, clean, now)), **extra}

    def batch_archive(self, req: Request) -> Response:
        for item in _inputs(_json_object(req)):
            contact = self.store.find(str(item.get("id", "")))
            if contact is not None:
                self._archive(contact, self._now_ms())
        return Response(204)

    def _batch_response(self, ok: int, results: list, errors: list[HubSpotError], started: str) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": self._now_iso(),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = [e.standard_error() for e in errors]
            return Response(207, body)
        return Response(ok, body)

    # ---- search ----------------------------------------------------------------------------------
    def search(self, req: Request) -> Response:
        request = parse_request(_json_object(req), self.store)
        page, total, next_after = self.search_engine.run(request, self._now_ms())
        names = self._names(request.properties)
        body: dict[str, Any] = {"total": total, "results": [c.to_json(names) for c in page]}
        if next_after is not None:
            body["paging"] = {"next": {"after": str(next_after)}}
        return Response(200, body)

    # ---- properties API --------------------------------------------------------------------------
    def list_properties(self, req: Request) -> Response:
        return Response(200, {"results": list(self.store.properties.values())})

    def get_property(self, req: Request, name: str) -> Response:
        definition = self.store.properties.get(name)
        if definition is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for object type CONTACT")
        return Response(200, definition)

    def create_property(self, req: Request) -> Response:
        return Response(201, self.store.add_property(_json_object(req), self._now_ms()))

    # ---- private app token info ------------------------------------------------------------------
    def token_info(self, req: Request) -> Response:
        """The scopes of a private app token (HubSpot's documented token-info call for private apps)."""
        if _json_object(req).get("tokenKey") != self.access_token:
            raise unauthorized()
        return Response(200, {"userId": 1, "hubId": PORTAL_ID, "appId": 1, "scopes": sorted(self.scopes)})

    # ---- helpers ---------------------------------------------------------------------------------
    def _names(self, requested: list[str] | None) -> list[str]:
        """Requested properties that exist (unknown names are ignored, as HubSpot does) plus the always-on."""
        if not requested:
            return list(DEFAULT_GET_PROPERTIES)
        names = [n for value in requested for n in str(value).split(",") if n in self.store.properties]
        return list(dict.fromkeys([*names, *ALWAYS_RETURNED]))

    def _written(self, contact: Contact) -> dict:
        return contact.to_json(dict.fromkeys([*contact.props, *ALWAYS_RETURNED]))

    def _now_iso(self) -> str:
        return iso_ms(self._now_ms())


def _required_scope(req: Request) -> str:
    """The private app scope an API call needs (HubSpot's scopes reference for contacts and properties)."""
    if req.path.startswith(PROPERTIES):
        return SCHEMA_READ if req.method == "GET" else SCHEMA_WRITE
    reads = req.method == "GET" or req.path.endswith(("/search", "/batch/read"))
    return READ if reads else WRITE


def _errors_as_responses(handler: Callable[..., Response]) -> Callable[..., Response]:
    def wrapped(req: Request, **params: str) -> Response:
        try:
            return handler(req, **params)
        except HubSpotError as exc:
            return _error(exc)

    return wrapped


def _error(exc: HubSpotError) -> Response:
    return Response(exc.status, exc.body())


def _missing(contact_id: str) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found", {"id": [contact_id]})


def _json_object(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise validation_error("Request body must be a JSON object")
    return body


def _inputs(body: dict[str, Any]) -> list[Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation_error("inputs must be a list")
    if len(inputs) > MAX_BATCH:
        raise validation_error(f"Batch input size {len(inputs)} exceeds the limit of {MAX_BATCH} inputs")
    return inputs


def _reject_duplicate_ids(inputs: list[Any], kind: str) -> None:
    if kind == "create":
        return
    ids = [str(i.get("id")) for i in inputs if isinstance(i, dict)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise validation_error(f"Duplicate IDs found in batch input: {dupes}. IDs must be unique")


def _int_arg(req: Request, name: str, default: int) -> int:
    value = req.arg(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise validation_error(f"{name} must be an integer", **{name: value}) from None


def _bool_arg(req: Request, name: str) -> bool:
    return str(req.arg(name, "false")).lower() == "true"


def _seconds_to_midnight(clock: Clock) -> int:
    now = clock.now()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86_400
    return max(1, int(midnight - now.timestamp()))
