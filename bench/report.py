"""The common shape of benchmark figures, the one table they are printed in, and the results files.

Every scenario returns ``{"scenario": title, "figures": [figure(...), ...], "details": {...}}``.
A figure sits beside the limit it is measured against: ``ratio = value / limit``, and a target is a
bound on that ratio (e.g. ``("<=", 1.2)`` = at most 1.2x the ERP-bound minimum), so every row of the
table reads the same way whatever its unit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GIB = 2**30
RSS_LIMIT_MB = GIB / 2**20  # the "no process above 1 GiB RSS"


def figure(name: str, value: float | int | None, unit: str, *, limit: float | None = None,
           target: tuple[str, float] | None = None, note: str = "") -> dict:
    """One measured figure. ``target`` is (">=" | "<=", bound on value/limit, or on value if no limit)."""
    ratio = value / limit if value is not None and limit else None
    met = text = None
    if target is not None:
        op, bound = target
        # with a limit the target bounds the ratio; without one (e.g. "zero 429s") the value itself
        measured = ratio if limit else value
        text = f"{op} {bound:.3g}x" if limit else f"{op} {bound:g}"
        met = False if measured is None else measured >= bound if op == ">=" else measured <= bound
    return {"name": name, "value": value, "unit": unit, "limit": limit,
            "ratio": None if ratio is None else round(ratio, 4), "target": text, "met": met, "note": note}


def rss_figure(name: str, rss_bytes: int) -> dict:
    return figure(name, round(rss_bytes / 2**20, 1), "MiB", limit=RSS_LIMIT_MB, target=("<=", 1.0))


def scenario(title: str, figures: list[dict], details: dict | None = None) -> dict:
    return {"scenario": title, "figures": figures, "details": details or {}}


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def table(results: list[dict]) -> str:
    """One table: scenario | figure | value | limit | ratio | target."""
    rows = [("scenario", "figure", "value", "limit", "ratio", "target")]
    for res in results:
        title = res["scenario"]
        if res.get("error"):
            rows.append((title, "ERROR", res["error"][:60], "", "", "not met"))
            continue
        for f in res["figures"]:
            target = "-" if f["target"] is None else f"{f['target']} {'met' if f['met'] else 'NOT MET'}"
            rows.append((title, f["name"], _fmt(f["value"], f["unit"]), _fmt(f["limit"], f["unit"]),
                         "-" if f["ratio"] is None else f"{f['ratio']:.3f}x", target))
            title = ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_info() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "total_ram_gib": round(psutil.virtual_memory().total / GIB, 1),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=RESULTS_DIR.parent.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "nogit"


def write_results(document: dict, started: datetime) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{document['git_sha']}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def standalone(run: Callable[[bool], dict], doc: str | None = None) -> None:
    """``python -m bench.X [--quick] [--json PATH]``: run one scenario, print its table, optionally
    write its result as JSON (how ``python -m bench`` collects it from a subprocess)."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="small volumes: a smoke check")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args.quick)
    print(table([result]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, default=str))
    sys.exit(0)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]
