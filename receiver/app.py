"""The webhook receiver's ASGI app: ``POST /webhooks/servicetitan/{connection}``, ``GET /healthz``,
``GET /metrics``.

A delivery is acknowledged (200) only after it is committed to the inbox; duplicates (same
eventId, or same body when there is none) are stored once and still answered 200. Every refusal
stores nothing and answers a short JSON body ``{"error", "message"}`` that never echoes a secret
or the signature. Checks run cheapest first, so most refusals never read the body:

    503 busy: too many deliveries in flight (Retry-After) · 404 unknown connection ·
    503 paused (Retry-After) · 503 no webhook secret stored yet ·
    415 not application/json · 413 Content-Length over the limit · 401 no signature header ·
    413 body over the limit while streaming (stops reading; the connection is closed) ·
    401 bad signature · 400 not JSON / no event fields · 503 store unavailable (Retry-After)

Choices where the reference is silent (documented here, settable through ``create_app``): a
known connection without a webhook secret answers 503, so ServiceTitan redelivers once the
secret is stored; ``eventId`` may be a string or an integer, anything else is refused. A burst
beyond ``max_in_flight`` concurrent deliveries is answered 503 with Retry-After before anything is
read (each waiting delivery may hold up to ``max_body_bytes``), so memory stays bounded and
ServiceTitan redelivers later (it retries after 10, 30, 60 and 300 s); the catch-up schedule reads
the export feeds in any case. Event types fieldledger does not sync are stored and acknowledged
(a refusal would only make ServiceTitan retry and list them as failed); the inbox sensor marks
them ``ignored`` with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from receiver.connections import DEFAULT_TTL_SECONDS, MISS, ConnectionFileError, ConnectionLookup, WebhookSettings
from receiver.inbox_writer import InboxWriter, StoreUnavailable
from receiver.metrics import UNKNOWN_CONNECTION, ReceiverMetrics
from receiver.signature import is_valid
from resources.redaction import SENSITIVE_HEADERS
from resources.store import SyncStore
from resources.vault import VaultError

log = logging.getLogger("fieldledger.receiver")

MAX_BODY_BYTES = 1 << 20
PAUSED_RETRY_AFTER_SECONDS = 60
MAX_IN_FLIGHT = 256  # concurrent deliveries; at 1 MiB each at most 256 MiB of bodies held
BUSY_RETRY_AFTER_SECONDS = 10  # ServiceTitan's first redelivery interval
UNAVAILABLE_RETRY_AFTER_SECONDS = 10
LOOKUP_TIMEOUT_SECONDS = 5.0  # a store that does not answer a settings lookup in time counts as down
MAX_EVENT_ID_LENGTH = 200
KEPT_HEADERS = ("content-type", "user-agent")
_NEVER_KEPT = ("signature", "hmac", "key", "token", "auth", "secret")


class Refusal(Exception):
    """A delivery we do not accept; becomes the JSON error answer and the metrics outcome."""

    def __init__(self, status: int, outcome: str, message: str, *, retry_after: int | None = None,
                 close: bool = False, known: bool = True):
        super().__init__(message)
        self.status, self.outcome, self.message = status, outcome, message
        self.retry_after, self.close, self.known = retry_after, close, known

    def response(self) -> JSONResponse:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.close:
            headers["Connection"] = "close"  # uvicorn then closes without reading the rest
        return JSONResponse({"error": self.outcome, "message": self.message}, self.status, headers=headers)


def event_fields(body: bytes) -> tuple[str, str]:
    """(event_id, event_type) of a delivery body, or a 400 Refusal saying what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise Refusal(400, "invalid_json", "The body is not valid JSON. Send the event as a UTF-8 JSON object.") from None
    if not isinstance(payload, dict):
        raise Refusal(400, "missing_event_fields", "The body must be a JSON object with eventType and data.")
    event_type, data = payload.get("eventType"), payload.get("data")
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > MAX_EVENT_ID_LENGTH:
        raise Refusal(400, "missing_event_fields", "The event has no eventType (a non-empty string) at the top level.")
    if not isinstance(data, dict):
        raise Refusal(400, "missing_event_fields", "The event has no data object at the top level.")
    raw_id = payload.get("eventId")
    if raw_id is None or raw_id == "":
        return "sha256:" + hashlib.sha256(body).hexdigest(), event_type
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or len(str(raw_id)) > MAX_EVENT_ID_LENGTH:
        raise Refusal(400, "missing_event_fields",
                      f"eventId must be a string or an integer of at most {MAX_EVENT_ID_LENGTH} characters.")
    return str(raw_id), event_type


def _kept_headers(request: Request, signature_header: str) -> dict[str, str]:
    kept = {}
    for name, value in request.headers.items():
        if name in SENSITIVE_HEADERS or name == signature_header.lower() or any(w in name for w in _NEVER_KEPT):
            continue
        if name in KEPT_HEADERS or name.startswith("x-servicetitan-"):
            kept[name] = value
    return kept


class WebhookReceiver:
    """The request handlers and the state they share (lookups, writer, metrics)."""

    def __init__(self, store_url: str, *, secret_ttl: float, max_body_bytes: int, paused_retry_after: int,
                 writers: int, max_batch: int, max_in_flight: int = MAX_IN_FLIGHT):
        self.store_url = store_url
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # touched only on the event loop
        self.secret_ttl = secret_ttl
        self.max_body_bytes = max_body_bytes
        self.paused_retry_after = paused_retry_after
        self.metrics = ReceiverMetrics()
        self.writer = InboxWriter(store_url, writers=writers, max_batch=max_batch, on_commit=self.metrics.record_commit)
        self.store: SyncStore | None = None
        self.lookup: ConnectionLookup | None = None

    @asynccontextmanager
    async def lifespan(self, _app: Any):
        self.store = await run_in_threadpool(SyncStore, self.store_url, min_size=1, max_size=4)
        try:
            self.lookup = ConnectionLookup(self.store, ttl=self.secret_ttl)
            await self.writer.open()
            log.info("webhook receiver ready")
            yield
        finally:
            await self.writer.close()  # in-flight requests have finished: commit what is queued
            await run_in_threadpool(self.store.close)
            log.info("webhook receiver stopped")

    # --- POST /webhooks/servicetitan/{connection} ------------------------------------------

    async def receive_servicetitan(self, request: Request) -> Response:
        started = time.perf_counter()
        self.metrics.started()
        connection = request.path_params["connection"]
        self.in_flight += 1
        try:
            if self.in_flight > self.max_in_flight:
                known = isinstance(self.lookup.peek_settings(connection), WebhookSettings) if self.lookup else False
                raise Refusal(503, "busy", f"The receiver is handling {self.max_in_flight} deliveries already; "
                              "nothing was read or stored. Redeliver after Retry-After.",
                              retry_after=BUSY_RETRY_AFTER_SECONDS, known=known)
            event_id, stored = await self._accept(request, connection)
        except Refusal as refusal:
            label = connection if refusal.known else UNKNOWN_CONNECTION
            self.metrics.record(label, refusal.outcome, time.perf_counter() - started)
            log.warning("refused a webhook for connection %r: %s (%d)", connection, refusal.outcome, refusal.status)
            return refusal.response()
        except Exception:
            self.metrics.record(connection, "error", time.perf_counter() - started)
            log.exception("receiving a webhook for connection %r failed; nothing was acknowledged", connection)
            return JSONResponse({"error": "internal_error", "message": "The receiver failed; the event was not "
                                 "acknowledged. Redeliver it; see the receiver log."}, 500)
        finally:
            self.in_flight -= 1
        outcome = "stored" if stored else "duplicate"
        self.metrics.record(connection, outcome, time.perf_counter() - started)
        return JSONResponse({"status": outcome, "eventId": event_id})

    async def _accept(self, request: Request, connection: str) -> tuple[str, bool]:
        settings = await self._settings(connection)
        paused = await self._paused()
        if connection in paused:
            raise Refusal(503, "paused", f"Connection {connection!r} is paused; the event was not stored. "
                          "Redeliver after Retry-After; deliveries are accepted again once it is resumed.",
                          retry_after=self.paused_retry_after)
        if not settings.secret:
            raise Refusal(503, "not_configured", f"Connection {connection!r} has no webhook signing secret yet; "
                          f"store it with `fieldledger secrets set {connection} {settings.secret_name}`, then redeliver.",
                          retry_after=self.paused_retry_after)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise Refusal(415, "unsupported_media_type", "Send the event with Content-Type: application/json.")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise Refusal(413, "too_large", f"The body is over {self.max_body_bytes} bytes; nothing was read or stored.",
                          close=True)
        signature = request.headers.get(settings.header)
        if not signature:
            raise Refusal(401, "missing_signature", f"The {settings.header} header is missing: sign the raw body "
                          "with HMAC-SHA256 and the connection's webhook key.")
        body = await self._read_body(request)
        if not is_valid(settings.secret, body, signature, settings.encoding):
            raise Refusal(401, "bad_signature", f"The {settings.header} header does not match the body. Check that the "
                          f"webhook key in ServiceTitan equals the connection's {settings.secret_name}.")
        event_id, event_type = event_fields(body)
        try:
            stored = await self.writer.add(connection, event_id, event_type, body,
                                           _kept_headers(request, settings.header))
        except StoreUnavailable as exc:
            raise Refusal(503, "store_unavailable", f"The event could not be stored ({exc}); redeliver it later.",
                          retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
        return event_id, stored

    async def _settings(self, connection: str) -> WebhookSettings:
        assert self.lookup is not None
        settings = self.lookup.peek_settings(connection)
        if settings is MISS:
            try:
                settings = await asyncio.wait_for(run_in_threadpool(self.lookup.webhook_settings, connection),
                                                  LOOKUP_TIMEOUT_SECONDS)
            except ConnectionFileError as exc:
                log.error("connection %r: %s", connection, exc)
                raise Refusal(503, "not_configured", f"The connection file of {connection!r} is invalid; "
                              "see the receiver log, fix the file, then redeliver.",
                              retry_after=self.paused_retry_after) from None
            except VaultError as exc:
                log.error("connection %r: %s", connection, exc)
                raise Refusal(503, "not_configured", f"The webhook secret of {connection!r} cannot be read; "
                              "see the receiver log.", retry_after=self.paused_retry_after) from None
            except Exception as exc:  # noqa: BLE001 - the store is down: ask for redelivery
                log.error("looking up connection %r failed: %s", connection, exc.__class__.__name__)
                raise Refusal(503, "store_unavailable", "The receiver cannot reach its store; redeliver later.",
                              retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
        if settings is None:
            raise Refusal(404, "unknown_connection", "No such connection. Check the callback URL: "
                          "/webhooks/servicetitan/<connection name>.", known=False)
        return settings

    async def _paused(self) -> dict[str, str | None]:
        assert self.lookup is not None
        paused = self.lookup.peek_paused()
        if paused is MISS:
            try:
                paused = await asyncio.wait_for(run_in_threadpool(self.lookup.paused), LOOKUP_TIMEOUT_SECONDS)
            except Exception as exc:  # noqa: BLE001
                log.error("reading paused connections failed: %s", exc.__class__.__name__)
                raise Refusal(503, "store_unavailable", "The receiver cannot reach its store; redeliver later.",
                              retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
        return paused

    async def _read_body(self, request: Request) -> bytes:
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise Refusal(413, "too_large", f"The body is over {self.max_body_bytes} bytes; "
                                  "reading stopped and nothing was stored.", close=True)
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refusal(400, "client_disconnected", "The client went away before sending the whole body.") from None
        return b"".join(chunks)

    # --- GET /healthz, GET /metrics ----------------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        if await self.writer.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "message": "The sync store is not reachable."}, 503)

    async def render_metrics(self, _request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def _json_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "No such endpoint. Webhooks go to POST /webhooks/servicetitan/<connection name>.",
               405: "Method not allowed. Webhooks are delivered with POST."}.get(exc.status_code, str(exc.detail))
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": error, "message": message}, exc.status_code, headers=exc.headers)


def create_app(store_url: str, *, secret_ttl: float = DEFAULT_TTL_SECONDS, max_body_bytes: int = MAX_BODY_BYTES,
               paused_retry_after: int = PAUSED_RETRY_AFTER_SECONDS, writers: int = 2, max_batch: int = 500,
               max_in_flight: int = MAX_IN_FLIGHT) -> Starlette:
    """The receiver as an ASGI app writing to the sync store at ``store_url`` (already migrated).
    Needs the lifespan protocol (uvicorn's default) to open and close its pools."""
    receiver = WebhookReceiver(store_url, secret_ttl=secret_ttl, max_body_bytes=max_body_bytes,
                               paused_retry_after=paused_retry_after, writers=writers, max_batch=max_batch,
                               max_in_flight=max_in_flight)
    app = Starlette(
        routes=[
            Route("/webhooks/servicetitan/{connection}", receiver.receive_servicetitan, methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/metrics", receiver.render_metrics, methods=["GET"]),
        ],
        lifespan=receiver.lifespan,
        exception_handlers={HTTPException: _json_http_error},
    )
    app.state.receiver = receiver
    return app
