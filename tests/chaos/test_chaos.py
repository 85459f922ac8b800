"""Chaos: both demo connections under combined faults, with answers to ERP writes lost after the
commit, a run worker SIGKILLed mid-posting, the receiver and PostgreSQL restarted, every token
revoked, and two syncs of one connection and day racing on a slow ERP under a short claim lease
(the scenario is in conftest.py). After
recovery every ServiceTitan document of the period is in its ERP exactly once with the right
amounts and accounts, reconciliation is off by 0.00, the audit trail is complete, and no secret
or token appears anywhere a person or a process can read."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from contextlib import closing
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet, InvalidToken

from mappings.connection import load_connection
from posting.reconcile import from_servicetitan, reconcile
from posting.registry import open_adapter, open_servicetitan
from resources.vault import Vault, load_keys
from tests.chaos.erp_checks import check_acumatica, check_vantagepoint
from tests.chaos.sweep import database_tables, sweep
from tests.pipeline.source import source_documents

pytestmark = pytest.mark.slow
CHECKS = {"cascade-hvac": check_acumatica, "summit-mechanical": check_vantagepoint}


@pytest.fixture(scope="module")
def outcome(chaos):
    """ServiceTitan's side of the period and each ERP's findings, read once."""
    results = {}
    for name, check in CHECKS.items():
        expected = source_documents(chaos.stack.info, name, chaos.period(name))
        results[name] = (expected, check(chaos.stack.info, chaos.stack.store, name, expected, chaos.period(name)))
    _print_summary(chaos, results)
    return results


def _print_summary(chaos, results) -> None:
    print("\n\nchaos summary")
    print(f"  period {chaos.days[0]}..{chaos.days[-1]}, {chaos.events} ServiceTitan events, killed run "
          f"{chaos.killed_run[:8]} (pid {chaos.killed_pid}) after {chaos.killed_posted} postings; "
          f"automatic retries of it: {[(r.run_id[:8], r.status.value) for r in chaos.retry_runs]}; "
          f"catch-up runs: {chaos.catch_up_runs}; racing syncs on a slow ERP: {chaos.overlaps}")
    print(f"  {'connection':20s} {'ERP':13s} {'invoices':>8s} {'payments':>8s} {'bills':>6s} {'expected':>8s} "
          f"{'dupes':>5s} {'missing':>7s} {'wrong':>5s}")
    for name, (expected, f) in results.items():
        total = sum(len(v) for v in expected.values())
        print(f"  {name:20s} {f.erp:13s} {f.documents['invoice']:8d} {f.documents['payment']:8d} "
              f"{f.documents['bill']:6d} {total:8d} {len(f.duplicates):5d} {len(f.missing):7d} {len(f.wrong):5d}")
    print("  faults injected:")
    for sim, counts in chaos.faults.items():
        print(f"    {sim:13s} " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
              + f"; tokens revoked by hand {chaos.revoked.get(sim, 0)}")
    errors = Counter()
    for sim, stats in chaos.http_errors.items():
        by_status = (stats.get("requests") or {}).get("by_status") if sim == "servicetitan" else stats.get("by_status")
        for status, n in (by_status or {}).items():
            if int(status) >= 429:
                errors[f"{sim} {status}"] += n
    print("  error answers the clients retried or recorded: " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
    with chaos.stack.store.transaction() as conn:
        retried = conn.execute("SELECT count(*) AS n FROM records WHERE status = 'posted' AND attempts > 1").fetchone()
        failed_steps = conn.execute("SELECT outcome, count(*) AS n FROM audit WHERE step = 'failed' GROUP BY 1").fetchall()
    print(f"  records posted after more than one attempt: {retried['n']}; failed attempts by class: "
          f"{ {r['outcome']: r['n'] for r in failed_steps} }")
    import dagster as dg

    runs = chaos.stack.instance().get_runs(filters=dg.RunsFilter(job_name="sync"))
    failed = [(r.tags.get("dagster/partition"), r.tags.get("dagster/failure_reason", "worker died")) for r in runs
              if r.status == dg.DagsterRunStatus.FAILURE]
    reasons = Counter(r.tags.get("fieldledger/reason") for r in runs)
    print(f"  daemon runs: {len(runs)} by reason {dict(reasons)}; failed: {failed}")
    print("  timeline: " + "; ".join(f"{t:.0f}s {what}" for t, what in chaos.timeline))


def test_every_document_of_the_period_is_in_its_erp_exactly_once(chaos, outcome):
    for name, (expected, found) in outcome.items():
        assert sum(len(v) for v in expected.values()) > 0, f"{name}: the period holds no documents"
        assert found.duplicates == [], (name, found.duplicates[:10])
        assert found.missing == [], (name, found.missing[:10])
        assert found.wrong == [], (name, found.wrong[:10])
        assert sum(found.documents.values()) == sum(len(v) for v in expected.values())


def test_every_simulator_really_injected_faults(chaos, outcome):
    st = chaos.faults["servicetitan"]
    assert sum(v for k, v in st.items() if k.startswith("webhook_")) > 0, st
    assert sum(chaos.faults["acumatica"].values()) > 0 and sum(chaos.faults["vantagepoint"].values()) > 0
    assert chaos.faults["vantagepoint"].get("maintenance_503", 0) > 0
    assert chaos.faults["acumatica"].get("lost_answer", 0) > 0, chaos.faults["acumatica"]
    assert chaos.faults["vantagepoint"].get("lost_answer", 0) > 0, chaos.faults["vantagepoint"]


def test_two_syncs_of_one_day_raced_on_a_slow_erp(chaos, outcome):
    """The racing syncs ran to their end, both of them, for each connection, on a day that held
    documents nothing had posted yet, so they contended for every one of them (a few may fail
    under the ERPs' faults and be finished by the retry sensor: that each is in the ERP once is
    checked with everything else, exactly once and nothing missing)."""
    assert set(chaos.overlaps) and all(len(results) == 2 for results in chaos.overlaps.values()), chaos.overlaps
    assert set(chaos.raced) == set(chaos.overlaps), chaos.raced
    for key, (held, before, after) in chaos.raced.items():
        assert held > 0 and before == 0 and 0 < after <= held, (key, held, before, after)


def test_the_killed_run_was_recovered_by_the_product(chaos, outcome):
    instance = chaos.stack.instance()
    killed = instance.get_run_by_id(chaos.killed_run)
    assert killed.status.value == "FAILURE"  # the code server saw its worker die
    assert chaos.retry_runs, "run retries should re-execute a run whose worker died"
    assert any(r.status.value == "SUCCESS" for r in chaos.retry_runs), [r.status for r in chaos.retry_runs]
    store = chaos.stack.store
    left = [(r.connection, r.source_type, r.source_id, r.status, r.error_class, (r.error_message or "")[:200])
            for name in CHECKS for r in store.records(name, statuses=["pending", "failed"])]
    assert chaos.recovered, ("the daemon's own mechanisms should leave nothing pending before the catch-up",
                             left[:10], store.open_demand()[:10])


def test_no_open_failures_and_reconciliation_is_exact(chaos, outcome):
    store = chaos.stack.store
    assert [key for key, ok in chaos.catch_up_runs if not ok] == []
    for name in CHECKS:
        counts = store.status_counts(name)
        assert counts.get("failed", 0) == counts.get("quarantined", 0) == counts.get("needs_review", 0) == 0, counts
        assert counts.get("pending", 0) == 0, counts
        conn = load_connection(name)
        vault = Vault(store)
        # ServiceTitan's side from ServiceTitan's API: independent of what fieldledger extracted or mapped
        with closing(open_adapter(conn, vault)) as adapter, open_servicetitan(conn, vault) as client:
            rows = [r for day in chaos.period(name) for r in reconcile(store, name, day, adapter,
                                                                        from_servicetitan(client))]
        assert rows, f"{name}: nothing to reconcile"
        assert [r for r in rows if r.difference != Decimal("0.00")] == []


def test_every_posted_record_has_its_whole_history(chaos, outcome):
    """extracted -> mapped -> posted, for the very version that was posted."""
    with chaos.stack.store.transaction() as conn:
        gaps = conn.execute(
            "SELECT r.connection, r.source_type, r.source_id, array_agg(DISTINCT a.step) AS steps FROM records r "
            "LEFT JOIN audit a ON a.connection = r.connection AND a.source_type = r.source_type "
            "AND a.source_id = r.source_id AND a.content_hash = r.content_hash WHERE r.status = 'posted' "
            "GROUP BY 1, 2, 3 HAVING NOT (array_agg(DISTINCT a.step) @> ARRAY['extracted', 'mapped', 'posted'])"
        ).fetchall()
        posted = conn.execute("SELECT count(*) AS n FROM records WHERE status = 'posted'").fetchone()["n"]
    assert posted > 0
    assert gaps == [], gaps[:10]


def _cli(chaos, *args: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "fieldledger.cli", *args], env=chaos.stack.env_for_children(),
                          capture_output=True, timeout=120)
    return done.stdout + done.stderr


def _secrets(chaos) -> dict[str, str]:
    vault = Vault(chaos.stack.store)
    found = {f"vault {s.connection}/{s.name}": vault.get(s.connection, s.name) for s in vault.list()}
    for i, token in enumerate(chaos.stack.issued_tokens()):
        found[f"issued token #{i}"] = token
    return found


def test_no_secret_or_token_appears_anywhere(chaos, outcome):
    stack = chaos.stack
    secrets = _secrets(chaos)
    assert sum(1 for k in secrets if k.startswith("issued token")) > 3  # the sims handed out tokens and we have them

    def places():
        for path in stack.log_files():
            yield "log file", str(path), path.read_bytes()
        for path in stack.stored_files():
            yield "dagster stored file", str(path), path.read_bytes()
        for table, data in database_tables(stack.env["FIELDLEDGER_DAGSTER_DATABASE_URL"]):
            yield "dagster table", table, data
        for table, data in database_tables(stack.env["FIELDLEDGER_DATABASE_URL"], skip=("secrets",)):
            yield "sync store table", table, data
        for args in (("status",), ("errors", "list"), ("secrets", "list"), ("connections", "list")):
            yield "cli output", " ".join(args), _cli(chaos, *args)
        for path in (stack.home / "connections").glob("*.yaml"):
            yield "connection file", path.name, path.read_bytes()

    report = sweep(secrets, places())
    print(f"\n  secret sweep: {report.secrets} secrets/tokens searched in {report.places} places "
          f"({report.bytes / 2**20:.1f} MiB): {report.by_kind}; hits {len(report.hits)}")
    assert report.by_kind.get("dagster table", 0) > 5 and report.by_kind.get("log file", 0) >= 4
    assert report.hits == []


def test_secrets_unreadable_without_the_key_and_key_rotation_reencrypts(chaos, outcome):
    stack = chaos.stack
    store = stack.store
    vault = Vault(store)
    values = {(s.connection, s.name): vault.get(s.connection, s.name) for s in vault.list()}
    assert len(values) >= 14
    raw = b"".join(bytes(r["ciphertext"]) for r in store.secret_rows())
    with store.transaction() as conn:
        conn.execute("CHECKPOINT")
        relpath = conn.execute("SELECT pg_relation_filepath('secrets') AS p").fetchone()["p"]
    heap = (stack.pgdata / relpath).read_bytes()
    for value in values.values():
        assert value.encode() not in raw and value.encode() not in heap

    old_keys = load_keys()
    rotated = vault.rotate_key()
    assert rotated == len(values)
    new_keys = load_keys()
    assert new_keys[0] not in old_keys and len(new_keys) == 1
    for row in store.secret_rows():
        for key in old_keys:
            with pytest.raises(InvalidToken):
                Fernet(key).decrypt(bytes(row["ciphertext"]))
    fresh = Vault(store)
    assert {k: fresh.get(*k) for k in values} == values
