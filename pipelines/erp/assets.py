"""ERP assets: reference data read from the ERP, and the postings of each day's documents through
the one posting protocol. Both ERPs share these assets; the connection decides the adapter."""


from collections import Counter

import dagster as dg

from mappings.canonical import document_from_json
from pipelines.erp.reference import refresh_reference_data
from pipelines.metadata import failures_table
from pipelines.partitions import connection_day, connection_partitions, split
from pipelines.resources import FieldledgerResource
from posting.protocol import Poster, fix_for


@dg.asset(partitions_def=connection_partitions, group_name="erp", kinds={"acumatica", "vantagepoint"},
          description="Chart of accounts, subaccounts, branches / projects and organizations, read from the ERP.",
          pool="erp_api", code_version="1")
def erp_reference_data(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource) -> dg.MaterializeResult:
    conn = fieldledger.connection(context.partition_key)
    ref, dims = refresh_reference_data(fieldledger, conn)
    return dg.MaterializeResult(metadata={
        "erp": conn.erp.kind, "accounts": len(ref.accounts), "subaccounts": len(ref.subaccounts),
        "branches": len(ref.branches), "projects": len(ref.projects), "organizations": len(ref.organizations),
        "closed_periods": ", ".join(sorted(ref.closed_periods)) or "none", "dimensions": ", ".join(dims),
    })


@dg.asset(
    partitions_def=connection_day, group_name="erp", kinds={"acumatica", "vantagepoint"}, code_version="1",
    pool="erp_api", deps=["mapped_documents"],
    description="The day's documents posted to the ERP exactly once (check-before-post by external reference).",
    check_specs=[
        dg.AssetCheckSpec("counts_add_up", asset="erp_postings",
                          description="posted + skipped + quarantined + failed + review = documents of the day"),
        dg.AssetCheckSpec("no_duplicate_external_refs", asset="erp_postings",
                          description="Each document's external reference appears once in the ERP."),
    ],
)
def erp_postings(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource):
    connection, day = split(context)
    conn = fieldledger.connection(connection)
    store = fieldledger.store
    summary_counts: Counter = Counter()
    failures: list[dict] = []
    with fieldledger.erp(conn) as adapter:
        poster = Poster(store, adapter, connection, context.run_id)
        store.release_dead_claims()  # a run killed mid-posting must not block this one
        worker = store.worker_id(f"run-{context.run_id}")
        # claims are leases on documents: renewed while this run works, checked before each post
        with store.heartbeat(worker):
            claimed = []
            while batch := store.claim(connection, worker, limit=500, business_date=day, statuses=("pending", "failed")):
                claimed += batch
            # earlier invoices the day's payments apply to (fetched by st_applied_invoices) post with them
            applied = {a["invoice_id"] for r in claimed if r.source_type == "payment"
                       for a in ((r.payload or {}).get("document") or {}).get("applications", [])}
            if applied:
                claimed += store.claim(connection, worker, limit=5000, source_types=["invoice"], source_ids=applied,
                                       statuses=("pending", "failed"))
            # parties first registered on another day (by an earlier or concurrent run) that these documents need
            documents = [(r.payload or {}).get("document") or {} for r in claimed]
            for entity, field in (("customer", "customer_id"), ("vendor", "vendor_id")):
                wanted = {d[field] for d in documents if d.get(field)}
                if wanted:
                    claimed += store.claim(connection, worker, limit=5000, source_types=[entity], source_ids=wanted,
                                           statuses=("pending", "failed"))
            result = poster.post(claimed)  # parties first, then invoices and bills, then payments
            summary_counts.update(result.counts)
            failures += result.failures
        duplicates = adapter.duplicate_external_refs(
            [document_from_json(r.source_type, r.payload["document"])
             for r in store.records(connection, business_date=day, statuses=["posted"])
             if r.source_type not in ("customer", "vendor") and (r.payload or {}).get("document")])
    status = Counter(r.status for r in store.records(connection, business_date=day) if r.status != "superseded")
    documents = sum(status.values())
    accounted = sum(status[s] for s in ("posted", "skipped", "quarantined", "failed", "needs_review", "pending"))
    open_failures = [{"record": f"{r.source_type} {r.source_id}", "class": r.error_class or "",
                      "message": r.error_message or "", "fix": fix_for(r.error_class, r.id)}
                     for r in store.records(connection, business_date=day,
                                            statuses=["failed", "quarantined", "needs_review"])]
    yield dg.MaterializeResult(
        metadata={
            "posted": dg.MetadataValue.int(summary_counts["posted"]),
            "found_existing": dg.MetadataValue.int(summary_counts["found_existing"]),
            "failed": dg.MetadataValue.int(summary_counts["failed"]),
            "needs_review": dg.MetadataValue.int(summary_counts["needs_review"]),
            "day_posted_total": dg.MetadataValue.int(status["posted"]),
            "day_skipped": dg.MetadataValue.int(status["skipped"]),
            "day_quarantined": dg.MetadataValue.int(status["quarantined"]),
            "day_open_failures": dg.MetadataValue.int(len(open_failures)),
            "failures": failures_table(open_failures),
        },
        check_results=[
            dg.AssetCheckResult(check_name="counts_add_up", passed=accounted == documents and status["pending"] == 0,
                                metadata={k: dg.MetadataValue.int(v) for k, v in status.items()}),
            dg.AssetCheckResult(check_name="no_duplicate_external_refs", passed=not duplicates,
                                severity=dg.AssetCheckSeverity.ERROR,
                                description="; ".join(f"{ref}: {keys}" for ref, keys in list(duplicates.items())[:5])
                                or "every external reference is unique",
                                metadata={"duplicates": dg.MetadataValue.int(len(duplicates))}),
        ],
    )


ASSETS = [erp_reference_data, erp_postings]
