"""Routes of the simulated tenant under ``/{Tenant}/api`` (matched case-insensitively, as IIS does)
and the ``/_sim`` control endpoints. Handlers are thin: rules live in hubs.py / transactions.py."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from simulators.faults import FaultMiddleware, FaultState, parse_profile
from simulators.vantagepoint import hubs, transactions
from simulators.vantagepoint.auth import DENIED, TokenStore
from simulators.vantagepoint.middleware import (
    ControlledFaults,
    DropRule,
    RateLimitMiddleware,
    StatsMiddleware,
    render_error,
)
from simulators.vantagepoint.query import apply_query, parse_list_query
from simulators.vantagepoint.state import TenantState
from simulators.vantagepoint.wire import VPError, error_response, json_response

log = logging.getLogger("fieldledger.sim.vantagepoint")
Handler = Callable[["Ctx", Request, dict, list], Awaitable[Response]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_XX = r"(?P<xx>in|cr|ap|je)"


def route(method: str, pattern: str):
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile(f"^{pattern}/?$", re.IGNORECASE), fn))
        return fn

    return register


class Ctx:
    """Everything a handler needs: state, tokens, fault switches, and the tenant's URL prefix."""

    def __init__(self, state: TenantState, tokens: TokenStore, faults: FaultState):
        self.state = state
        self.tokens = tokens
        self.faults = faults
        self.controlled: ControlledFaults | None = None
        self.stats: StatsMiddleware | None = None
        self.limiter: RateLimitMiddleware | None = None

    def rows(self, rows: list[dict], items: list, columns, ledger: bool = False) -> list[dict]:
        """``ledger``: a PSALedger / DataEntry list, paged as the ``ledger_paging`` mode says."""
        query = parse_list_query(items, self.state.settings.ledger_paging if ledger else "documented")
        return apply_query(rows, query, columns)


def hub_created(ctx: Ctx, row: dict, location: str) -> Response:
    """201 for a hub POST: the record in an array, or as a bare object (``hub_post_shape``; the
    brief leaves it open, practitioner code handles both)."""
    body = row if ctx.state.settings.hub_post_shape == "object" else [row]
    return json_response(body, status=201, headers={"Location": location})


def denied(ctx: Ctx) -> Response:
    """401: ASP.NET's default body, or an empty one with a WWW-Authenticate challenge
    (``unauthorized_body``; the brief marks the real body unknown)."""
    if ctx.state.settings.unauthorized_body == "empty":
        return Response(b"", status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return json_response(DENIED, status=401)


async def _json_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise VPError("The request is invalid: the body is not valid JSON.") from None


# --- auth ----------------------------------------------------------------------------------------


@route("POST", "token")
async def token(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    raw = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    status, body = ctx.tokens.grant(form)
    return json_response(body, status=status, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})


# --- hubs ----------------------------------------------------------------------------------------


@route("GET", "firm")
async def list_firms(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    with ctx.state.lock:
        rows = [dict(r) for r in ctx.state.firms.values()]
    return json_response(ctx.rows(rows, items, hubs.FIRM_FIELDS))


@route("GET", r"firm/(?P<id>[^/]+)")
async def get_firm(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    row = ctx.state.firms.get(params["id"].upper())
    if row is None:
        raise VPError(f"Firm {params['id']} was not found.", status=404)
    return json_response([dict(row)])


@route("POST", "firm")
async def post_firm(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    row = hubs.create_firm(ctx.state, body)
    return hub_created(ctx, dict(row), f"{request.url}/{row['ClientID']}")


@route("PUT", r"firm/(?P<id>[^/]+)")
async def put_firm(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    return json_response([dict(hubs.update_firm(ctx.state, params["id"], body))])


@route("DELETE", r"firm/(?P<id>[^/]+)")
async def delete_firm(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    hubs.delete_firm(ctx.state, params["id"])
    return json_response([])


def _level(row: dict) -> str:
    if row["WBS2"].strip() == "":
        return "wbs1"
    return "wbs2" if row["WBS3"].strip() == "" else "wbs3"


@route("GET", "project")
async def list_projects(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    level = next((v.lower() for k, v in items if k.lower() == "wbstype"), "wbs1")
    with ctx.state.lock:
        rows = [dict(r) for r in ctx.state.projects.values() if _level(r) == level]
    return json_response(ctx.rows(rows, items, hubs.PROJECT_FIELDS))


@route("GET", r"project/hierarchy/(?P<wbs1>[^/]+)")
async def project_hierarchy(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    with ctx.state.lock:
        rows = [dict(r) for k, r in ctx.state.projects.items() if k[0] == params["wbs1"].strip().upper()]
    if not rows:
        raise VPError(f"Project {params['wbs1']} was not found.", status=404)
    return json_response(ctx.rows(rows, items, hubs.PROJECT_FIELDS))


@route("GET", r"project/(?P<wbs1>[^/]+)")
async def get_project(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    row = ctx.state.project(params["wbs1"])
    if row is None:
        raise VPError(f"Project {params['wbs1']} was not found.", status=404)
    return json_response([dict(row)])


@route("POST", "project")
async def post_project(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    row = hubs.create_project(ctx.state, body)
    return hub_created(ctx, dict(row), f"{request.url}/{row['WBS1']}")


@route("PUT", r"project/(?P<wbs1>[^/]+)")
async def put_project(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    return json_response([dict(hubs.update_project(ctx.state, params["wbs1"], body))])


@route("GET", "organization")
async def list_orgs(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    return json_response(ctx.rows(list(ctx.state.orgs.values()), items, ("Org", "Name", "Status", "Company")))


@route("GET", r"organization/(?P<org>[^/]+)")
async def get_org(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    row = ctx.state.orgs.get(params["org"].upper())
    if row is None:
        raise VPError(f"Organization {params['org']} was not found.", status=404)
    return json_response([row])


@route("GET", "accounts")
async def list_accounts(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    return json_response(ctx.rows(list(ctx.state.accounts.values()), items, hubs.ACCOUNT_FIELDS))


@route("GET", r"accounts/(?P<acct>[^/]+)")
async def get_account(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    row = ctx.state.accounts.get(params["acct"])
    if row is None:
        raise VPError(f"Account {params['acct']} was not found.", status=404)
    return json_response([row])


@route("POST", "accounts")
async def post_account(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    row = hubs.create_account(ctx.state, body)
    return hub_created(ctx, row, f"{request.url}/{row['Account']}")


@route("GET", "bankcode/cfgbanks")
async def list_banks(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    columns = ("Code", "Description", "Company", "Org", "Account", "CurrencyCode", "Status")
    return json_response(ctx.rows(list(ctx.state.banks.values()), items, columns))


@route("GET", "taxcode")
async def list_tax_codes(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    columns = ("Code", "Description", "Rate", "CompoundOnTaxCode", "Account", "Status")
    return json_response(ctx.rows(list(ctx.state.tax_codes.values()), items, columns))


@route("GET", "settings/period")
async def list_periods(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    rows = list(ctx.state.periods.values())
    columns = ("Period", "FmtPeriod", "AccountPdStart", "AccountPdEnd", "FYStart", "FYEnd", "ActiveCompanyClosed",
               "AllCompaniesClosed")
    return json_response(ctx.rows(rows, items, columns))


@route("GET", "settings/activeperiod")
async def get_active_period(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    return json_response([ctx.state.periods[ctx.state.active_period]])


@route("PUT", r"settings/activeperiod/(?P<period>\d+)")
async def put_active_period(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    period = int(params["period"])
    errors: list[str] = []
    ctx.state.require_open_period(period, errors)
    if errors:
        raise VPError(errors)
    ctx.state.active_period = period
    return json_response([ctx.state.periods[period]])


@route("GET", "settings/company")
async def get_company(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    return json_response([ctx.state.company])


@route("GET", "keycvt/cfgformat")
async def get_key_formats(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    k = ctx.state.settings.key_formats
    return json_response([{
        "WBS1Length": k.wbs1_length, "WBS1Delimiter": "", "AccountLength": k.account_length,
        "ClientLength": k.client_length, "VendorLength": k.vendor_length, "VendorLeadZeros": "Y",
        "EmployeeLength": 4, "RefnoLength": k.refno_length, "OrgLevels": k.org_levels, "OrgDelimiter": k.org_delimiter,
    }])


# --- transaction entry ---------------------------------------------------------------------------


@route("GET", "dataentry/alllanding")
async def all_landing(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    with ctx.state.lock:
        rows = [transactions.landing_row(ctx.state, f) for files in ctx.state.files.values() for f in files.values()]
    return json_response(ctx.rows(rows, items, transactions.LANDING_COLUMNS, ledger=True))


@route("GET", f"dataentry/{_XX}landing")
async def type_landing(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    with ctx.state.lock:
        rows = [transactions.landing_row(ctx.state, f) for f in ctx.state.files[spec.code].values()]
    return json_response(ctx.rows(rows, items, transactions.LANDING_COLUMNS, ledger=True))


@route("GET", f"dataentry/{_XX}control")
async def list_controls(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    with ctx.state.lock:
        rows = [transactions.control_view(ctx.state, f) for f in ctx.state.files[spec.code].values()]
    columns = set(spec.control_fields) | {"Posted", "PostSeq", "PostDate", "ModDate"}
    return json_response(ctx.rows(rows, items, columns, ledger=True))


@route("POST", f"dataentry/{_XX}control")
async def post_control(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    body = await _json_body(request)
    f = transactions.create_file(ctx.state, spec, body)  # type: ignore[arg-type]
    return json_response([transactions.control_view(ctx.state, f)], status=201,
                         headers={"Location": f"{request.url}/{f.control['Batch']}"})


@route("GET", f"dataentry/{_XX}control/(?P<batch>[^/]+)")
async def get_control(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    with ctx.state.lock:
        f = transactions.get_file(ctx.state, spec, params["batch"])
        return json_response([transactions.control_view(ctx.state, f)])


@route("PUT", f"dataentry/{_XX}control/(?P<batch>[^/]+)")
async def put_control(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    f = transactions.update_control(ctx.state, spec, params["batch"], body)
    return json_response([transactions.control_view(ctx.state, f)])


@route("DELETE", f"dataentry/{_XX}control/(?P<batch>[^/]+)")
async def delete_control(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    transactions.delete_file(ctx.state, transactions.spec_for(params["xx"]), params["batch"])
    return json_response([])


@route("GET", f"dataentry/{_XX}master/(?P<batch>[^/|]+)")
async def get_masters(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    with ctx.state.lock:
        f = transactions.get_file(ctx.state, spec, params["batch"])
        rows = [transactions.master_view(m) for m in f.masters]
    columns = set(spec.master_fields) | {"StatusDescription", "ModUser", "ModDate"}
    return json_response(ctx.rows(rows, items, columns, ledger=True))


@route("POST", f"dataentry/{_XX}master/(?P<batch>[^/|]+)\\|(?P<key>[^/]+)")
async def post_master(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    body = await _json_body(request)
    _, master = transactions.add_master(ctx.state, spec, params["batch"], params["key"], body)  # type: ignore[arg-type]
    return json_response([transactions.master_view(master)], status=201)


@route("PUT", f"dataentry/{_XX}master/(?P<batch>[^/|]+)\\|(?P<key>[^/]+)")
async def put_master(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    master = transactions.update_master(ctx.state, spec, params["batch"], params["key"], body)
    return json_response([transactions.master_view(master)])


@route("DELETE", f"dataentry/{_XX}master/(?P<batch>[^/|]+)\\|(?P<key>[^/]+)")
async def delete_master(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    transactions.delete_master(ctx.state, transactions.spec_for(params["xx"]), params["batch"], params["key"])
    return json_response([])


@route("GET", f"dataentry/{_XX}detail/(?P<batch>[^/]+)")
async def get_details(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    spec = transactions.spec_for(params["xx"])
    with ctx.state.lock:
        rows = [dict(d) for d in transactions.get_file(ctx.state, spec, params["batch"]).details]
    return json_response(ctx.rows(rows, items, spec.detail_fields, ledger=True))


@route("PUT", "dataentry/posttransfile")
async def post_trans_file(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    body = await _json_body(request)
    status, payload = transactions.post_trans_files(ctx.state, body)  # type: ignore[arg-type]
    # The answer is a JSON string that itself holds JSON (double-encoded), as the real API does.
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


# --- posted data ---------------------------------------------------------------------------------


@route("GET", r"psaledger/(?P<type>[A-Za-z]{2})")
async def psa_ledger(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    query = parse_list_query(items, ctx.state.settings.ledger_paging)
    with ctx.state.lock:
        rows = ctx.state.ledger_rows(params["type"].upper(), query.equalities())
        result = apply_query(rows, query, transactions.LEDGER_COLUMNS)
    return json_response(result)


@route("GET", "arreview/arbalance")
async def ar_balance(ctx: Ctx, request: Request, params: dict, items: list) -> Response:
    with ctx.state.lock:
        rows = [dict(r) for r in ctx.state.ar.values()]
    return json_response(ctx.rows(rows, items, transactions.AR_COLUMNS))


# --- the ASGI entry point ------------------------------------------------------------------------


def not_found(path: str) -> Response:
    return json_response({"Message": f"No HTTP resource was found that matches the request URI '{path}'."},
                         status=404)


def make_api(ctx: Ctx):
    tenant = ctx.state.settings.tenant.lower()
    api_prefix = f"/{tenant}/api/"
    vision_prefix = f"/{tenant}/vision/"

    async def api(scope, receive, send):
        request = Request(scope, receive)
        path = scope["path"]
        lowered = path.lower()
        try:
            if lowered.startswith("/_sim/"):
                response = await control(ctx, request)
            elif lowered.startswith(vision_prefix):
                response = await vision(ctx, request, lowered[len(vision_prefix):])
            elif lowered.startswith(api_prefix) or lowered == api_prefix[:-1]:
                response = await dispatch(ctx, request, path[len(api_prefix):])
            else:
                response = not_found(path)
        except VPError as exc:
            response = error_response(exc)
        except Exception:  # noqa: BLE001 - a server bug must look like the real thing's 500
            log.exception("vantagepoint simulator error on %s %s", scope["method"], path)
            response = error_response(VPError("Object reference not set to an instance of an object.", status=500))
        await response(scope, receive, send)

    return api


async def dispatch(ctx: Ctx, request: Request, rest: str) -> Response:
    method = request.method.upper()
    items = list(request.query_params.multi_items())
    if method == "POST" and request.headers.get("dvp-postasget", "").lower() == "true":
        raw = (await request.body()).decode("utf-8", "replace")
        items += parse_qsl(raw, keep_blank_values=True)
        method = "GET"
    rest = rest.strip("/")
    if not (method == "POST" and rest.lower() == "token"):
        if not ctx.tokens.authorized(request.headers.get("authorization")):
            return denied(ctx)
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(rest)
        if match and route_method == method:
            return await handler(ctx, request, match.groupdict(), items)
    if any(p.match(rest) for _, p, _ in ROUTES):
        return json_response({"Message": f"The requested resource does not support http method '{method}'."},
                             status=405)
    return not_found(str(request.url.path))


async def vision(ctx: Ctx, request: Request, rest: str) -> Response:
    if not ctx.tokens.authorized(request.headers.get("authorization")):
        return denied(ctx)
    if request.method == "GET" and rest.strip("/") == "accountconfiguration/cfgautoposting":
        return json_response(ctx.state.auto_posting)
    return not_found(str(request.url.path))


# --- /_sim control endpoints -----------------------------------------------------------------------


async def control(ctx: Ctx, request: Request) -> Response:
    path = request.url.path.lower().rstrip("/")
    method = request.method.upper()
    body = await _json_body(request) if method in ("PUT", "POST") else {}
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    state = ctx.state
    if path == "/_sim/stats" and method == "GET":
        with state.lock:
            files = {t: len(v) for t, v in state.files.items()}
            posted = {t: sum(1 for f in v.values() if f.posted) for t, v in state.files.items()}
            payload = {
                **(ctx.stats.snapshot() if ctx.stats else {}),
                "faults_injected": ctx.faults.snapshot(),
                "throttled": ctx.limiter.throttled if ctx.limiter else 0,
                "profile": asdict(ctx.faults.profile),
                "tokens": dict(ctx.tokens.counts),
                "counts": dict(state.counts),
                "files": files,
                "posted_files": posted,
                "ledger_rows": len(state.ledger),
                "firms": len(state.firms),
                "projects": len(state.projects),
                "password_grant_enabled": ctx.tokens.allow_password_grant,
                "maintenance": bool(ctx.controlled and ctx.controlled.maintenance),
            }
        return json_response(payload)
    if path == "/_sim/faults" and method == "PUT":
        if "profile" in body:
            try:
                ctx.faults.profile = parse_profile(body.get("profile") or "")
            except ValueError as exc:
                raise VPError(str(exc)) from None
        if "drop_responses" in body and ctx.controlled is not None:
            raw_rules = body["drop_responses"]
            raw_rules = [raw_rules] if isinstance(raw_rules, dict) else (raw_rules or [])
            ctx.controlled.set_drop_rules([DropRule(**r) for r in raw_rules])
        return json_response({"profile": asdict(ctx.faults.profile)})
    if path == "/_sim/revoke_tokens" and method == "POST":
        n = ctx.tokens.revoke_all(refresh_tokens=bool(body.get("refresh_tokens", True)))
        return json_response({"revoked": n})
    if path == "/_sim/tokens/issued" and method == "GET":
        return json_response({"tokens": ctx.tokens.issued_tokens()})
    if path == "/_sim/password_grant" and method == "PUT":
        ctx.tokens.allow_password_grant = bool(body.get("enabled", True))
        return json_response({"enabled": ctx.tokens.allow_password_grant})
    if path == "/_sim/user" and method == "PUT":
        ctx.tokens.user_disabled = bool(body.get("disabled", False))
        return json_response({"disabled": ctx.tokens.user_disabled})
    if path == "/_sim/maintenance" and method == "PUT" and ctx.controlled is not None:
        ctx.controlled.maintenance = bool(body.get("on", False))
        return json_response({"on": ctx.controlled.maintenance})
    if path == "/_sim/clock/advance" and method == "POST":
        state.clock.advance(float(body.get("seconds", 0)))
        return json_response({"now": state.stamp()})
    match = re.fullmatch(r"/_sim/periods/(\d{6})", path)
    if match and method == "PUT":
        period = int(match.group(1))
        with state.lock:
            row = state.periods.get(period)
            if row is None:
                raise VPError(f"Period {period} does not exist.", status=404)
            flag = "Y" if body.get("closed", True) else "N"
            row["ActiveCompanyClosed"] = row["AllCompaniesClosed"] = flag
        return json_response(row)
    return not_found(request.url.path)


def build_asgi(ctx: Ctx):
    """The tenant's ASGI stack: stats -> rate limit -> maintenance / lost responses -> 5xx & latency
    faults -> routes."""
    settings = ctx.state.settings
    renderer = render_error(settings.html_503)
    app = make_api(ctx)
    app = FaultMiddleware(app, ctx.faults, renderer, exempt=lambda path: path.lower().startswith("/_sim"))
    ctx.controlled = ControlledFaults(app, renderer, ctx.faults.count)
    ctx.limiter = RateLimitMiddleware(ctx.controlled, settings.rate_limit_per_minute, settings.rate_limit_burst,
                                      renderer)
    ctx.stats = StatsMiddleware(ctx.limiter)
    return ctx.stats
