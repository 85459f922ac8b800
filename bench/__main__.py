"""`make bench`: runs each scenario in its own process, prints ONE table of every figure beside the
limit it is measured against, and writes bench/results/<UTC time>-<git sha>.json.

A process per scenario keeps each one's memory its own: the runner adds "largest process RSS" for
every scenario from the kernel's accounting of that subprocess (wait4), next to the scenario's own
sampling. ``--quick`` uses small volumes (a smoke check of a few minutes); ``--only`` picks scenarios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import git_sha, machine_info, rss_figure, table, write_results

SCENARIOS = (  # (module, wall-time limit in seconds for full mode)
    ("bench.st_extract", 900),
    ("bench.acumatica_post", 600),
    ("bench.vantagepoint_post", 600),
    ("bench.receiver_load", 300),
    ("bench.webhook_latency", 1200),
    # a day-run takes ~7 s here; FL_BENCH_BACKFILL_DAYS=365 (the whole year) needs ~45 minutes
    ("bench.backfill_year", max(1800, 15 * int(os.environ.get("FL_BENCH_BACKFILL_DAYS", "30")))),
)


def run_one(module: str, quick: bool, timeout: float, log_dir: Path) -> dict:
    """Run one scenario module in a subprocess (its output to a log file); its JSON result plus
    wall time and peak RSS."""
    log_path = log_dir / f"{module.split('.')[-1]}.log"
    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp, open(log_path, "wb") as log:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", module, "--json", str(out)] + (["--quick"] if quick else [])
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT)
        deadline = started + timeout
        status = rusage = None
        while status is None:
            pid, status_, rusage_ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, rusage = status_, rusage_
                proc.returncode = os.waitstatus_to_exitcode(status_)
            elif time.monotonic() > deadline:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                proc.returncode = -9
            else:
                time.sleep(0.5)
        wall = time.monotonic() - started
        if out.exists():
            result = json.loads(out.read_text())
        else:
            result = {"scenario": module, "figures": [], "details": {},
                      "error": f"exit {proc.returncode}" + (" (timed out)" if proc.returncode == -9 else "")}
    result["module"] = module
    result["log"] = str(log_path)
    result["wall_seconds"] = round(wall, 1)
    result["exit_code"] = proc.returncode
    # ru_maxrss (KiB): the largest of this process and the descendants it waited for
    result["figures"].append(rss_figure("largest process RSS (wait4)", rusage.ru_maxrss * 1024))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes (smoke check)")
    parser.add_argument("--only", nargs="*", default=None, help="scenario modules or short names, e.g. st_extract")
    parser.add_argument("--note", default=os.environ.get("FL_BENCH_NOTE", ""),
                        help="free text stored in the results file (e.g. other work on the machine); env FL_BENCH_NOTE")
    args = parser.parse_args(argv)

    wanted = [m for m, _ in SCENARIOS if not args.only or m in args.only or m.split(".")[-1] in args.only]
    started_at = datetime.now(UTC)
    started = time.monotonic()
    machine = machine_info()
    log_dir = Path(tempfile.mkdtemp(prefix=f"fl-bench-{started_at.strftime('%Y%m%dT%H%M%SZ')}-"))
    print(f"scenario logs: {log_dir}", flush=True)
    results = []
    for module, limit in SCENARIOS:
        if module not in wanted:
            continue
        print(f"{module}{' --quick' if args.quick else ''} ...", end=" ", flush=True)
        result = run_one(module, args.quick, limit / 3 if args.quick else limit, log_dir)
        print(f"exit {result['exit_code']} in {result['wall_seconds']:.0f} s", flush=True)
        if result["exit_code"]:
            print("  " + "\n  ".join(Path(result["log"]).read_text(errors="replace").splitlines()[-15:]))
        results.append(result)
    total = time.monotonic() - started
    document = {
        "started": started_at.isoformat(), "git_sha": git_sha(), "quick": args.quick,
        "total_wall_seconds": round(total, 1), "machine": machine,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "notes": args.note, "results": results,
    }
    path = write_results(document, started_at)
    print(f"\nfieldledger bench{' --quick' if args.quick else ''}: {machine['cores']} cores ({machine['cpu_model']}), "
          f"{machine['total_ram_gib']} GiB RAM, python {machine['python']}, git {document['git_sha']}, "
          f"total {total / 60:.1f} min")
    print(table(results))
    print(f"\nresults: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    failed = [r["module"] for r in results if r.get("error") or r["exit_code"]]
    missed = [f"{r['module']}: {f['name']}" for r in results for f in r["figures"] if f["met"] is False]
    if failed:
        print(f"failed scenarios: {', '.join(failed)}")
    if missed:
        print(f"targets not met: {len(missed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
