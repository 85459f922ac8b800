"""`make bench`: runs each benchmark in its own process and prints its figures.

Each scenario prints its figures beside the limit it is measured against. (One combined table
and results files under bench/results/ are the next step of the performance work.)
"""

from __future__ import annotations

import subprocess
import sys
import time

SCENARIOS = (
    ("ServiceTitan extract", ["bench.st_extract"]),
    ("Acumatica posting", ["bench.acumatica_post"]),
    ("Vantagepoint posting", ["bench.vantagepoint_post"]),
    ("Receiver", ["bench.receiver_load"]),
    ("Webhook to ledger", ["bench.webhook_latency"]),
)


def main() -> int:
    failed = []
    for title, (module, *args) in SCENARIOS:
        print(f"\n=== {title} ({module}) ===", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", module, *args])
        print(f"--- {title}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(title)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
