"""Benchmark: extract a year of a 120-technician contractor from the ServiceTitan simulator
(invoices, payments, inventory bills, customers) at 50 ms added latency per request.

Figures: API requests used vs the minimum the 5,000-record page size allows (ceil(records / 5,000)
per stream), records/s vs what the documented 60 requests/s would allow at full pages, and the
peak RSS of the extracting process.

Volume (seeded by simulators/servicetitan/seed.py): 120 technicians x 3.5 calls per technician per
weekday = 420 invoices per weekday (the seed draws each weekday uniformly in 2/3..4/3 of that, and a
sixth on Saturdays), 40 purchase orders per weekday (one per three technicians; received ones become
inventory bills), 24,000 customers (200 per technician: a service company's book over several years),
and the payments the seed makes for those invoices. Cascade HVAC's business units and GL accounts.

    python -m bench.st_extract [--quick] [--json PATH]
"""

from __future__ import annotations

import math
import multiprocessing
import time

import psutil

from bench.report import figure, rss_figure, scenario, standalone
from resources.servicetitan import MAX_PAGE_SIZE, RATE_CEILING, ServiceTitanClient
from simulators.runtime import ServedApp, SimOptions
from simulators.servicetitan import ServiceTitanSim

TECHNICIANS = 120
CALLS_PER_TECHNICIAN_PER_WEEKDAY = 3.5
YEAR = {"days": 365, "invoices_per_day": TECHNICIANS * CALLS_PER_TECHNICIAN_PER_WEEKDAY,
        "purchase_orders_per_day": TECHNICIANS / 3, "customers": TECHNICIANS * 200, "contractors": ["cascade-hvac"]}
QUICK = {**YEAR, "days": 30}
LATENCY_MS = 50.0
STREAMS = ("customers", "invoices", "payments", "inventory_bills")


def _serve(options: dict, latency_ms: float, queue) -> None:
    """Child process: seed and serve the simulator, report its info, seed time and RSS, then wait."""
    started = time.perf_counter()
    sim = ServiceTitanSim(SimOptions(seed=7, latency_ms=latency_ms, options=options))
    seed_s = time.perf_counter() - started
    served = ServedApp(sim.app).start()
    queue.put((sim.info(served.base_url), seed_s, psutil.Process().memory_info().rss))
    while True:
        time.sleep(3600)


def run(quick: bool) -> dict:
    options = QUICK if quick else YEAR
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(options, LATENCY_MS, queue), daemon=True)
    server.start()
    per_stream: dict[str, dict] = {}
    try:
        info, seed_s, server_rss = queue.get(timeout=600)
        process = psutil.Process()
        peak = process.memory_info().rss
        client = ServiceTitanClient(info["base_url"], info["auth_url"], info["tenant"], info["client_id"],
                                    info["client_secret"], info["app_key"], page_size=MAX_PAGE_SIZE)
        started = time.perf_counter()
        for stream in STREAMS:
            before = client.http.stats["requests"]
            t0 = time.perf_counter()
            count = 0
            for _ in client.iterate(stream):
                count += 1
                if count % 5000 == 0:
                    peak = max(peak, process.memory_info().rss)
            used = client.http.stats["requests"] - before
            per_stream[stream] = {"records": count, "requests": used, "minimum_requests": max(1, math.ceil(
                count / MAX_PAGE_SIZE)), "seconds": round(time.perf_counter() - t0, 2)}
        elapsed = time.perf_counter() - started
        peak = max(peak, process.memory_info().rss)
        stats = dict(client.http.stats)
        fetches = client.token_fetches
        client.close()
        server_rss = max(server_rss, psutil.Process(server.pid).memory_info().rss)
    finally:
        server.terminate()
        server.join(timeout=10)
    records = sum(s["records"] for s in per_stream.values())
    requests = sum(s["requests"] for s in per_stream.values())
    minimum = sum(s["minimum_requests"] for s in per_stream.values())
    rate = records / elapsed if elapsed else 0.0
    volume = ", ".join(f"{s['records']:,} {name.replace('_', ' ')}" for name, s in per_stream.items())
    figures = [
        figure("API requests vs page-size minimum", requests, "req", limit=minimum, target=("<=", 1 / 0.95),
               note=volume),
        figure("records/s vs 60 req/s x 5,000", round(rate, 1), "rec/s", limit=RATE_CEILING * MAX_PAGE_SIZE),
        rss_figure("extracting process peak RSS", peak),
        rss_figure("simulator process RSS", server_rss),
    ]
    details = {"volume_options": options, "latency_ms": LATENCY_MS, "streams": per_stream, "records": records,
               "seconds": round(elapsed, 2), "token_fetches": fetches, "retries": stats["retries"],
               "simulator_seed_seconds": round(seed_s, 1)}
    title = f"1 Extract ({options['days']} days, {TECHNICIANS} techs)"
    return scenario(title, figures, details)


if __name__ == "__main__":
    standalone(run, __doc__)
