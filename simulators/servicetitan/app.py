"""The ServiceTitan simulator's ASGI app: auth host and API host on one origin, the rate limit,
fault injection, and the ``/_sim`` control endpoints used by tests and the demo.

Order of checks on an API call: app key (401), rate limit per app key + tenant (429), bearer
token (401), token's app and tenant (401/403), path (404), scope (403), then the resource.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from dataclasses import MISSING, replace
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.contractor import CONTRACTORS
from simulators.faults import FaultMiddleware, FaultState, parse_profile
from simulators.runtime import SimOptions
from simulators.servicetitan import api, persist
from simulators.servicetitan.auth import TokenIssuer
from simulators.servicetitan.live import LiveMode
from simulators.servicetitan.model import TenantData
from simulators.servicetitan.render import render
from simulators.servicetitan.seed import seed_tenant
from simulators.servicetitan.webhooks import WebhookHub
from simulators.servicetitan.wire import dumps, json_response, problem, problem_body, ticks_of
from simulators.snapshots import resumed_clock

REGISTRATION_SETTINGS = ("shape", "signing", "header", "encoding", "date_shift_days")  # see webhooks.py
API_PREFIXES = ("/accounting/", "/crm/", "/inventory/", "/settings/", "/pricebook/", "/jpm/", "/dispatch/")


def _patched(target, fields: dict, what: str):
    """``target`` with ``fields`` replaced; only existing str/int/None fields, values of the same kind."""
    for name, value in fields.items():
        current = getattr(target, name, MISSING) if not name.startswith("_") else MISSING
        plain = (current is None or isinstance(current, str | int)) and not isinstance(current, bool)
        if current is MISSING or not plain or not (
                value is None or isinstance(value, str | int) and not isinstance(value, bool)):
            raise ValueError(f"{what} field {name!r} cannot be set to {value!r}")
        setattr(target, name, value)
    return target


def patch_row(row, body: dict) -> None:
    """Test control for bad input: ``{"set": {field: value}}`` edits a row's plain fields (names,
    numbers, cents); ``{"items": [{field: value}, ...]}`` keeps an invoice's first len(items)
    items, each edited (``[]`` leaves it with none); ``{"lines": [...]}`` does the same for a bill's
    or PO's lines (qty in hundredths, cost in cents). Totals are not recomputed: set them too
    (a bill's billAmount is computed from its lines)."""
    _patched(row, body.get("set") or {}, "record")
    for collection in ("items", "lines"):
        if collection not in body:
            continue
        current = getattr(row, collection, None)
        if current is None or not isinstance(body[collection], list) or len(body[collection]) > len(current):
            raise ValueError(f"{collection}: a list no longer than the record's {collection}")
        kept = current[:len(body[collection])]
        setattr(row, collection, [_patched(replace(entry), patch, collection[:-1])
                                  for entry, patch in zip(kept, body[collection], strict=True)])


class RequestLimiter:
    """Sliding one-second window per (app key, tenant): the documented 60 calls per second."""

    def __init__(self, per_second: int):
        self.per_second = per_second
        self._windows: dict[tuple[str, int], deque[float]] = {}
        self._lock = threading.Lock()
        self.rejected = 0

    def check(self, app_key: str, tenant: int) -> int | None:
        """None when allowed, else the whole seconds to wait."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault((app_key, tenant), deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.per_second:
                self.rejected += 1
                return 1
            window.append(now)
        return None


class ServiceTitanSim:
    """State and app of one simulator instance (two tenants by default)."""

    def __init__(self, options: SimOptions):
        self.options = options
        opts = options.options
        self.persistence, saved = persist.open_for(self, options)  # (None, None): memory only
        self.clock = resumed_clock(options, saved)
        now = self.seed_now = saved.state["seed_now"] if saved else self.clock.now()
        wanted = opts.get("contractors")
        contractors = [c for c in CONTRACTORS if not wanted or c.key in wanted or c.tenant_id in wanted]
        self.tenants: dict[int, TenantData] = {
            c.tenant_id: seed_tenant(c, options.seed, now, opts) for c in contractors
        }
        self.by_app_key = {t.credentials.app_key: t for t in self.tenants.values()}
        self.faults = FaultState(options.profile, seed=options.seed)
        self.issuer = TokenIssuer(
            self.tenants, self.clock, options.seed, lifetime=int(opts.get("token_lifetime_seconds", 900)),
            token_requests_per_minute=int(opts.get("token_requests_per_minute", 30)),
            denied_scopes=opts.get("denied_scopes"),
        )
        self.issuer.revoke_after = options.profile.token_revoke_after_seconds
        self.limiter = RequestLimiter(int(opts.get("rate_limit_per_second", 60)))
        self.latency_ms = float(options.latency_ms)
        self.hub = WebhookHub(self.faults, options.time_factor, opts,
                              {t.tenant_id: t.contractor.key for t in self.tenants.values()})
        self.live = LiveMode(self.tenants, self.clock, options.seed, self.hub.publish, options.live_rate_per_minute)
        self._rng = random.Random(options.seed)
        self._stats_lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.by_resource: dict[str, int] = {}
        self.app = self._build_app()
        if saved is not None:
            persist.restore(self, saved)

    # --- Simulator contract ---------------------------------------------------------------------
    def info(self, base_url: str) -> dict:
        base_url = base_url.rstrip("/")
        tenants = {
            t.contractor.key: {"tenant": t.tenant_id, "client_id": t.credentials.client_id,
                               "client_secret": t.credentials.client_secret, "app_key": t.credentials.app_key,
                               "webhook_secret": t.credentials.webhook_secret,
                               "webhook": self.hub.defaults(t.tenant_id, t.contractor.key)}
            for t in self.tenants.values()
        }
        first = next(iter(tenants.values()))
        return {"base_url": base_url, "auth_url": base_url, "tenant": first["tenant"],
                "client_id": first["client_id"], "client_secret": first["client_secret"],
                "app_key": first["app_key"], "webhook_secret": first["webhook_secret"], "tenants": tenants}

    def start_background(self, base_url: str) -> None:
        self.hub.start()
        if self.options.live:
            self.live.start()

    def stop_background(self) -> None:
        self.live.stop()
        self.hub.stop()

    # --- app --------------------------------------------------------------------------------------
    def _build_app(self):
        routes = [
            Route("/connect/token", self.token, methods=["POST"]),
            Route("/{namespace}/v2/tenant/{tenant}/{rest:path}", self.api, methods=["GET"]),
            Route("/_sim/stats", self.sim_stats, methods=["GET"]),
            Route("/_sim/faults", self.sim_faults, methods=["PUT"]),
            Route("/_sim/tokens/revoke", self.sim_revoke, methods=["POST"]),
            Route("/_sim/tokens/issued", self.sim_issued_tokens, methods=["GET"]),
            Route("/_sim/clock", self.sim_clock, methods=["GET", "POST"]),
            Route("/_sim/webhooks", self.sim_webhooks, methods=["GET", "POST"]),
            Route("/_sim/webhooks/deliveries", self.sim_deliveries, methods=["GET"]),
            Route("/_sim/webhooks/{reg_id:int}", self.sim_webhook_delete, methods=["DELETE", "PATCH"]),
            Route("/_sim/live/tick", self.sim_tick, methods=["POST"]),
            Route("/_sim/records/{tenant:int}/{kind}/{record_id:int}", self.sim_record, methods=["GET", "DELETE"]),
            Route("/_sim/records/{tenant:int}/{kind}/{record_id:int}/touch", self.sim_touch, methods=["POST"]),
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})
        faulted = FaultMiddleware(app, self.faults, self._render_fault, exempt=lambda p: not p.startswith(API_PREFIXES),
                                  throttle_renderer=self._render_throttle)
        return self._outer(faulted)

    def _outer(self, inner):
        async def app(scope, receive, send):
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            path = scope["path"]
            if self.latency_ms > 0 and path.startswith(API_PREFIXES):
                await asyncio.sleep(self.latency_ms / 1000.0)

            async def counting_send(message):
                if message["type"] == "http.response.start" and not path.startswith("/_sim"):
                    with self._stats_lock:
                        status = message["status"]
                        self.by_status[status] = self.by_status.get(status, 0) + 1
                await send(message)

            await inner(scope, receive, counting_send)
        return app

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        title = "Not Found" if exc.status_code == 404 else exc.detail or "Request failed"
        return problem(exc.status_code, title)

    def _render_fault(self, status: int, message: str):
        with self._stats_lock:
            html = status == 503 and self._rng.random() < float(self.options.options.get("html_503_share", 0.3))
        if html:
            body = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
                    b"<h1>Service Unavailable</h1><p>The service is temporarily unavailable.</p></body></html>")
            return status, [(b"content-type", b"text/html")], body
        return status, [(b"content-type", b"application/problem+json")], dumps(problem_body(status, message))

    def _render_throttle(self, status: int, message: str):
        body = problem_body(429, "Rate limit is exceeded. Try again in 1 seconds.")
        return 429, [(b"content-type", b"application/problem+json"), (b"retry-after", b"1")], dumps(body)

    # --- auth host --------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return json_response({"error": "invalid_request",
                                  "error_description": "Use application/x-www-form-urlencoded."}, 400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type")
        client_id = str(form.get("client_id") or "")
        wait = self.issuer.throttled(client_id or "anonymous")
        if wait is not None:
            return json_response({"error": "slow_down", "error_description": "Too many token requests; cache the "
                                  "access token for its lifetime."}, 429, {"Retry-After": str(int(wait + 0.999))})
        if grant_type != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        issued = self.issuer.issue(client_id, str(form.get("client_secret") or ""))
        if issued is None:
            return json_response({"error": "invalid_client"}, 400)
        return json_response(issued, 200, {"Cache-Control": "no-store"})

    # --- API host ---------------------------------------------------------------------------------
    async def api(self, request: Request) -> Response:
        app_key = request.headers.get("st-app-key") or request.query_params.get("servicetitanapplicationkey")
        if not app_key:
            return problem(401, "Application key not present, check ST-App-Key header value.")
        if app_key not in self.by_app_key:
            return problem(401, "Application key is not valid, check ST-App-Key header value.")
        try:
            tenant = int(request.path_params["tenant"])
        except ValueError:
            return problem(404, "Not Found")
        retry = self.limiter.check(app_key, tenant)
        if retry is not None:
            return problem(429, f"Rate limit is exceeded. Try again in {retry} seconds.",
                           headers={"Retry-After": str(retry)})
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        if not token:
            return problem(401, "Authorization has been denied for this request.",
                           headers={"WWW-Authenticate": "Bearer"})
        grant, why = self.issuer.verify(token)
        if grant is None:
            if "revoked" in why:
                self.faults.count("token_revoked")
            return problem(401, why, headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{why}"'})
        if grant.app_key != app_key:
            return problem(401, "The application key does not match the application the token was issued to.")
        if grant.tenant != tenant:
            return problem(403, f"The access token does not grant access to tenant {tenant}.")
        route = api.resolve(request.path_params["namespace"], request.path_params["rest"])
        if route is None:
            return problem(404, "Not Found")
        if route.resource.scope not in grant.scopes:
            return problem(403, f"The access token lacks the scope {route.resource.scope}.")
        data = self.tenants[tenant]
        key = f"{route.resource.path}:{route.mode}"
        with self._stats_lock:
            self.by_resource[key] = self.by_resource.get(key, 0) + 1
        params = request.query_params
        opts = self.options.options
        try:
            if route.mode == "one":
                record = await run_in_threadpool(api.one, data, route.resource, route.record_id)
                if record is None:
                    return problem(404, f"{route.resource.label} with ID {route.record_id} not found.")
                return json_response(record)
            if route.mode == "export":
                now = ticks_of(self.clock.now())
                body = await run_in_threadpool(api.export_page, data, route.resource, params, opts, now)
                return json_response(body)
            body = await run_in_threadpool(api.list_page, data, route.resource, params, opts)
            return json_response(body["data"] if route.mode == "bare" else body)
        except api.BadRequest as exc:
            return problem(400, "One or more validation errors occurred.", exc.errors)

    # --- control endpoints --------------------------------------------------------------------------
    async def sim_stats(self, request: Request) -> Response:
        with self._stats_lock:
            by_status = {str(k): v for k, v in sorted(self.by_status.items())}
            by_resource = dict(self.by_resource)
        records = {}
        for t in self.tenants.values():
            with t.lock:
                records[str(t.tenant_id)] = {k: len(v) for k, v in t.tables.items()}
        return json_response({
            "requests": {"total": sum(by_status.values()), "by_status": by_status, "by_resource": by_resource},
            "rate_limited": self.limiter.rejected, "tokens": dict(self.issuer.stats), "faults": self.faults.snapshot(),
            "profile": self.faults.profile.__dict__, "webhooks": self.hub.snapshot(), "live_changes": self.live.changes,
            "records": records, "now": self.clock.now().isoformat(),
        })

    async def sim_faults(self, request: Request) -> Response:
        body = await request.json()
        try:
            profile = parse_profile(body.get("profile") or "")
            for key, value in (body.get("set") or {}).items():
                profile = replace(profile, **{key: type(getattr(profile, key))(value)})
        except (ValueError, TypeError, AttributeError) as exc:
            return json_response({"error": str(exc)}, 400)
        self.faults.profile = profile
        self.issuer.revoke_after = profile.token_revoke_after_seconds
        if "latency_ms" in body:
            self.latency_ms = float(body["latency_ms"])
        return json_response({"profile": profile.__dict__, "latency_ms": self.latency_ms})

    async def sim_revoke(self, request: Request) -> Response:
        return json_response({"revoked": self.issuer.revoke_all()})

    async def sim_issued_tokens(self, request: Request) -> Response:
        """Every access token handed out: tests search logs and storage for them."""
        with self.issuer._lock:
            return json_response({"tokens": list(self.issuer.issued_tokens)})

    async def sim_clock(self, request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            self.clock.advance(float(body.get("advance_seconds", 0)))
        return json_response({"now": self.clock.now().isoformat()})

    async def sim_webhooks(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response([r.public() for r in self.hub.registrations()])
        body = await request.json()
        try:
            tenant = int(body["tenant"])
            data = self.tenants[tenant]
            reg = self.hub.register(tenant, str(body["url"]), body.get("secret"), body.get("events"),
                                    data.credentials.webhook_secret, data.contractor.key,
                                    **{k: body.get(k) for k in REGISTRATION_SETTINGS})
        except (KeyError, ValueError, TypeError) as exc:
            return json_response({"error": f"invalid registration: {exc}"}, 400)
        return json_response({"id": reg.id, "secret": reg.secret, **reg.public()}, 201)

    async def sim_webhook_delete(self, request: Request) -> Response:
        if request.method == "PATCH":  # a portal edit: {"secret", "shape", "signing", "header", ...}
            body = await request.json()
            try:
                reg = self.hub.update(request.path_params["reg_id"], {k: body.get(k) for k in
                                                                     ("secret", *REGISTRATION_SETTINGS)})
            except (ValueError, TypeError) as exc:
                return json_response({"error": f"invalid change: {exc}"}, 400)
            if reg is None:
                return json_response({"error": "no such webhook"}, 404)
            return json_response(reg.public())
        if not self.hub.unregister(request.path_params["reg_id"]):
            return json_response({"error": "no such webhook"}, 404)
        return Response(status_code=204)

    async def sim_deliveries(self, request: Request) -> Response:
        return json_response({**self.hub.snapshot(), "recent": self.hub.log[-50:]})

    async def sim_tick(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        try:
            tenant = int(body["tenant"]) if body.get("tenant") is not None else None
            if tenant is not None and tenant not in self.tenants:
                raise ValueError(f"unknown tenant {tenant}")
            events = await run_in_threadpool(self.live.tick, int(body.get("count", 1)), tenant, body.get("eventTypes"))
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"events": events})

    def _find(self, request: Request):
        tenant = self.tenants.get(request.path_params["tenant"])
        kind = request.path_params["kind"]
        if tenant is None or kind not in tenant.tables:
            return None, None, None
        return tenant, kind, tenant.tables[kind].rows.get(request.path_params["record_id"])

    async def sim_record(self, request: Request) -> Response:
        data, kind, row = self._find(request)
        if row is None:
            return json_response({"error": "no such record"}, 404)
        with data.lock:
            if request.method == "DELETE":
                row.deleted = True
                row.active = False
                data.touch(kind, row, ticks_of(self.clock.now()))
            record = render(data, kind, row, export=True)
        return json_response({"record": record, "deleted": row.deleted})

    async def sim_touch(self, request: Request) -> Response:
        data, kind, row = self._find(request)
        if row is None:
            return json_response({"error": "no such record"}, 404)
        body = await request.json() if await request.body() else {}
        with data.lock:
            if "active" in body:
                row.active = bool(body["active"])
            if kind == "payments" and "memo" in body:
                row.memo = str(body["memo"])
            try:
                patch_row(row, body)
            except (TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)
            data.touch(kind, row, ticks_of(self.clock.now()))
            record = render(data, kind, row, export=True)
        return json_response({"record": record})


