"""Simulated ServiceTitan (V2 API): auth host, API host, export feeds, live mode and webhooks for
the two contractors in ``simulators.contractor``, deterministic from the seed.

Where the reference marks behaviour unknown, the stricter choice is the default and
``SimOptions.options`` can change it:
- ``page_size_over_max``: ``"reject"`` (400, default) or ``"clamp"`` for pageSize above 5000;
- ``paid_on_after_inclusive`` (False): payments' ``paidOnAfter`` is exclusive by default;
- ``bill_date_to_exclusive`` (False): inventory bills' ``dateTo`` includes that date by default;
- ``export_page_size`` (1000) and ``export_lag_seconds`` (900): records per export call and the
  visibility lag ``includeRecentChanges=true`` bypasses; ``export_duplicates`` (True) re-sends the
  most recent changes on the next call, as the docs warn;
- ``token_lifetime_seconds`` (900), ``token_requests_per_minute`` (30 per client id) for the
  throttled token endpoint, ``rate_limit_per_second`` (60 per app key and tenant), ``denied_scopes``
  ({tenant: [scope]}) for 403s, ``html_503_share`` (0.3) of injected 503s that are HTML;
- ``webhook_signature_header`` / ``webhook_signature_encoding`` (see ``webhooks.py``);
- data volume: ``invoices_per_day`` (45 per weekday and tenant), ``days`` (365), ``customers``
  (600), ``purchase_orders_per_day`` (6), ``contractors`` (keys or tenant ids to generate).
A token is tied to the app key of its tenant's application: another app key gets 401 (inferred).
"""

from __future__ import annotations

from simulators.runtime import SimOptions, Simulator
from simulators.servicetitan.app import ServiceTitanSim
from simulators.servicetitan.persist import durable_publish


def build(options: SimOptions) -> Simulator:
    sim = ServiceTitanSim(options)
    app, close = sim.app, None
    if sim.persistence is not None:  # a state directory: see simulators/servicetitan/persist.py
        app = sim.persistence.durable_writes(app)
        sim.live.publish = durable_publish(sim.persistence, sim.live.publish)
        close = sim.persistence.start().close
    return Simulator(name="servicetitan", app=app, info=sim.info, start_background=sim.start_background,
                     stop_background=sim.stop_background, close=close)


__all__ = ["ServiceTitanSim", "build"]
