"""Benchmark: post N AR invoices and their cash receipts into the Vantagepoint simulator through
VantagepointClient.submit (look-up, create, post), and print documents per minute and requests
per document. Usage: python -m bench.vantagepoint_post [--count 2000] [--workers 8]
[--profile flaky] [--rate 10]."""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from resources.http import RetryPolicy
from resources.vantagepoint import InvoiceLine, ReceiptLine, TransactionFile, VantagepointClient, batch_id
from simulators.contractor import SUMMIT, vantagepoint_project
from simulators.faults import parse_profile
from simulators.runtime import ServedApp, SimOptions
from simulators.vantagepoint import build


def _documents(client: VantagepointClient, n: int, period: int):
    today = datetime.now(UTC).date()
    units = SUMMIT.business_units
    unit = units[n % len(units)]
    wbs1 = vantagepoint_project(SUMMIT, unit)
    number = f"{100000 + n}"
    amount = Decimal(100 + n % 900) + Decimal(n % 100) / 100
    inv = TransactionFile("IN", batch_id("IN", number, "bench"), period, description=f"ST invoice {number}")
    inv.add_invoice(number, wbs1, today, [InvoiceLine(unit.trade.revenue_account, amount)])
    cr = TransactionFile("CR", batch_id("CR", number, "bench"), period, default_bank="10300")
    cr.add_receipt(f"P{number}", today, [ReceiptLine(amount, "12000", wbs1=wbs1, invoice=number)])
    return inv, cr


def run(count: int, workers: int, profile: str, rate: float | None) -> dict:
    sim = build(SimOptions(seed=7, profile=parse_profile(profile)))
    with ServedApp(sim.app) as served:
        info = sim.info(served.base_url)
        retry = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=2.0)
        with VantagepointClient(info["base_url"], info["database"], info["client_id"], info["client_secret"],
                                info["username"], info["password"], retry=retry, rate_per_second=rate) as client:
            period = client.period_for(datetime.now(UTC).date())
            outcomes: dict[str, int] = {}
            lock = threading.Lock()

            def one(n: int) -> None:
                for tf in _documents(client, n, period):
                    result = client.submit(tf)
                    with lock:
                        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(one, range(count)))
            elapsed = time.perf_counter() - started
            client_stats = client.stats
        server = httpx.get(f"{info['control_url']}/stats", timeout=10).json()
    documents = count * 2
    return {
        "documents": documents, "seconds": round(elapsed, 2),
        "documents_per_minute": round(documents / elapsed * 60),
        "requests_per_document": round(client_stats["requests"] / documents, 2),
        "client_retries": client_stats["retries"], "outcomes": outcomes,
        "server_requests": server["requests"], "server_by_kind": server["by_kind"],
        "faults_injected": server["faults_injected"], "posted_files": server["posted_files"],
        "ledger_rows": server["ledger_rows"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="invoices (each with one cash receipt)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent submitters")
    parser.add_argument("--profile", default="", help="simulator fault profile, e.g. flaky or mild")
    parser.add_argument("--rate", type=float, default=0.0, help="client request limit per second (0 = none)")
    args = parser.parse_args(argv)
    figures = run(args.count, args.workers, args.profile, args.rate or None)
    print(f"Vantagepoint: {figures['documents']} documents ({args.count} invoices + receipts), "
          f"{args.workers} workers, profile '{args.profile or 'none'}', rate {args.rate or 'unlimited'}/s")
    print(f"  {figures['seconds']} s  ->  {figures['documents_per_minute']} documents/minute, "
          f"{figures['requests_per_document']} requests/document, {figures['client_retries']} retries")
    print(f"  outcomes {figures['outcomes']}; server requests {figures['server_requests']} "
          f"{figures['server_by_kind']}; faults {figures['faults_injected']}; posted {figures['posted_files']}")
    return figures


if __name__ == "__main__":
    main()
