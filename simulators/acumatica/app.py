"""The simulated Acumatica instance as an ASGI app: discovery (/entity), OAuth at
/identity/connect/token (+ revocation, discovery document), cookie login/logout, the contract-based
REST routes /entity/{Endpoint}/{Version}/{Entity}[/{keys}|/{id}|/{Action}[/status/{id}]], the
license gate, fault injection, and the /_sim control endpoints."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.acumatica.license import Declined, RequestGate
from simulators.acumatica.odata import FilterError
from simulators.acumatica.openapi import ad_hoc_schema, openapi_document
from simulators.acumatica.periods import MODULE_FLAGS, find_period
from simulators.acumatica.rules import ApiError, Invalid, Rules, not_found, px_error
from simulators.acumatica.schema import ENTITIES, WireError, unwrap_entity
from simulators.acumatica.sessions import SeatLimit, SeatTable, Session
from simulators.acumatica.store import Renderer, Tenant, parse_list
from simulators.faults import FaultMiddleware, FaultState, json_error, parse_profile
from simulators.runtime import SimClock

JSON_TYPE = "application/json; charset=utf-8"
NOT_LOGGED_IN = {"message": "You are not logged in."}


class JsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def error_response(exc: ApiError) -> Response:
    return JsonResponse(exc.body, status_code=exc.status)


def bad_request(key: str, message: str) -> Response:
    return JsonResponse({"message": "The request is invalid.", "modelState": {key: [message]}}, status_code=400)


def routing_404(path: str) -> Response:
    return JsonResponse({"message": f"No HTTP resource was found that matches the request URI '{path}'."},
                        status_code=404)


class Instance:
    """One simulated Acumatica instance (one tenant) and its configuration."""

    def __init__(self, *, tenant: Tenant, tenant_name: str, credentials: dict, versions: list[str],
                 clock: SimClock, seats: SeatTable, gate: RequestGate, faults: FaultState, settings: dict):
        self.tenant = tenant
        self.tenant_name = tenant_name
        self.credentials = credentials
        self.versions = versions
        self.clock = clock
        self.seats = seats
        self.gate = gate
        self.faults = faults
        self.settings = settings
        self.zone = ZoneInfo(str(settings.get("acumatica_time_zone") or settings.get("time_zone") or "UTC"))
        self.rules = Rules(tenant, clock.now, settings, zone=self.zone)
        # the connected application's flows (SM303010): off = "Resource Owner Password Credentials" not allowed
        self.allow_password_grant = str(settings.get("password_grant", "on")).lower() not in ("off", "false", "0")
        self.status_counts: Counter[int] = Counter()
        self.requests = 0
        self._lock = threading.Lock()

    # --- helpers ------------------------------------------------------------------------------
    def seat_limit_error(self) -> Response:
        status = int(self.settings.get("seat_limit_status", 500))
        body = {"message": "An error has occurred.", "exceptionMessage": "API Login Limit",
                "exceptionType": "PX.Data.PXException", "stackTrace": None}
        return JsonResponse(body, status_code=status)

    def zone_token(self) -> str:
        """The Locale cookie's TimeZone: 'GMTM0700A' (GMT minus 7 h) as observed; 'E' east of GMT."""
        offset = int(self.clock.now().astimezone(self.zone).utcoffset().total_seconds() // 60)
        side = "E" if offset >= 0 else "M"
        return f"GMT{side}{abs(offset) // 60:02d}{abs(offset) % 60:02d}{'U' if offset == 0 else 'A'}"

    def authenticate(self, request: Request) -> Session | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return self.seats.authenticate_bearer(auth[7:].strip())
        sid = request.cookies.get("ASP.NET_SessionId")
        if sid and request.cookies.get(".ASPXAUTH"):
            return self.seats.authenticate_cookie(sid)
        return None

    def _refuse_seat(self) -> bool:
        if self.faults.chance(self.faults.profile.seat_limit_rate):
            self.faults.count("seat_limit")
            return True
        return False

    # --- discovery ----------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        return JsonResponse({
            "version": {"acumaticaBuildVersion": "24.209.0015", "databaseVersion": "24.209.0015"},
            "endpoints": [{"name": "Default", "version": v, "href": f"/entity/Default/{v}/"} for v in self.versions],
        })

    async def openid_configuration(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JsonResponse({
            "issuer": f"{base}/identity", "token_endpoint": f"{base}/identity/connect/token",
            "authorization_endpoint": f"{base}/identity/connect/authorize",
            "revocation_endpoint": f"{base}/identity/connect/revocation",
            "grant_types_supported": ["authorization_code", "implicit", "password", "refresh_token"],
            "scopes_supported": ["api", "offline_access", "api:concurrent_access", "openid", "email", "profile"],
        })

    # --- OAuth --------------------------------------------------------------------------------
    async def _form(self, request: Request) -> dict[str, str]:
        body = (await request.body()).decode()
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _client_ok(self, form: dict[str, str]) -> bool:
        return (form.get("client_id") == self.credentials["client_id"]
                and form.get("client_secret") == self.credentials["client_secret"])

    async def token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JsonResponse({"error": "invalid_request"}, status_code=400)
        form = await self._form(request)
        grant = form.get("grant_type", "")
        if grant not in ("password", "refresh_token", "authorization_code"):
            return JsonResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not self._client_ok(form):
            return JsonResponse({"error": "invalid_client"}, status_code=400)
        if grant == "authorization_code":
            return JsonResponse({"error": "invalid_grant"}, status_code=400)
        if grant == "password":
            if not self.allow_password_grant:
                return JsonResponse({"error": "unauthorized_client"}, status_code=400)
            if (form.get("username") != self.credentials["username"]
                    or form.get("password") != self.credentials["password"]):
                return JsonResponse({"error": "invalid_grant", "error_description": "invalid_username_or_password"},
                                    status_code=400)
            scopes = form.get("scope", "").split()
            if "api" not in scopes:
                return JsonResponse({"error": "invalid_scope"}, status_code=400)
            try:
                session = self.seats.open_session(form["username"], "oauth", form["client_id"], self._refuse_seat())
            except SeatLimit:
                return self.seat_limit_error()
            return self._token_answer(session, "offline_access" in scopes)
        session = self.seats.session_for_refresh(form.get("refresh_token", ""))
        if session is None:
            return JsonResponse({"error": "invalid_grant"}, status_code=400)
        if session.ended == "idle":
            try:
                session = self.seats.reopen_for_refresh(session, self._refuse_seat())
            except SeatLimit:
                return self.seat_limit_error()
        elif session.ended:
            return JsonResponse({"error": "invalid_grant"}, status_code=400)
        return self._token_answer(session, True)

    def _token_answer(self, session: Session, offline: bool) -> Response:
        tok, refresh = self.seats.issue_token(session, offline)
        body: dict[str, Any] = {"access_token": tok.token, "expires_in": int(self.seats.token_lifetime),
                                "token_type": "Bearer", "scope": "api offline_access" if offline else "api"}
        if refresh:
            body["refresh_token"] = refresh
        return JsonResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def revocation(self, request: Request) -> Response:
        form = await self._form(request)
        if not self._client_ok(form):
            return JsonResponse({"error": "invalid_client"}, status_code=400)
        token = form.get("token", "")
        session = self.seats.session_for_refresh(token) or self.seats.session_of_token(token)
        if session is not None:
            self.seats.end_session(session.id, "logout")
            if session.refresh_token:
                self.seats.revoke_refresh(session.refresh_token)
        return Response(status_code=200)

    # --- cookie login -------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        raw = await request.body()
        try:
            if "application/x-www-form-urlencoded" in ctype:
                body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                body = json.loads(raw or b"{}")
        except ValueError:
            return bad_request("credentials", "The request body could not be read.")
        if not isinstance(body, dict):
            return bad_request("credentials", "The request body could not be read.")
        tenant = body.get("tenant") or body.get("company")
        if tenant and tenant.casefold() != self.tenant_name.casefold():
            return error_response(px_error("A proper company ID cannot be determined.",
                                           "PX.Data.PXUndefinedCompanyException"))
        if body.get("name") != self.credentials["username"] or body.get("password") != self.credentials["password"]:
            return error_response(px_error("Error: Invalid credentials. Please try again."))
        try:
            session = self.seats.open_session(body["name"], "cookie", force_refuse=self._refuse_seat())
        except SeatLimit:
            return self.seat_limit_error()
        resp = Response(status_code=204)
        resp.set_cookie(".ASPXAUTH", uuid.uuid4().hex.upper() * 2, path="/", httponly=True)
        resp.set_cookie("ASP.NET_SessionId", session.id, path="/", httponly=True)
        resp.set_cookie("CompanyID", self.tenant_name, path="/")
        resp.set_cookie("Locale", f"Culture=en-US&TimeZone={self.zone_token()}", path="/")
        resp.set_cookie("UserBranch", "1", path="/")
        return resp

    async def logout(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            session = self.seats.session_of_token(auth[7:].strip())
            if session is not None:
                self.seats.end_session(session.id, "logout")
        elif request.cookies.get("ASP.NET_SessionId"):
            self.seats.end_session(request.cookies["ASP.NET_SessionId"], "logout")
        resp = Response(status_code=204)
        resp.headers.append("set-cookie", ".ASPXAUTH=; expires=Tue, 12-Oct-1999 00:00:00 GMT; path=/; HttpOnly")
        return resp

    # --- the contract-based API ---------------------------------------------------------------
    async def entity_api(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        version = request.path_params["version"]
        if endpoint.casefold() != "default" or version not in self.versions:
            return routing_404(str(request.url))
        parts = [p for p in request.path_params["rest"].split("/") if p]
        if not parts:
            return routing_404(str(request.url))
        if parts == ["swagger.json"] and request.method == "GET":
            if self.authenticate(request) is None:
                return JsonResponse(NOT_LOGGED_IN, status_code=401)
            return JsonResponse(openapi_document(version, str(request.base_url).rstrip("/")))
        entity = next((name for name in ENTITIES if name.casefold() == parts[0].casefold()), None)
        if entity is None:
            return routing_404(str(request.url))
        if self.authenticate(request) is None:
            return JsonResponse(NOT_LOGGED_IN, status_code=401)
        base = f"/entity/Default/{version}"
        try:
            self.rules.settle()
            method = request.method
            if len(parts) == 1:
                if method == "GET":
                    return self.get_list(request, entity, base)
                if method == "PUT":
                    return await self.put(request, entity, base)
                return JsonResponse({"message": "The requested resource does not support http method "
                                                f"'{method}'."}, status_code=405)
            if method == "GET" and len(parts) == 2 and parts[1] == "$adHocSchema":
                return JsonResponse(ad_hoc_schema(ENTITIES[entity], base))
            if method == "POST" and len(parts) == 2:
                return await self.invoke_action(request, entity, parts[1], base)
            if method == "GET" and len(parts) == 4 and parts[2].casefold() == "status":
                return self.action_status(entity, parts[1], parts[3], base)
            if method in ("GET", "DELETE"):
                record = self._locate(entity, parts[1:])
                if method == "DELETE":
                    self.rules.delete(entity, record)
                    return Response(status_code=204)
                return JsonResponse(self._renderer(request, base).top(ENTITIES[entity], record))
            return routing_404(str(request.url))
        except ApiError as exc:
            return error_response(exc)

    def _renderer(self, request: Request, base: str, expand_all: bool = False, edef=None) -> Renderer:
        expand = parse_list(request.query_params.get("$expand"))
        if expand_all and edef is not None:
            expand += list(edef.details)
        select = parse_list(request.query_params.get("$select")) or None
        return Renderer(base, f"{base}/files", expand, select, self.zone)

    def _locate(self, entity: str, keys: list[str]) -> dict:
        rec = None
        if len(keys) == 1 and re.fullmatch(r"[0-9a-fA-F-]{36}", keys[0]):
            rec = self.tenant.by_id(entity, keys[0].lower())
        if rec is None:
            if len(keys) == 1 and "|" in keys[0]:
                keys = keys[0].split("|")
            rec = self.tenant.by_keys(entity, keys)
        if rec is None:
            raise not_found()
        return rec

    def get_list(self, request: Request, entity: str, base: str) -> Response:
        q = request.query_params
        try:
            top = int(q["$top"]) if "$top" in q else None
            skip = int(q["$skip"]) if "$skip" in q else None
            if (top is not None and top < 0) or (skip is not None and skip < 0):
                raise ValueError
        except ValueError:
            return bad_request("$top", "The $top and $skip parameters must be non-negative integers.")
        if entity == "CompaniesStructure":
            return JsonResponse([self._companies(request, base)])
        try:
            rows = self.tenant.query(entity, q.get("$filter"), top, skip)
        except FilterError as exc:
            return bad_request("$filter", f"The $filter expression is invalid: {exc}")
        renderer = self._renderer(request, base)
        return JsonResponse([renderer.top(ENTITIES[entity], r, i + 1) for i, r in enumerate(rows)])

    def _companies(self, request: Request, base: str) -> dict:
        record = {"id": str(uuid.UUID(int=1)), "Results": [dict(b, id=str(uuid.UUID(int=100 + i)))
                                                           for i, b in enumerate(self.tenant.branches)]}
        return self._renderer(request, base).top(ENTITIES["CompaniesStructure"], record)

    async def _json_body(self, request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise WireError("", "The request body should not be empty.")
        try:
            return json.loads(raw, parse_float=Decimal)
        except ValueError as exc:
            raise WireError("entity", f"The request body is not valid JSON: {exc}") from exc

    async def put(self, request: Request, entity: str, base: str) -> Response:
        edef = ENTITIES[entity]
        try:
            body = await self._json_body(request)
            if entity == "CompaniesStructure":
                return JsonResponse(self._companies(request, base))
            data = unwrap_entity(edef, body, "entity", bool(self.settings.get("reject_unknown_fields", True)),
                                 self.zone)
        except WireError as exc:
            return bad_request(exc.key, str(exc))
        try:
            record = self.rules.put(entity, data, request.headers.get("if-match"),
                                    request.headers.get("if-none-match"))
        except Invalid as exc:
            renderer = self._renderer(request, base, expand_all=True, edef=edef)
            return JsonResponse(renderer.top(edef, exc.record, errors=exc.errors), status_code=422)
        return JsonResponse(self._renderer(request, base).top(edef, record))

    async def invoke_action(self, request: Request, entity: str, action: str, base: str) -> Response:
        edef = ENTITIES[entity]
        canonical = next((a for a in edef.actions if a.casefold() == action.casefold()), None)
        if canonical is None:
            return JsonResponse({"message": f"The action '{action}' does not exist for the entity '{entity}'."},
                                status_code=404)
        try:
            body = await self._json_body(request)
            if not isinstance(body, dict):
                raise WireError("invocation", "The action invocation must be a JSON object.")
            wire_entity = next((v for k, v in body.items() if k.casefold() == "entity"), None)
            if wire_entity is None:
                raise WireError("invocation.entity", "The 'entity' of the action invocation is missing.")
            data = unwrap_entity(edef, wire_entity, "invocation.entity", strict_unknown=False, zone=self.zone)
        except WireError as exc:
            return bad_request(exc.key, str(exc))
        if data.get("id"):
            record = self.tenant.by_id(entity, data["id"])
        elif all(data.get(k) for k in edef.keys):
            record = self.tenant.by_keys(entity, [data[k] for k in edef.keys])
        else:
            record = None
        if record is None:
            raise not_found()
        seconds = float(self.settings.get("release_seconds", 1.0))
        op = self.rules.start_action(entity, canonical, record, seconds)
        location = f"{base}/{entity}/{canonical}/status/{op.id}"
        if seconds <= 0:
            self.rules.settle()
            if op.error:
                raise px_error(op.error)
            return Response(status_code=204, headers={"Location": f"{base}/{entity}/{record['id']}"})
        return Response(status_code=202, headers={"Location": location})

    def action_status(self, entity: str, action: str, op_id: str, base: str) -> Response:
        op = self.rules.operations.get(op_id.lower())
        if op is None or op.entity != entity or op.action.casefold() != action.casefold():
            return JsonResponse({"message": f"The operation '{op_id}' was not found."}, status_code=404)
        self.rules.settle()
        if not op.applied:
            return Response(status_code=202, headers={"Location": f"{base}/{entity}/{op.action}/status/{op.id}"})
        if op.error:
            raise px_error(op.error)
        return Response(status_code=204, headers={"Location": f"{base}/{entity}/{op.record_id}"})

    # --- /_sim --------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self._lock:
            by_status = {str(k): v for k, v in sorted(self.status_counts.items())}
            requests = self.requests
        seats = self.seats.snapshot()
        gate = self.gate.snapshot()
        injected = self.faults.snapshot()
        return {
            "requests": requests,
            "by_status": by_status,
            "throttled_429": by_status.get("429", 0),
            "faults_injected": injected,
            "seats_in_use": seats["in_use"],
            "seats_peak": seats["peak_in_use"],
            "seats": seats["seats"],
            "sign_ins": seats["sign_ins"],
            "sign_ins_refused": seats["refused"],
            "license": gate,
            "peak_concurrency": gate["peak_concurrency"],
            "requests_per_minute": gate["requests_last_minute"],
            "sim_time": self.clock.now().isoformat(),
        }

    async def sim_stats(self, request: Request) -> Response:
        return JsonResponse(self.stats())

    async def sim_faults(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        try:
            self.faults.profile = parse_profile(body.get("profile") or "")
        except ValueError as exc:
            return JsonResponse({"error": str(exc)}, status_code=400)
        self.seats.revoke_after = self.faults.profile.token_revoke_after_seconds
        return JsonResponse({"profile": self.faults.profile.__dict__})

    async def sim_revoke(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        n = self.seats.revoke_all(end_sessions=bool(body.get("end_sessions")),
                                  refresh_tokens=bool(body.get("refresh_tokens")))
        self.faults.count("tokens_revoked", n)
        return JsonResponse({"revoked": n})

    async def sim_seats(self, request: Request) -> Response:
        return JsonResponse(self.seats.snapshot())

    def _sim_document(self, body: dict) -> tuple[str, dict]:
        """The document a /_sim person-action names: {"entity": "Invoice", "keys": ["Invoice", "010001"]}."""
        entity = next((name for name in ("Invoice", "Payment", "Bill")
                       if name.casefold() == str(body.get("entity", "")).casefold()), None)
        keys = body.get("keys")
        if entity is None or not isinstance(keys, list) or len(keys) != 2:
            raise ApiError(400, 'Send {"entity": "Invoice" | "Payment" | "Bill", "keys": [type, reference number]}.')
        record = self.tenant.by_keys(entity, [str(k) for k in keys])
        if record is None:
            raise not_found()
        return entity, record

    async def sim_void(self, request: Request) -> Response:
        """A person voids a released document on its screen (there is no API action for invoices
        and bills; payments also have VoidPayment)."""
        try:
            entity, record = self._sim_document(json.loads(await request.body() or b"{}"))
            voided = self.rules.void(entity, record)
        except ApiError as exc:
            return error_response(exc)
        return JsonResponse({"entity": entity, "ReferenceNbr": voided["ReferenceNbr"], "Status": voided["Status"]})

    async def sim_delete(self, request: Request) -> Response:
        """A document disappears from the tenant whatever its status (see Rules.remove)."""
        try:
            entity, record = self._sim_document(json.loads(await request.body() or b"{}"))
        except ApiError as exc:
            return error_response(exc)
        self.rules.remove(entity, record)
        return JsonResponse({"entity": entity, "ReferenceNbr": record["ReferenceNbr"], "deleted": True})

    async def sim_password_grant(self, request: Request) -> Response:
        """An administrator changes the connected application's flow: {"enabled": false}."""
        body = json.loads(await request.body() or b"{}")
        self.allow_password_grant = bool(body.get("enabled", True))
        return JsonResponse({"enabled": self.allow_password_grant})

    async def sim_period(self, request: Request) -> Response:
        """A person closes or reopens a financial period: {"period": "112026", "status": "Open",
        "AR": true, "AP": false} (MMYYYY; module flags and status each optional)."""
        body = json.loads(await request.body() or b"{}")
        with self.tenant.lock:
            row = find_period(self.tenant.records["FinancialPeriod"], str(body.get("period", "")))
            if row is None:
                return JsonResponse({"error": f"no financial period {body.get('period')!r}"}, status_code=404)
            if body.get("status"):
                row["Status"] = str(body["status"])
            for module, flag in MODULE_FLAGS.items():
                if module in body:
                    row[flag] = bool(body[module])
            year = next(y for y in self.tenant.records["FinancialPeriod"].values() if row in y["Details"])
            year["LastModifiedDateTime"] = self.clock.now()
        return JsonResponse({k: row[k] for k in ("FinancialPeriodID", "Status", *MODULE_FLAGS.values())})

    async def sim_clock(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        self.clock.advance(float(body.get("advance_seconds", 0)))
        return JsonResponse({"now": self.clock.now().isoformat()})


class _Gate:
    """ASGI middleware: the license's request queue for /entity paths (logout bypasses it)."""

    def __init__(self, app, instance: Instance):
        self.app = app
        self.instance = instance

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/entity") or path.startswith("/entity/auth/logout"):
            await self.app(scope, receive, send)
            return
        gate = self.instance.gate
        try:
            await gate.acquire()
        except Declined:
            # Undocumented body; IIS's text/plain answer was observed (reference §1.1, §6).
            body = b"The custom error module does not recognize this error."
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()


class _Counter:
    """Outermost middleware: counts answered statuses for /_sim/stats."""

    def __init__(self, app, instance: Instance):
        self.app = app
        self.instance = instance

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        inst = self.instance

        async def counting_send(message):
            if message["type"] == "http.response.start":
                with inst._lock:
                    inst.requests += 1
                    inst.status_counts[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


def _render_fault(status: int, message: str):
    if status == 429:
        return status, [(b"content-type", b"text/plain; charset=utf-8")], \
            b"The custom error module does not recognize this error."
    return json_error(status, {"message": "An error has occurred.", "exceptionMessage": message,
                               "exceptionType": "System.Web.HttpException", "stackTrace": None})


def create_app(instance: Instance) -> Any:
    routes = [
        Route("/entity", instance.discovery, methods=["GET"]),
        Route("/entity/auth/login", instance.login, methods=["POST"]),
        Route("/entity/auth/logout", instance.logout, methods=["POST"]),
        Route("/identity/connect/token", instance.token, methods=["POST"]),
        Route("/identity/connect/revocation", instance.revocation, methods=["POST"]),
        Route("/identity/.well-known/openid-configuration", instance.openid_configuration, methods=["GET"]),
        Route("/entity/{endpoint}/{version}/{rest:path}", instance.entity_api,
              methods=["GET", "PUT", "POST", "DELETE", "PATCH"]),
        Route("/_sim/stats", instance.sim_stats, methods=["GET"]),
        Route("/_sim/faults", instance.sim_faults, methods=["PUT"]),
        Route("/_sim/revoke-tokens", instance.sim_revoke, methods=["POST"]),
        Route("/_sim/seats", instance.sim_seats, methods=["GET"]),
        Route("/_sim/clock", instance.sim_clock, methods=["POST"]),
        Route("/_sim/password_grant", instance.sim_password_grant, methods=["PUT"]),
        Route("/_sim/period", instance.sim_period, methods=["PUT"]),
        Route("/_sim/void", instance.sim_void, methods=["POST"]),
        Route("/_sim/delete", instance.sim_delete, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    faulty = FaultMiddleware(app, instance.faults, _render_fault,
                             exempt=lambda path: not path.startswith(("/entity", "/identity")))
    return _Counter(_Gate(faulty, instance), instance)
