"""Soak: the whole stack in live mode for a long stretch at ten times a large contractor's event
rate under mild faults; nothing lost, memory flat, lag bounded.

A large contractor (the brief: 90-120 technicians, three branches), per ServiceTitan tenant, over
a 10-hour working day (36,000 s):
  120 technicians x 3.5 completed jobs a day      = 420 invoices
  payments (about 0.9 per invoice)                = 380
  received purchase orders -> inventory bills     =  45
                                                   ---------
  new documents                                    ~ 845 a day = 0.0235 a second
Ten times that is 0.235 new documents a second per tenant; the two demo tenants together 0.47 a
second. Each change the simulator makes raises one or two webhook events (a new customer with its
first invoice; a payment also announces the invoice it pays), so the receiver sees ~0.8 events/s.
Creations only (invoices, payments, bills): edits to already-posted documents are held for
review by design, which is not what a loss check measures.

Every SAMPLE seconds: RSS of every process (receiver, daemon, code server, run workers,
simulators, PostgreSQL), inbox depth and the age of the oldest unprocessed event, posted counts.
At the end: activity stops, the queue drains, one catch-up runs, then every document created
during the soak must be in its ERP exactly once; RSS of the long-lived processes at the end is
compared with after warm-up; lag from creation to posting gives max and p95.

    python -m bench.soak [--minutes 30] [--rate-multiplier 10] [--sample 15]

Writes bench/results/soak-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.fullstack import FullStack

BASE_DOCUMENTS_PER_SECOND = 845 / 36_000  # per tenant, see above
EVENT_TYPES = ["invoice.created", "payment.created", "inventorybill.created"]
KINDS = {"invoice.created": ("invoice", "invoices"), "payment.created": ("payment", "payments"),
         "inventorybill.created": ("bill", "inventory-bills")}
LONG_LIVED = ("simulators", "receiver", "dagster-daemon", "code-server", "postgres")
RESULTS = Path(__file__).resolve().parent / "results"

def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]

def sample(stack: FullStack, started: float) -> dict:
    rss: dict[str, float] = {}
    main_rss: dict[str, float] = {}  # the role's oldest process: the long-lived one whose growth matters
    count: dict[str, int] = {}
    for role, procs in stack.processes().items():
        total, oldest = 0, None
        for p in procs:
            try:
                total += p.memory_info().rss
                if oldest is None or p.create_time() < oldest.create_time():
                    oldest = p
            except Exception:  # noqa: BLE001 - a run worker may end between listing and reading
                continue
        rss[role] = round(total / 2**20, 1)
        if oldest is not None:
            try:
                main_rss[role] = round(oldest.memory_info().rss / 2**20, 1)
            except Exception:  # noqa: BLE001
                pass
        count[role] = len(procs)
    with stack.store.transaction() as conn:
        inbox = conn.execute("SELECT count(*) AS n, extract(epoch FROM now() - min(received_at)) AS age "
                             "FROM inbox WHERE state = 'pending'").fetchone()
        statuses = {r["status"]: r["n"] for r in conn.execute(
            "SELECT status, count(*) AS n FROM records WHERE source_type NOT IN ('customer', 'vendor') "
            "GROUP BY 1").fetchall()}
    runs = Counter(r.status.value for r in stack.active_runs())
    return {"t": round(time.monotonic() - started, 1), "at": datetime.now(UTC).isoformat(), "rss_mib": rss, "main_rss_mib": main_rss,
            "processes": count, "inbox_depth": inbox["n"], "oldest_unprocessed_s": float(inbox["age"] or 0),
            "records": statuses, "runs_active": dict(runs)}

def created_documents(stack: FullStack, events: list[dict]) -> list[dict]:
    """The documents the activity created: connection, kind, ServiceTitan id, creation time."""
    by_tenant = {t: name for name, t in stack.tenants().items()}
    return [{"connection": by_tenant[e["tenantId"]], "kind": KINDS[e["eventType"]][0], "id": str(e["id"]),
             "at": e["at"]} for e in events if e["eventType"] in KINDS]

def erp_counts(stack: FullStack) -> dict[str, Counter]:
    """External references as each ERP holds them, counted (a duplicate shows as 2)."""
    from resources.acumatica import AcumaticaClient
    from resources.vantagepoint import VantagepointClient, pad_document_number

    a, v = stack.info["acumatica"], stack.info["vantagepoint"]
    acu_counts: Counter = Counter()
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        acu_counts.update(("invoice", i["CustomerOrder"]) for i in acu.iter_all("Invoice"))
        acu_counts.update(("payment", p["PaymentRef"]) for p in acu.iter_all("Payment"))
        acu_counts.update(("bill", b["VendorRef"]) for b in acu.iter_all("Bill"))
    vp_counts: Counter = Counter()
    with VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                            v["password"], rate_per_second=200) as vp:
        vp_counts.update(("invoice", pad_document_number(r.Invoice)) for r in vp.ledger("IN") if r.SubType == "A")
        vp_counts.update(("payment", r.RefNo.strip().lstrip("0")) for r in vp.ledger("CR") if r.SubType == "A")
        vp_counts.update(("bill", r.Invoice.strip()) for r in vp.ledger("AP") if r.SubType == "A")
    return {"cascade-hvac": acu_counts, "summit-mechanical": vp_counts}

def erp_key(connection: str, kind: str, document: dict) -> tuple[str, str]:
    from resources.vantagepoint import pad_document_number

    ref = document["reference"] if kind == "payment" else document["number"]
    if connection == "summit-mechanical":
        ref = pad_document_number(ref) if kind == "invoice" else ref.strip().lstrip("0") if kind == "payment" else ref
    return kind, ref

def check_loss(stack: FullStack, created: list[dict], started_at: datetime) -> dict:
    """Every created document in its ERP exactly once (zero-amount invoices are skipped by design)."""
    counts = erp_counts(stack)
    report = {"created": len(created), "posted_once": 0, "skipped_zero": 0, "missing": [], "duplicated": [],
              "latency_s": []}
    for doc in created:
        with stack.store.transaction() as conn:
            row = conn.execute(
                "SELECT r.status, r.payload->'document' AS document, (SELECT min(a.at) FROM audit a WHERE "
                "a.connection = r.connection AND a.source_type = r.source_type AND a.source_id = r.source_id "
                "AND a.step = 'posted') AS posted_at FROM records r WHERE r.connection = %s AND r.source_type = %s "
                "AND r.source_id = %s AND r.status <> 'superseded' ORDER BY r.id DESC LIMIT 1",
                (doc["connection"], doc["kind"], doc["id"])).fetchone()
        label = f"{doc['connection']} {doc['kind']} {doc['id']}"
        if row and row["status"] == "skipped":
            report["skipped_zero"] += 1
            continue
        if not row or not row["document"]:
            report["missing"].append(f"{label}: never reached the sync store")
            continue
        if doc["kind"] == "bill" and doc["connection"] == "summit-mechanical":
            n = sum(c for (k, ref), c in counts[doc["connection"]].items() if k == "bill"
                    and row["document"]["number"] in ref)
        else:
            n = counts[doc["connection"]][erp_key(doc["connection"], doc["kind"], row["document"])]
        if n == 0:
            report["missing"].append(f"{label}: {row['status']}, not in the ERP")
        elif n > 1:
            report["duplicated"].append(f"{label}: {n} times")
        else:
            report["posted_once"] += 1
            if row["posted_at"]:
                created_at = datetime.fromisoformat(doc["at"])
                report["latency_s"].append(((row["posted_at"] - created_at).total_seconds(),
                                            (created_at - started_at).total_seconds()))
    return report

def lag_stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    return {"n": len(values), "p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "max": round(max(values), 2), "mean": round(statistics.mean(values), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate-multiplier", type=float, default=10)
    parser.add_argument("--sample", type=float, default=15, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the RSS baseline and the steady-state lag (default 20%%)")
    parser.add_argument("--profile", default="mild")
    parser.add_argument("--notes", default="", help="free text stored in the results file")
    args = parser.parse_args(argv)
    per_second = 2 * BASE_DOCUMENTS_PER_SECOND * args.rate_multiplier  # changes per second, both tenants
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else max(60.0, duration * 0.2)
    started_at = datetime.now(UTC)
    stack = FullStack(profile=args.profile)
    stack.start()
    samples: list[dict] = []
    try:
        print(stack.describe(), flush=True)
        print(f"soak: {args.minutes:g} min, {per_second:.2f} changes/s ({args.rate_multiplier:g}x a large contractor "
              f"per tenant, two tenants), faults {args.profile!r}, sample every {args.sample:g} s", flush=True)
        started = time.monotonic()
        activity_at = datetime.now(UTC)
        activity = stack.activity(per_second, EVENT_TYPES)
        while time.monotonic() - started < duration:
            time.sleep(args.sample)
            s = sample(stack, started)
            samples.append(s)
            print(f"[{s['t']:7.0f}s] inbox {s['inbox_depth']:4d} (oldest {s['oldest_unprocessed_s']:5.1f}s) "
                  f"posted {s['records'].get('posted', 0):6d} pending {s['records'].get('pending', 0):5d} "
                  f"runs {s['runs_active']} RSS " + " ".join(f"{k}={v:.0f}" for k, v in sorted(s['rss_mib'].items())),
                  flush=True)
        activity.stop()
        soak_seconds = time.monotonic() - started
        for name in ("servicetitan", "acumatica", "vantagepoint"):
            stack.set_faults(name, "none")
        faults = stack.faults_injected()
        drained = stack.wait_idle(timeout=900)
        catch_up = stack.execute_requests(stack.catch_up_requests())
        drained_after = stack.wait_idle(timeout=600)
        final = sample(stack, started)
        created = created_documents(stack, activity.events)
        loss = check_loss(stack, created, activity_at)
        lat = [x for x, _ in loss["latency_s"]]
        steady = [x for x, at in loss.pop("latency_s") if at >= warmup]
        baseline = next((s for s in samples if s["t"] >= warmup), samples[0] if samples else final)
        memory = {}
        for role in LONG_LIVED:  # the long-lived process itself (PostgreSQL: the postmaster; backends come and go)
            first = baseline["main_rss_mib"].get(role)
            last = samples[-1]["main_rss_mib"].get(role) if samples else None
            if first and last:
                memory[role] = {"after_warmup_mib": first, "end_mib": last,
                                "growth_pct": round(100 * (last - first) / first, 1),
                                "all_processes_after_warmup_mib": baseline["rss_mib"].get(role),
                                "all_processes_end_mib": samples[-1]["rss_mib"].get(role)}
        inbox_ages = [s["oldest_unprocessed_s"] for s in samples]
        result = {
            "started_at": started_at.isoformat(), "minutes": args.minutes, "soak_seconds": round(soak_seconds, 1),
            "rate_multiplier": args.rate_multiplier, "changes_per_second": round(per_second, 3),
            "events_created": len(activity.events), "fault_profile": args.profile, "faults_injected": faults,
            "cpu_cores": os.cpu_count(), "drained_before_catch_up": drained, "drained_after_catch_up": drained_after,
            "catch_up_partitions": catch_up, "loss": loss,
            "warmup_seconds": warmup,
            "lag": {"create_to_posted_s": lag_stats(lat), "create_to_posted_after_warmup_s": lag_stats(steady),
                    "oldest_unprocessed_inbox_s": {"max": max(inbox_ages) if inbox_ages else None,
                                                   "p95": percentile(inbox_ages, 95) if inbox_ages else None},
                    "inbox_depth_max": max((s["inbox_depth"] for s in samples), default=None)},
            "memory": memory, "final": final, "samples": samples,
            "notes": ("Run on a shared 2-core machine while other engineers' test suites ran on the same cores; "
                      "latencies include that contention. " + args.notes).strip(),
        }
        print_summary(result)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"soak-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(result, indent=2, default=str))
        print(f"results: {out}")
        ok = not loss["missing"] and not loss["duplicated"]
        return 0 if ok else 1
    finally:
        stack.stop()

def print_summary(r: dict) -> None:
    lat = r["lag"]["create_to_posted_s"]
    steady = r["lag"]["create_to_posted_after_warmup_s"]
    print(f"\nsoak summary ({r['soak_seconds']:.0f} s at {r['changes_per_second']} changes/s, {r['cpu_cores']} cores)")
    print(f"  documents created {r['loss']['created']}: posted once {r['loss']['posted_once']}, zero-amount skipped "
          f"{r['loss']['skipped_zero']}, missing {len(r['loss']['missing'])}, duplicated {len(r['loss']['duplicated'])}")
    if lat["n"]:
        print(f"  creation -> posted: p50 {lat['p50']:.1f} s, p95 {lat['p95']:.1f} s, max {lat['max']:.1f} s (n={lat['n']})")
    if steady["n"]:
        print(f"  after warm-up ({r['warmup_seconds']:.0f} s): p50 {steady['p50']:.1f} s, p95 {steady['p95']:.1f} s, "
              f"max {steady['max']:.1f} s (n={steady['n']})")
    inbox = r["lag"]["oldest_unprocessed_inbox_s"]
    print(f"  oldest unprocessed inbox event: max {inbox['max']} s, p95 {inbox['p95']} s; "
          f"inbox depth max {r['lag']['inbox_depth_max']}")
    print(f"  {'process':14s} {'after warm-up MiB':>18s} {'end MiB':>8s} {'growth':>7s}")
    for role, m in r["memory"].items():
        print(f"  {role:14s} {m['after_warmup_mib']:18.0f} {m['end_mib']:8.0f} {m['growth_pct']:6.1f}%")
    print(f"  faults injected: {r['faults_injected']}")

if __name__ == "__main__":
    sys.exit(main())
