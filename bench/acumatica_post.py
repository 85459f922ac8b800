"""Benchmark: post AR invoices to the Acumatica simulator under two license tiers (small: 100
requests/min, 3 concurrent, 3 seats; large: 150/min, 6 concurrent, 6 seats) and report documents
per minute against the tier's ceiling, 429s (and documents they failed) and API-user seats used.

Each invoice costs one PUT; the exactly-once look-up by CustomerOrder costs one GET per 25 invoices
(posting/acumatica.py's chunk), so the ceiling is per_minute x 25 / 26 documents a minute.

How the rate is measured (the simulator's own enforcement): the license counts requests in fixed
one-minute windows that start at the first request, lets half of the budget through at once and
spreads the rest over the window. Dividing by the time to the last answer would credit the last,
partly used window with a full minute's budget in less than a minute (the earlier 1.007x). So the
figure counts the documents answered within the run's *whole* windows (simulated time, recorded per
answer) and divides by those minutes: a ratio above 1.0 would mean the license let more through than
its budget. The simulator's clock runs 60x faster (one simulated minute per wall second).

    python -m bench.acumatica_post [--quick] [--json PATH]
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from bench.report import figure, scenario, standalone
from posting.acumatica import AcumaticaAdapter
from resources.acumatica import AcumaticaClient
from resources.http import RemoteError
from simulators.acumatica import build
from simulators.acumatica.license import tier_from_options
from simulators.contractor import CASCADE, acumatica_subaccount
from simulators.runtime import ServedApp, SimOptions

TIME_FACTOR = 60.0
LOOKUP_CHUNK = AcumaticaAdapter.lookup_chunk


def sample_invoice(n: int) -> dict:
    unit = CASCADE.business_units[n % len(CASCADE.business_units)]
    customer = f"C{101 + n % len(CASCADE.key_accounts):06d}"
    cents = 5_000 + (n * 7919) % 95_000
    return {
        "Customer": customer, "Hold": False, "CustomerOrder": f"BENCH-{n:06d}", "LinkBranch": unit.branch.code,
        "Description": f"ServiceTitan invoice BENCH-{n:06d}",
        "Details": [{"Account": unit.trade.revenue_account, "Subaccount": acumatica_subaccount(unit.branch, unit.trade),
                     "Branch": unit.branch.code, "Qty": Decimal(1), "UnitPrice": Decimal(cents) / 100,
                     "TransactionDescription": f"{unit.trade.name} service"}],
    }


def post_under_tier(tier_name: str, count: int) -> dict:
    """Post ``count`` invoices with the tier's concurrency; figures in simulated time."""
    tier = tier_from_options({"tier": tier_name})
    sim = build(SimOptions(seed=7, time_factor=TIME_FACTOR, options={"tier": tier_name}))
    with ServedApp(sim.app) as served:
        info = sim.info(served.base_url)
        client = AcumaticaClient(info["base_url"], info["tenant"], info["client_id"], info["client_secret"],
                                 info["username"], info["password"], max_concurrency=tier.concurrency)
        clock = sim.app.instance.clock
        answered: list[float] = []  # simulated seconds since start, per posted document
        failures: dict[str, int] = {}
        lock = threading.Lock()
        docs = [sample_invoice(n) for n in range(count)]
        chunks = [docs[i:i + LOOKUP_CHUNK] for i in range(0, len(docs), LOOKUP_CHUNK)]
        sim_start = clock.now()
        started = time.perf_counter()

        def post_chunk(chunk: list[dict]) -> None:
            existing = client.find_by_external_ref("Invoice", [d["CustomerOrder"] for d in chunk],
                                                   chunk_size=LOOKUP_CHUNK, select="CustomerOrder")
            for doc in chunk:
                if doc["CustomerOrder"] in existing:
                    continue
                try:
                    client.put("Invoice", doc, select="ReferenceNbr")
                except RemoteError as exc:
                    with lock:
                        failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    continue
                at = (clock.now() - sim_start).total_seconds()
                with lock:
                    answered.append(at)

        with ThreadPoolExecutor(max_workers=tier.concurrency) as pool:
            list(pool.map(post_chunk, chunks))
        wall = time.perf_counter() - started
        sim_minutes = (clock.now() - sim_start).total_seconds() / 60.0
        client_429 = client.http.stats["by_status"].get(429, 0)
        client.close()
        stats = sim.app.instance.stats()
    whole = int(sim_minutes)
    in_whole = sum(1 for t in answered if t <= whole * 60.0)
    per_minute = in_whole / whole if whole else float("nan")
    ceiling = tier.per_minute * LOOKUP_CHUNK / (LOOKUP_CHUNK + 1)
    return {
        "tier": tier.name, "seats": tier.seats, "concurrency": tier.concurrency, "per_minute": tier.per_minute,
        "documents_posted": len(answered), "documents_failed": failures, "wall_seconds": round(wall, 1),
        "simulated_minutes": round(sim_minutes, 2), "whole_windows": whole, "documents_in_whole_windows": in_whole,
        "documents_per_minute": round(per_minute, 2), "naive_documents_per_minute": round(len(answered) / sim_minutes, 2),
        "ceiling_documents_per_minute": round(ceiling, 2), "server_requests": stats["requests"],
        "client_429s": client_429, "server_429s": stats["throttled_429"],
        "requests_delayed_by_license": stats["license"]["delayed"], "peak_queue": stats["license"]["peak_queue"],
        "peak_concurrency": stats["peak_concurrency"], "seats_used_peak": stats["seats_peak"],
        "seats_in_use_after": stats["seats_in_use"],
    }


def run(quick: bool) -> dict:
    counts = {"small": 500, "large": 750} if quick else {"small": 5000, "large": 7500}
    figures, details = [], {"time_factor": TIME_FACTOR, "lookup_chunk": LOOKUP_CHUNK}
    for tier_name, count in counts.items():
        r = post_under_tier(tier_name, count)
        details[tier_name] = r
        figures += [
            figure(f"{tier_name}: documents/min vs tier ceiling", r["documents_per_minute"], "doc/min",
                   limit=r["ceiling_documents_per_minute"], target=(">=", 0.9),
                   note=f"{r['documents_posted']} posted in {r['simulated_minutes']} simulated min"),
            figure(f"{tier_name}: 429s received", r["client_429s"], "", target=("<=", 0)),
            figure(f"{tier_name}: documents failed", sum(r["documents_failed"].values()), "doc", target=("<=", 0)),
            figure(f"{tier_name}: API-user seats used", r["seats_used_peak"], "seats", limit=r["seats"],
                   target=("<=", 1.0)),
        ]
    return scenario("2 Acumatica posting", figures, details)


if __name__ == "__main__":
    standalone(run, __doc__)
