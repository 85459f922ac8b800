"""Simulated Acumatica ERP (contract-based REST API, Default endpoint) for tests, benches and the demo.

``build(options)`` returns the Simulator. Settings in ``options.options`` (all optional):
contractor (key in simulators.contractor, default CASCADE), versions (served endpoint versions,
default 24.200.001 and 23.200.001), tier (see license.py: trial / small / large; default small)
and seats / concurrency / per_minute / queue_size overrides, idle_timeout_seconds (600),
token_lifetime_seconds (3600), seat_limit_status (500), release_seconds (simulated seconds a
release takes, 1.0; 0 = synchronous 204), max_logins_per_user (1; a further sign-in of the
same user ends its oldest session; 0 = unlimited), per_user_limit_oauth (off: OAuth grants are not
counted per user), time_zone or acumatica_time_zone (the API user's time zone, an IANA name, default
UTC: date-times answered with its offset, dates are its calendar days), open_periods_months (24:
financial periods before the last 24 months are closed; see periods.py), password_grant (on; off = the connected application does not
allow the resource-owner password grant, also switchable at PUT /_sim/password_grant), plus the write-rule switches listed in rules.py.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import replace

from simulators.acumatica import persist
from simulators.acumatica.app import Instance, create_app
from simulators.acumatica.license import RequestGate, tier_from_options
from simulators.acumatica.sessions import SeatTable
from simulators.acumatica.store import Tenant
from simulators.contractor import CASCADE, CONTRACTORS_BY_KEY
from simulators.faults import FaultState
from simulators.runtime import SimOptions, Simulator
from simulators.snapshots import persistence_for, resumed_clock

DEFAULT_VERSIONS = ("24.200.001", "23.200.001")


def credentials_for(seed: int, tenant: str) -> dict[str, str]:
    """The instance's API user and connected application, deterministic from the seed."""
    rng = random.Random(f"acumatica:{seed}")
    guid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
    secret = base64.urlsafe_b64encode(rng.randbytes(16)).decode().rstrip("=")
    password = base64.urlsafe_b64encode(rng.randbytes(12)).decode()
    return {"client_id": f"{guid}@{tenant}", "client_secret": secret, "username": "fieldledger.api",
            "password": password}


def flag(value) -> bool:
    """An on/off option as `sim up -o` parses it (booleans) or as text."""
    return value is True or str(value).strip().lower() in ("1", "true", "on", "yes")


def build(options: SimOptions) -> Simulator:
    opts = dict(options.options)
    contractor = CONTRACTORS_BY_KEY[opts["contractor"]] if opts.get("contractor") else CASCADE
    versions = opts.get("versions") or DEFAULT_VERSIONS
    if isinstance(versions, str):
        versions = [v.strip() for v in versions.split(",") if v.strip()]
    tenant_name = contractor.key.split("-")[0].capitalize()
    instance: Instance | None = None
    persistence, saved = persistence_for(options, "acumatica", {"seed": options.seed, "contractor": contractor.key},
                                         lambda: persist.capture(instance))
    clock = resumed_clock(options, saved)
    tier = tier_from_options(opts)
    profile = options.profile
    if options.latency_ms:
        profile = replace(profile, latency_ms=profile.latency_ms + options.latency_ms)
    faults = FaultState(profile, seed=options.seed)
    seats = SeatTable(tier.seats, clock, idle_timeout=float(opts.get("idle_timeout_seconds", 600.0)),
                      token_lifetime=float(opts.get("token_lifetime_seconds", 3600.0)),
                      max_logins_per_user=int(opts.get("max_logins_per_user", 1)),
                      evict_oauth=flag(opts.get("per_user_limit_oauth", False)))
    seats.revoke_after = profile.token_revoke_after_seconds
    instance = Instance(
        tenant=Tenant(contractor, options.seed), tenant_name=tenant_name,
        credentials=credentials_for(options.seed, tenant_name), versions=list(versions), clock=clock,
        seats=seats, gate=RequestGate(tier, clock), faults=faults, settings=opts,
    )
    instance.tenant.seed_calendar(clock.now(), instance.zone, int(opts.get("open_periods_months", 24)))
    if saved is not None:
        persist.restore(instance, saved.state)
    app = create_app(instance)
    if persistence is not None:
        app = persistence.durable_writes(app)
        persistence.start()
    app.instance = instance  # for in-process benches and debugging; tests use /_sim

    def info(base_url: str) -> dict:
        return {"base_url": base_url, "endpoint": "Default", "version": DEFAULT_VERSIONS[0]
                if DEFAULT_VERSIONS[0] in instance.versions else instance.versions[0],
                "tenant": tenant_name, **instance.credentials}

    return Simulator(name="acumatica", app=app, info=info, close=persistence.close if persistence else None)
