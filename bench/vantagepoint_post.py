"""Benchmark: post AR invoices and their cash receipts into the Vantagepoint simulator through
VantagepointClient.submit (look-up, create, post): documents per minute and requests per document.

Vantagepoint documents no request limit; the connector limits itself to the connection's
``erp.requests_per_second`` (the demo connection's value), so documents/min is measured against what
that rate allows at the measured requests per document. A second pass without the client-side limit
shows the capacity of the client and simulator on this machine.

    python -m bench.vantagepoint_post [--quick] [--json PATH]
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import yaml

from bench.report import figure, scenario, standalone
from resources.http import RetryPolicy
from resources.vantagepoint import InvoiceLine, ReceiptLine, TransactionFile, VantagepointClient, batch_id
from simulators.contractor import SUMMIT, vantagepoint_project
from simulators.faults import parse_profile
from simulators.runtime import ServedApp, SimOptions
from simulators.vantagepoint import build

WORKERS = 8
OK_OUTCOMES = ("posted",)  # fresh simulator: anything else would be a lost or doubled document


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


def post(count: int, workers: int, profile: str, rate: float | None) -> dict:
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
        "documents": documents, "rate_per_second": rate, "workers": workers, "seconds": round(elapsed, 2),
        "documents_per_minute": round(documents / elapsed * 60),
        "requests_per_document": round(client_stats["requests"] / documents, 3),
        "client_retries": client_stats["retries"], "outcomes": outcomes,
        "server_requests": server["requests"], "server_by_kind": server["by_kind"],
        "faults_injected": server["faults_injected"], "posted_files": server["posted_files"],
        "ledger_rows": server["ledger_rows"],
    }


def configured_rate() -> float:
    """The demo connection's Vantagepoint request rate (requests/s): what the connector allows itself."""
    text = (Path(__file__).resolve().parents[1] / "mappings/connections/summit-mechanical.yaml").read_text()
    return float(yaml.safe_load(text)["erp"]["requests_per_second"])


def run(quick: bool) -> dict:
    count = 200 if quick else 2000
    rate = configured_rate()
    limited = post(count, WORKERS, "", rate)
    unlimited = post(count, WORKERS, "", None)
    allowed = rate * 60 / limited["requests_per_document"]
    figures = [
        figure(f"documents/min at the connection's {rate:g} req/s", limited["documents_per_minute"], "doc/min",
               limit=round(allowed), note="limit = configured rate x 60 / requests per document"),
        figure("requests per document", limited["requests_per_document"], "req/doc",
               note="look-up, create, post (VantagepointClient.submit)"),
        figure("documents/min, no client rate limit", unlimited["documents_per_minute"], "doc/min"),
        figure("documents not posted", sum(v for k, v in limited["outcomes"].items() if k not in OK_OUTCOMES)
               + sum(v for k, v in unlimited["outcomes"].items() if k not in OK_OUTCOMES), "doc", target=("<=", 0)),
    ]
    return scenario(f"3 Vantagepoint posting ({count} invoices + receipts)", figures,
                    {"at_configured_rate": limited, "unlimited": unlimited})


if __name__ == "__main__":
    standalone(run, __doc__)
