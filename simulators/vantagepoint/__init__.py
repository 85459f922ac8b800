"""Simulated Deltek Vantagepoint tenant: ``build(options) -> Simulator``, served at
``http://host:port/{Tenant}/api`` (tenant = options["tenant"], default from the contractor key).

Faithful to reference/deltek-vantagepoint-api.md: ``POST /api/token`` (password + refresh_token
grants, OAuth error bodies, password grant switchable), hubs (firm, project, organization,
Accounts, BankCode/CFGBANKS, TaxCode, Settings/Period, KeyCvt/CFGFormat), DataEntry files for IN,
CR, AP and JE with ``PUT /DataEntry/PostTransFile`` (double-encoded answer), PSALedger,
ARReview/ARBalance, DataEntry landings, and ``/{Tenant}/vision/AccountConfiguration/CFGAutoPosting``.

Choices where the reference says inferred/unknown (``SimOptions.options`` key -> default):
- ``post_failure_http_400`` False: a file that cannot post gets 200 with retList 0 (the connector
  must read retList); True answers 400 and posts nothing.
- ``ledger_paging`` "pagesize": PSALedger / DataEntry lists answer ``limit`` with a 500 and page
  with pageSize / page or cap with q.maxrows. The alternatives the reference leaves open: "maxrows"
  (``limit`` and ``pageSize`` 500, only q.maxrows caps, no pages), "unpaged" (pageSize and page
  ignored: every row comes back) and "documented" (``limit`` works too). ``ledger_rejects_limit``
  False is the older spelling of "documented". ``html_503`` True: 503s carry a proxy's HTML page.
- ``invoice_padding`` "zero_pad": IN / CR invoice numbers are zero-padded to RefnoLength on save;
  "as_given" stores them as sent. ``refno_length`` (flat) sets RefnoLength (default 12).
- ``hub_post_shape`` "array" (firm / project / Accounts POSTs answer ``[record]``) or "object";
  ``unauthorized_body`` "aspnet" (``{"Message": ...}``) or "empty" (with a WWW-Authenticate
  challenge): both unknown in the brief.
- ``check_transdate_period`` True: every document's TransDate must fall in an open period, as
  well as the file's Period (checked on create and again at post).
- ``use_files_to_group_transactions`` True (grouped create: POST {xx}Control with sibling
  master/detail arrays); False switches to POST {xx}Master/{Batch}|{Key} with nested details.
- ``rate_limit_per_minute`` 0 (none documented); ``token_ttl_seconds`` 1799; refresh tokens
  rotate (``rotate_refresh_tokens``) and last ``refresh_token_ttl_seconds`` 8 h;
  ``allow_password_grant`` True; ``ap_allow_negative`` False; ``key_formats`` (RefnoLength 12:
  invoice numbers are zero-padded to it on save; VendorLength 6; AccountLength 13; WBS1 30).
- Duplicate invoice numbers in a new batch are accepted (VP does not stop them): callers must
  check the ledger first. Posting a posted file fails (retList 0); posted files are read-only.
- Errors: REST ``{"message","detail"}`` with several messages joined by <BR/>; 401 body
  ``{"Message":"Authorization has been denied for this request."}``; 500 leaks .NET text.
- Ledger: one row per detail line plus an implicit row per document (SubType "A": AR for IN,
  the bank's account for CR, the liability for AP). Amounts are signed, debits positive; dates
  (ModDate, PostDate) are naive UTC with milliseconds.
Seed: one organization per branch (``01:DEN``), one regular (R) project per business unit
(``2026-DEN-HVC``, no phases, billed to a "<contractor> Service Customers" client firm because
an IN file takes its client from the project), an overhead project ``OH-ADMIN`` (H) with
phases 100 and 200, the chart of accounts (Vision account types), banks whose codes equal
their cash accounts, a tax code per branch, 24 monthly periods (the 12 ending this month UTC
open, older closed), key accounts as client firms and vendors as vendor firms (000001…).
Control endpoints: GET /_sim/stats, PUT /_sim/faults {"profile", "drop_responses"},
POST /_sim/revoke_tokens, PUT /_sim/password_grant {"enabled"}, PUT /_sim/user {"disabled"},
PUT /_sim/periods/{YYYYPP} {"closed"}, PUT /_sim/maintenance {"on"}, POST /_sim/clock/advance.
``clock_start`` (ISO instant) starts the tenant's clock there instead of now: its periods, stamps
and token lifetimes follow (tests run the tenant "on" 31 Dec 23:30 UTC or 29 Feb).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from simulators.faults import FaultState
from simulators.runtime import SimClock, SimOptions, Simulator
from simulators.snapshots import persistence_for, resumed_clock
from simulators.vantagepoint import persist
from simulators.vantagepoint.app import Ctx, build_asgi
from simulators.vantagepoint.auth import TokenStore
from simulators.vantagepoint.settings import TenantSettings, settings_from_options
from simulators.vantagepoint.state import TenantState

__all__ = ["build", "TenantSettings"]


def _instant(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def build(options: SimOptions) -> Simulator:
    settings = settings_from_options(options)
    state: TenantState | None = None
    persistence, saved = persistence_for(
        options, "vantagepoint", {"seed": options.seed, "contractor": settings.contractor.key,
                                  "tenant": settings.tenant}, lambda: persist.capture(state))
    clock = resumed_clock(options, saved)
    if saved is None and (options.options or {}).get("clock_start"):
        clock = SimClock(options.time_factor, start=_instant(options.options["clock_start"]))
    profile = options.profile
    if options.latency_ms:
        profile = replace(profile, latency_ms=profile.latency_ms + options.latency_ms)
    faults = FaultState(profile, seed=options.seed)
    state = TenantState(settings, clock, options.seed)
    if saved is not None:
        persist.restore(state, saved.state)
    ctx = Ctx(state, TokenStore(settings, clock, faults), faults)
    app = build_asgi(ctx)
    if persistence is not None:
        app = persistence.durable_writes(app)
        persistence.start()

    def info(base_url: str) -> dict:
        root = base_url.rstrip("/")
        return {
            "base_url": f"{root}/{settings.tenant}/api",
            "database": settings.database,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "username": settings.username,
            "password": settings.password,
            "tenant": settings.tenant,
            "control_url": f"{root}/_sim",
        }

    return Simulator(name="vantagepoint", app=app, info=info, close=persistence.close if persistence else None)
