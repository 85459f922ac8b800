"""Benchmark: post AR invoices to the Acumatica simulator under a license tier and report documents
per minute, the ratio to the tier's ceiling, 429s received and seats used.

The tier's per-minute budget is in simulated time; --time-factor runs the simulator's clock faster
(60 = one simulated minute per wall second) so 5,000 invoices at the small tier's 100 requests a
minute (50+ simulated minutes) finish in about a minute of wall time. Each invoice costs one PUT;
the exactly-once lookups by CustomerOrder cost one GET per --lookup-chunk invoices, so the
ceiling in documents per minute is per_minute x count / (count + lookups).

    python -m bench.acumatica_post --count 5000 --tier small --time-factor 60
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from resources.acumatica import AcumaticaClient
from simulators.acumatica import build
from simulators.acumatica.license import tier_from_options
from simulators.contractor import CASCADE, acumatica_subaccount
from simulators.runtime import ServedApp, SimOptions


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--tier", default="small", help="trial, small or large (simulators/acumatica/license.py)")
    parser.add_argument("--time-factor", type=float, default=60.0, help="simulated seconds per wall second")
    parser.add_argument("--lookup-chunk", type=int, default=25, help="refs per exactly-once lookup request")
    parser.add_argument("--workers", type=int, default=0, help="posting threads (default: the tier's concurrency)")
    args = parser.parse_args(argv)

    tier = tier_from_options({"tier": args.tier})
    workers = args.workers or tier.concurrency
    sim = build(SimOptions(seed=7, time_factor=args.time_factor, options={"tier": args.tier}))
    with ServedApp(sim.app) as served:
        info = sim.info(served.base_url)
        client = AcumaticaClient(info["base_url"], info["tenant"], info["client_id"], info["client_secret"],
                                 info["username"], info["password"], max_concurrency=tier.concurrency)
        instance = sim.app.instance
        sim_start = instance.clock.now()
        started = time.perf_counter()
        docs = [sample_invoice(n) for n in range(args.count)]
        chunks = [docs[i:i + args.lookup_chunk] for i in range(0, len(docs), args.lookup_chunk)]

        def post_chunk(chunk: list[dict]) -> int:
            existing = client.find_by_external_ref("Invoice", [d["CustomerOrder"] for d in chunk],
                                                   chunk_size=args.lookup_chunk, select="CustomerOrder")
            posted = 0
            for doc in chunk:
                if doc["CustomerOrder"] not in existing:
                    client.put("Invoice", doc, select="ReferenceNbr")
                    posted += 1
            return posted

        with ThreadPoolExecutor(max_workers=workers) as pool:
            posted = sum(pool.map(post_chunk, chunks))
        wall = time.perf_counter() - started
        sim_minutes = (instance.clock.now() - sim_start).total_seconds() / 60.0
        client.close()
        stats = instance.stats()

    requests_per_doc = (args.count + math.ceil(args.count / args.lookup_chunk)) / args.count
    ceiling = tier.per_minute / requests_per_doc if tier.per_minute else float("nan")
    per_minute = posted / sim_minutes if sim_minutes else float("nan")
    result = {
        "tier": tier.name, "tier_seats": tier.seats, "tier_concurrency": tier.concurrency,
        "tier_requests_per_minute": tier.per_minute, "time_factor": args.time_factor, "workers": workers,
        "documents_posted": posted, "wall_seconds": round(wall, 1), "simulated_minutes": round(sim_minutes, 2),
        "documents_per_minute": round(per_minute, 1), "ceiling_documents_per_minute": round(ceiling, 1),
        "ratio_to_ceiling": round(per_minute / ceiling, 3) if tier.per_minute else None,
        "requests": stats["requests"], "client_429s": client.http.stats["by_status"].get(429, 0),
        "server_429s": stats["throttled_429"], "requests_delayed": stats["license"]["delayed"],
        "peak_concurrency": stats["peak_concurrency"], "seats_used_peak": stats["seats_peak"],
        "seats_in_use_after": stats["seats_in_use"],
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return result


if __name__ == "__main__":
    main()
