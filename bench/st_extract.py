"""Benchmark: extract 100,000 ServiceTitan invoices from the simulator at 50 ms added latency and
print requests used, records per request, records/s (and its share of what the 60 req/s ceiling
and 5,000-record pages allow) and peak RSS. Not part of the test suite: ``python -m bench.st_extract``.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import time

import psutil

from resources.servicetitan import MAX_PAGE_SIZE, RATE_CEILING, ServiceTitanClient
from simulators.runtime import ServedApp, SimOptions
from simulators.servicetitan import ServiceTitanSim


def _serve(options: dict, latency_ms: float, queue) -> None:
    """Child process: build and serve the simulator, report its info and seed time, then wait."""
    started = time.perf_counter()
    sim = ServiceTitanSim(SimOptions(seed=7, latency_ms=latency_ms, options=options))
    seed_s = time.perf_counter() - started
    served = ServedApp(sim.app).start()
    queue.put((sim.info(served.base_url), seed_s, psutil.Process().memory_info().rss))
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    args = parser.parse_args(argv)

    # ~265 invoice days in the year of seeded data; a little extra, and the extract stops at --invoices
    options = {"invoices_per_day": args.invoices / 265, "customers": 2000, "contractors": ["cascade-hvac"],
               "purchase_orders_per_day": 1}
    queue = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(options, args.latency_ms, queue),
                                                          daemon=True)
    server.start()
    try:
        info, seed_s, server_rss = queue.get(timeout=120)
        process = psutil.Process()
        peak = process.memory_info().rss
        client = ServiceTitanClient(info["base_url"], info["auth_url"], info["tenant"], info["client_id"],
                                    info["client_secret"], info["app_key"], page_size=args.page_size)
        started = time.perf_counter()
        count = items = 0
        for invoice in itertools.islice(client.invoices(), args.invoices):
            count += 1
            items += len(invoice.items)
            if count % 2500 == 0:
                peak = max(peak, process.memory_info().rss)
        elapsed = time.perf_counter() - started
        peak = max(peak, process.memory_info().rss)
        stats = dict(client.http.stats)
        fetches = client.token_fetches
        client.close()
        server_peak = psutil.Process(server.pid).memory_info().rss
    finally:
        server.terminate()
        server.join(timeout=10)
    requests = stats["requests"]
    rate = count / elapsed if elapsed else 0.0
    ceiling = RATE_CEILING * args.page_size
    figures = {
        "invoices": count, "invoice_items": items, "simulator_seed_seconds": round(seed_s, 2),
        "api_requests": requests, "token_fetches": fetches, "retries": stats["retries"],
        "records_per_request": round(count / max(1, requests), 1), "seconds": round(elapsed, 2),
        "records_per_second": round(rate, 1), "ceiling_records_per_second": ceiling,
        "share_of_ceiling": round(rate / ceiling, 4), "latency_ms": args.latency_ms,
        "client_peak_rss_mb": round(peak / 2**20, 1), "simulator_rss_mb": round(max(server_rss, server_peak) / 2**20, 1),
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    return figures


if __name__ == "__main__":
    main()
