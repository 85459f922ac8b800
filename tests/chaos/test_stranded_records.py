"""Found by the chaos run: a run whose step failed when PostgreSQL restarted left its day's records
pending, and nothing requested that day again. The retry sensor's query now names such days."""

from __future__ import annotations

from datetime import date

from resources.store import content_hash


def _pending(store, day: date, source_id: str):
    row, _ = store.upsert_version("cascade-hvac", "invoice", source_id, content_hash({"id": source_id}), day,
                                  {"document": {"id": source_id}})
    return row


def _age(store, record_id: int, seconds: int) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE records SET updated_at = now() - make_interval(secs => %s) WHERE id = %s",
                     (seconds, record_id))


def test_pending_records_left_behind_by_a_failed_run_are_due_again(store):
    fresh = _pending(store, date(2026, 11, 2), "1")
    stranded = _pending(store, date(2026, 11, 3), "2")
    claimed = _pending(store, date(2026, 11, 4), "3")
    _age(store, stranded.id, 600)
    store.claim("cascade-hvac", "host:1:run-x", source_ids=["3"])
    _age(store, claimed.id, 600)
    due = store.due_retry_partitions()
    assert ("cascade-hvac", date(2026, 11, 3)) in due
    assert ("cascade-hvac", date(2026, 11, 2)) not in due  # its run may still be on its way
    assert ("cascade-hvac", date(2026, 11, 4)) not in due  # a live worker holds it
    assert fresh.status == "pending"
