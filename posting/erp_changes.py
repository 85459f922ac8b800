"""The ERP catch-up: what people changed in the ERP after fieldledger posted, applied to the sync
store. A posted document voided (or reversed) or deleted in the ERP holds its record as
``needs_review`` (class ``conflict``) with what happened and what to do; a customer or vendor a
person created in the ERP is linked to the ServiceTitan party of exactly that name that has no ERP
key yet, so posting does not create a second one.

Finding changes is the adapters' job (``changes_since``, the poll) plus ``verify_posted_exist``
(the existence check that finds deletions, which no ERP poll reports). Scheduling both is the
Dagster sensor's job (pipelines/), not this module's. Applying is idempotent: only records still
``posted`` are flagged, only unlinked parties are linked.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date

from mappings.canonical import document_from_json
from posting.adapter import ErpAdapter, ErpChange
from resources.store import Record, SyncStore

log = logging.getLogger("fieldledger.posting.erp_changes")

DOCUMENT_TYPES = ("invoice", "payment", "bill")
PARTY_TYPES = ("customer", "vendor")
LINKABLE_STATUSES = frozenset({"pending", "failed"})  # a party fieldledger has not put in the ERP yet

WHAT_TO_DO = {
    "document_voided": (
        "fieldledger will not post it again. If the work was cancelled, void or credit it in ServiceTitan too; "
        "if it was voided by mistake, re-enter it in the ERP by hand. Then mark it reviewed with "
        "`fieldledger replay --connection {connection} --record {source_id}` (the voided document is found "
        "and recorded, nothing is posted)"),
    "document_deleted": (
        "If the deletion was intended, void or credit it in ServiceTitan too and leave this record as it is; "
        "to post it again, run `fieldledger replay --connection {connection} --record {source_id}`"),
}
HAPPENED = {"document_voided": "was voided or reversed", "document_deleted": "no longer exists (deleted)"}


def apply_erp_changes(store: SyncStore, connection: str, changes: list[ErpChange],
                      run_id: str | None = None) -> dict[str, int]:
    """Apply polled ERP changes to the sync store. Counts: ``flagged`` (records set needs_review),
    ``linked`` (parties linked), ``unknown_documents`` (voided/deleted keys fieldledger never
    posted, or already flagged), ``unmatched_parties`` (no unlinked ServiceTitan party of that
    name), ``ambiguous_parties`` (several parties or ERP records share the name: nothing linked)."""
    counts: Counter[str] = Counter()
    for change in changes:
        if change.kind in HAPPENED:
            flagged = _flag_document(store, connection, change, run_id)
            counts["flagged"] += flagged
            counts["unknown_documents"] += 0 if flagged else 1
    # ERP keys per created name: a name created twice cannot be told apart, so neither is linked
    created: dict[tuple[str, str | None], dict[str, ErpChange]] = defaultdict(dict)
    for change in changes:
        if change.kind == "party_created":
            created[(change.source_type, change.name)].setdefault(change.key, change)
    for (source_type, name), by_key in created.items():
        if not name or source_type not in PARTY_TYPES:
            counts["unmatched_parties"] += len(by_key)
        elif len(by_key) > 1:
            counts["ambiguous_parties"] += len(by_key)
            log.warning("%s %r was created %d times in the ERP (%s): none linked; link the right one by hand",
                        source_type, name, len(by_key), ", ".join(by_key))
        else:
            counts[_link_party(store, connection, name, next(iter(by_key.values())), run_id)] += 1
    return {k: v for k, v in counts.items() if v}


def _flag_document(store: SyncStore, connection: str, change: ErpChange, run_id: str | None) -> int:
    records = store.records_by_target_key(connection, change.key, change.source_type)
    for record in records:
        message = (f"{record.source_type} {record.source_id} was posted as {change.key}, which "
                   f"{HAPPENED[change.kind]} in the ERP after fieldledger posted it"
                   + (f" ({change.detail})" if change.detail else "") + ". "
                   + WHAT_TO_DO[change.kind].format(connection=connection, source_id=record.source_id) + ".")
        store.record_outcome(record.id, "needs_review", step="failed", outcome="conflict", error_class="conflict",
                             error_message=message, run_id=run_id, count_attempt=False,
                             detail={"erp_change": change.kind, "target_key": change.key, "erp_detail": change.detail})
        log.warning("%s", message)
    return len(records)


def _link_party(store: SyncStore, connection: str, name: str, change: ErpChange, run_id: str | None) -> str:
    """Link the one unlinked ServiceTitan party named exactly ``name`` to the ERP's new party: its
    id map entry, the record marked posted with that key, and the audit row, in one transaction."""
    candidates = store.unlinked_records_named(connection, change.source_type, name)
    if not candidates:
        return "unmatched_parties"
    if len(candidates) > 1:
        log.warning("%d ServiceTitan %ss are named %r (%s); %s %s not linked: link it by hand", len(candidates),
                    change.source_type, name, ", ".join(r.source_id for r in candidates), change.source_type,
                    change.key)
        return "ambiguous_parties"
    record = candidates[0]
    detail = {"erp_change": change.kind, "erp_key": change.key, "erp_detail": change.detail,
              "previous_status": record.status}
    if record.status in LINKABLE_STATUSES:
        store.record_outcome(record.id, "posted", step="posted", outcome="linked_erp_party", target_key=change.key,
                             id_map_entity=change.source_type, run_id=run_id, count_attempt=False, detail=detail)
    else:  # quarantined or held for review: keep its status, but never create the party again
        store.link(connection, change.source_type, record.source_id, change.key)
        store.audit(connection, record.source_type, record.source_id, "posted", "linked_erp_party", detail, run_id,
                    content_hash=record.content_hash)
    log.info("%s %s linked to %s %r created in the ERP", record.source_type, record.source_id, change.key, name)
    return "linked"


def verify_posted_exist(store: SyncStore, connection: str, adapter: ErpAdapter,
                        days: Iterable[date]) -> list[ErpChange]:
    """The existence check: every document posted for ``days`` looked up in the ERP by its external
    reference; each one no longer found is reported as ``document_deleted`` (apply it with
    apply_erp_changes). Voided documents still exist and are left to the poll."""
    changes: list[ErpChange] = []
    for day in days:
        latest: dict[tuple[str, str], Record] = {}
        for record in store.records(connection, statuses=["posted"], business_date=day):
            if record.source_type in DOCUMENT_TYPES and record.target_key and (record.payload or {}).get("document"):
                latest[(record.source_type, record.source_id)] = record  # ordered by id: the newest wins
        for source_type in DOCUMENT_TYPES:  # one type per look-up: ids of different types may coincide
            records = {sid: r for (st, sid), r in latest.items() if st == source_type}
            if not records:
                continue
            docs = {sid: document_from_json(source_type, r.payload["document"]) for sid, r in records.items()}
            found = adapter.find_documents(list(docs.values()))
            for source_id, record in records.items():
                if source_id not in found:
                    changes.append(ErpChange(
                        "document_deleted", source_type, record.target_key or "",
                        detail=f"no {adapter.kind} document carries its external reference "
                               f"{docs[source_id].external_ref} any more (checked for {day.isoformat()})"))
    return changes
