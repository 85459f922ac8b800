"""The webhook receiver's ASGI app: ``POST /webhooks/servicetitan/{connection}`` (HMAC mode),
``POST /webhooks/servicetitan/{connection}/{token}`` (path-token mode), ``GET /healthz``, ``GET /metrics``.

Every authentic delivery is kept. A delivery is acknowledged (200) only after it is committed to
the inbox, whatever its envelope: receiver/envelopes.py turns the body into a hint, and a body in no
known shape is stored as ``unrecognised`` with the reason (the inbox sensor then asks for the
connection's catch-up). Duplicates (same event id, or same body when there is none) are stored
once and still answered 200. Every refusal stores nothing and answers a short JSON body
``{"error", "message"}`` that never echoes a key, token or signature. Checks run cheapest first, so
most refusals never read the body:

    503 busy: too many deliveries in flight, in all or for this connection (Retry-After) ·
    404 unknown connection · 503 paused (Retry-After) · 503 no key or token stored yet ·
    401 missing / bad path token (path-token mode) · 413 Content-Length over the limit · 401 no signature header (HMAC mode) ·
    413 body over the limit while streaming · 408 body not received within the body deadline
    (both stop reading and close the connection) · 401 bad signature · 400 not JSON ·
    422 the store refused this one row · 503 store unavailable (Retry-After)

Slow senders cannot lock others out: the whole body must arrive within ``body_timeout`` seconds
of the headers, and one connection holds at most ``max_in_flight_per_connection`` of the
``max_in_flight`` slots. A burst beyond either is answered 503 with Retry-After before anything is
read (each waiting delivery may hold up to ``max_body_bytes``), so memory stays bounded and
ServiceTitan redelivers later (it retries after 10, 30, 60 and 300 s); the catch-up schedule reads
the export feeds in any case. Choices where the reference is silent (documented here, settable
through ``create_app``): a known connection without a key or token answers 503, so ServiceTitan
redelivers once it is stored. Event types fieldledger does not sync are stored and acknowledged
(a refusal would only make ServiceTitan retry and list them as failed); the inbox sensor marks
them ``ignored`` with the reason.
"""

from __future__ import annotations

import asyncio
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
from receiver.envelopes import NotJson, parse
from receiver.inbox_writer import InboxWriter, StoreUnavailable, Unstorable
from receiver.metrics import UNKNOWN_CONNECTION, ReceiverMetrics
from receiver.signature import TOKEN_MIN_BITS, token_matches, verify
from resources.redaction import SENSITIVE_HEADERS
from resources.store import SyncStore
from resources.vault import VaultError

log = logging.getLogger("fieldledger.receiver")

MAX_BODY_BYTES = 1 << 20
PAUSED_RETRY_AFTER_SECONDS = 60
MAX_IN_FLIGHT = 256  # concurrent deliveries; at 1 MiB each at most 256 MiB of bodies held
MAX_IN_FLIGHT_PER_CONNECTION = MAX_IN_FLIGHT // 2  # one connection (or whoever knows its URL) never holds every slot
BODY_TIMEOUT_SECONDS = 10.0  # a whole body must arrive this soon after the headers
BUSY_RETRY_AFTER_SECONDS = 10  # ServiceTitan's first redelivery interval
UNAVAILABLE_RETRY_AFTER_SECONDS = 10
LOOKUP_TIMEOUT_SECONDS = 5.0  # a store that does not answer a settings lookup in time counts as down
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


def _kept_headers(request: Request, settings: WebhookSettings) -> dict[str, str]:
    """The headers worth keeping with the event: never a signature or anything secret-looking,
    never a value the inbox's JSON column cannot hold."""
    signatures = {h.lower() for h in settings.headers}
    kept = {}
    for name, value in request.headers.items():
        if name in SENSITIVE_HEADERS or name in signatures or any(w in name for w in _NEVER_KEPT):
            continue
        if (name in KEPT_HEADERS or name.startswith("x-servicetitan-")) and value.isprintable():
            kept[name] = value
    return kept


class WebhookReceiver:
    """The request handlers and the state they share (lookups, writer, metrics, in-flight counts)."""

    def __init__(self, store_url: str, *, secret_ttl: float, max_body_bytes: int, paused_retry_after: int,
                 writers: int, max_batch: int, max_in_flight: int = MAX_IN_FLIGHT,
                 max_in_flight_per_connection: int = MAX_IN_FLIGHT_PER_CONNECTION,
                 body_timeout: float = BODY_TIMEOUT_SECONDS):
        self.store_url = store_url
        self.max_in_flight = max_in_flight
        self.max_in_flight_per_connection = max_in_flight_per_connection
        self.body_timeout = body_timeout
        self.in_flight = 0  # touched only on the event loop, as is in_flight_by_connection
        self.in_flight_by_connection: dict[str, int] = {}
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

    # --- POST /webhooks/servicetitan/{connection}[/{token}] -----------------------------------

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
                              retry_after=BUSY_RETRY_AFTER_SECONDS, known=known, close=True)
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
        held = self.in_flight_by_connection.get(connection, 0)
        if held >= self.max_in_flight_per_connection:
            raise Refusal(503, "busy", f"Connection {connection!r} has {held} deliveries in flight already; "
                          "nothing was read or stored. Redeliver after Retry-After.",
                          retry_after=BUSY_RETRY_AFTER_SECONDS, close=True)
        self.in_flight_by_connection[connection] = held + 1
        try:
            return await self._accept_known(request, connection, settings)
        finally:
            left = self.in_flight_by_connection[connection] - 1
            if left:
                self.in_flight_by_connection[connection] = left
            else:
                del self.in_flight_by_connection[connection]

    async def _accept_known(self, request: Request, connection: str, settings: WebhookSettings) -> tuple[str, bool]:
        paused = await self._paused()
        if connection in paused:
            raise Refusal(503, "paused", f"Connection {connection!r} is paused; the event was not stored. "
                          "Redeliver after Retry-After; deliveries are accepted again once it is resumed.",
                          retry_after=self.paused_retry_after)
        self._check_configured(connection, settings)
        self._check_path_token(request, connection, settings)
        # no Content-Type check: an authentic body that parses as JSON is kept whatever it is labelled
        # (what ServiceTitan sends is not published); what is not JSON is refused 400 once read
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise Refusal(413, "too_large", f"The body is over {self.max_body_bytes} bytes; nothing was read or stored.",
                          close=True)
        signature = self._signature(request, settings)
        body = await self._read_body(request)
        if signature is not None and not verify(settings.keys, body, signature, settings.encoding):
            raise Refusal(401, "bad_signature", f"The {settings.header} header does not match the body. Check that the "
                          f"webhook key in ServiceTitan equals the connection's {settings.secret_name}.")
        try:
            hint = parse(body)
        except NotJson as exc:
            raise Refusal(400, "invalid_json", str(exc)) from None
        try:
            stored = await self.writer.add(connection, hint.event_id, hint.event, body,
                                           _kept_headers(request, settings), hint.reason)
        except Unstorable as exc:
            raise Refusal(422, "unstorable", f"The event {hint.event_id!r} cannot be stored: {exc}. Nothing was "
                          "stored; redelivering the same body will not help. The catch-up schedule still reads "
                          "the change from ServiceTitan.") from None
        except StoreUnavailable as exc:
            raise Refusal(503, "store_unavailable", f"The event could not be stored ({exc}); redeliver it later.",
                          retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
        return hint.event_id, stored

    def _check_configured(self, connection: str, settings: WebhookSettings) -> None:
        """A known connection whose key or token is not (usably) stored asks for redelivery."""
        if settings.mode == "path_token" and (not settings.keys or settings.weak_token):
            problem = "has no webhook path token yet" if not settings.keys else \
                f"has a webhook path token shorter than {TOKEN_MIN_BITS} bits"
            raise Refusal(503, "not_configured", f"Connection {connection!r} {problem}; make one with "
                          f"`fieldledger secrets rotate-webhook {connection}` and register the callback URL it "
                          "prints, then redeliver.", retry_after=self.paused_retry_after)
        if not settings.keys:
            raise Refusal(503, "not_configured", f"Connection {connection!r} has no webhook signing secret yet; "
                          f"store it with `fieldledger secrets set {connection} {settings.secret_name}`, then redeliver.",
                          retry_after=self.paused_retry_after)

    @staticmethod
    def _check_path_token(request: Request, connection: str, settings: WebhookSettings) -> None:
        token = request.path_params.get("token")
        if settings.mode != "path_token":
            if token is not None:
                raise Refusal(404, "not_found", f"Connection {connection!r} authenticates deliveries with an HMAC "
                              "signature; its callback URL is /webhooks/servicetitan/<connection name>.")
            return
        if token is None:
            raise Refusal(401, "missing_token", f"Connection {connection!r} authenticates deliveries with a secret "
                          "token in the callback URL: /webhooks/servicetitan/<connection name>/<token>.")
        if not token_matches(settings.keys, token):
            raise Refusal(401, "bad_token", "The callback URL's token is not this connection's. Register the URL "
                          f"`fieldledger secrets rotate-webhook {connection}` printed.")

    @staticmethod
    def _signature(request: Request, settings: WebhookSettings) -> str | None:
        """The signature to check (HMAC mode), from the first configured header present."""
        if settings.mode != "hmac":
            return None
        for header in settings.headers:
            value = request.headers.get(header)
            if value:
                return value
        raise Refusal(401, "missing_signature", f"The {' / '.join(settings.headers)} header is missing: sign the "
                      "raw body with HMAC-SHA256 and the connection's webhook key.")

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
            except Exception as exc:  # noqa: BLE001 - the store is down or too slow
                settings = self.lookup.stale_settings(connection)
                if settings is MISS:  # nothing recent to go on: ask for redelivery
                    log.error("looking up connection %r failed: %s", connection, exc.__class__.__name__)
                    raise Refusal(503, "store_unavailable", "The receiver cannot reach its store; redeliver later.",
                                  retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
                log.warning("looking up connection %r failed (%s); its settings of a moment ago are used",
                            connection, exc.__class__.__name__)
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
                paused = self.lookup.stale_paused()
                if paused is MISS:
                    log.error("reading paused connections failed: %s", exc.__class__.__name__)
                    raise Refusal(503, "store_unavailable", "The receiver cannot reach its store; redeliver later.",
                                  retry_after=UNAVAILABLE_RETRY_AFTER_SECONDS) from None
                log.warning("reading paused connections failed (%s); the answer of a moment ago is used",
                            exc.__class__.__name__)
        return paused

    async def _read_body(self, request: Request) -> bytes:
        """The whole body, within ``body_timeout`` seconds: a sender trickling bytes (slowloris)
        is cut off (408, connection closed) instead of holding an in-flight slot for ever."""
        try:
            return await asyncio.wait_for(self._stream_body(request), self.body_timeout)
        except TimeoutError:
            raise Refusal(408, "body_timeout", f"The body did not arrive within {self.body_timeout:g} s; reading "
                          "stopped and nothing was stored. Send the whole body at once.", close=True) from None

    async def _stream_body(self, request: Request) -> bytes:
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
               max_in_flight: int = MAX_IN_FLIGHT, max_in_flight_per_connection: int = MAX_IN_FLIGHT_PER_CONNECTION,
               body_timeout: float = BODY_TIMEOUT_SECONDS) -> Starlette:
    """The receiver as an ASGI app writing to the sync store at ``store_url`` (already migrated).
    Needs the lifespan protocol (uvicorn's default) to open and close its pools."""
    receiver = WebhookReceiver(store_url, secret_ttl=secret_ttl, max_body_bytes=max_body_bytes,
                               paused_retry_after=paused_retry_after, writers=writers, max_batch=max_batch,
                               max_in_flight=max_in_flight, max_in_flight_per_connection=max_in_flight_per_connection,
                               body_timeout=body_timeout)
    app = Starlette(
        routes=[
            Route("/webhooks/servicetitan/{connection}", receiver.receive_servicetitan, methods=["POST"]),
            Route("/webhooks/servicetitan/{connection}/{token}", receiver.receive_servicetitan, methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/metrics", receiver.render_metrics, methods=["GET"]),
        ],
        lifespan=receiver.lifespan,
        exception_handlers={HTTPException: _json_http_error},
    )
    app.state.receiver = receiver
    return app
