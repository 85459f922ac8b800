"""Intake: map extracted ServiceTitan records and register each version in the sync store.

A record that maps becomes a pending version keyed by its canonical document's hash (so an
unchanged record re-extracted on replay is recognised as already handled); one that cannot be
mapped is quarantined with its reason, keeping the raw record so a replay can map it again once
the connection file is fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from mappings.connection import Connection
from mappings.rules import MappingError, ZeroAmountDocument, map_record
from resources.store import SyncStore, content_hash

DATE_FIELDS = {"invoice": "invoiceDate", "payment": "date", "bill": "billDate"}


@dataclass
class IntakeSummary:
    counts: Counter = field(default_factory=Counter)
    quarantined: list[dict] = field(default_factory=list)


def register(store: SyncStore, conn: Connection, source_type: str, records: Iterable[dict], day: date | None,
             run_id: str | None = None, summary: IntakeSummary | None = None) -> IntakeSummary:
    """Map and register records; counts: extracted, new, unchanged, quarantined, skipped."""
    summary = summary or IntakeSummary()
    for raw in records:
        summary.counts["extracted"] += 1
        register_one(store, conn, source_type, raw, day, run_id, summary)
    return summary


def register_one(store: SyncStore, conn: Connection, source_type: str, raw: dict, day: date | None,
                 run_id: str | None, summary: IntakeSummary) -> None:
    source_id = str(raw.get("id"))
    try:
        doc = map_record(source_type, raw, conn)
    except MappingError as exc:
        hash_ = "raw:" + content_hash(raw)
        row, created = store.upsert_version(conn.name, source_type, source_id, hash_, day,
                                            {"source": raw, "document": None}, run_id)
        if created or row.status == "pending":
            store.record_outcome(row.id, "quarantined", step="mapped", outcome="quarantined", error_class="mapping",
                                 error_message=str(exc), run_id=run_id, count_attempt=False)
        summary.counts["quarantined"] += 1
        summary.quarantined.append({"record": f"{source_type} {source_id}", "class": "mapping",
                                    "message": exc.reason, "fix": exc.fix})
        return
    except ZeroAmountDocument as exc:
        hash_ = "zero:" + content_hash(raw)
        row, created = store.upsert_version(conn.name, source_type, source_id, hash_, day,
                                            {"source": raw, "document": None}, run_id)
        if created or row.status == "pending":
            store.record_outcome(row.id, "skipped", step="skipped", outcome="zero_amount",
                                 detail={"reason": str(exc)}, run_id=run_id, count_attempt=False)
        summary.counts["skipped"] += 1
        return
    document = doc.model_dump(mode="json")
    row, created = store.upsert_version(conn.name, source_type, source_id, doc.fingerprint(),
                                        getattr(doc, "date", None) or day, {"source": raw, "document": document},
                                        run_id)
    if created:
        summary.counts["new"] += 1
        store.audit(conn.name, source_type, source_id, "mapped", "ok", {"hash": row.content_hash}, run_id,
                    row.content_hash)
    elif row.status in ("posted", "skipped"):
        summary.counts["unchanged"] += 1
    else:
        summary.counts[f"already_{row.status}"] += 1


def remap_quarantined(store: SyncStore, conn: Connection, *, business_date: date | None = None,
                      source_id: str | None = None, run_id: str | None = None) -> IntakeSummary:
    """Map quarantined records again from their stored ServiceTitan payload (after a fix to the
    connection file); each gets a 'replayed' audit row."""
    summary = IntakeSummary()
    for rec in store.records(conn.name, statuses=["quarantined"], business_date=business_date, source_id=source_id):
        raw = (rec.payload or {}).get("source")
        if raw is None:
            continue
        store.audit(conn.name, rec.source_type, rec.source_id, "replayed", "remapped", {}, run_id, rec.content_hash)
        summary.counts["extracted"] += 1
        register_one(store, conn, rec.source_type, raw, rec.business_date, run_id, summary)
    return summary
