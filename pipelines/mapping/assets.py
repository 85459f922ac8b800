"""The mapping asset: turns the day's extracted ServiceTitan records into canonical documents in
the sync store (or quarantines them with a reason), then checks every document that will be
posted against the ERP's reference data."""

import warnings

import dagster as dg

from mappings.intake import IntakeSummary, register
from pipelines.erp.reference import load_reference_data
from pipelines.metadata import failures_table
from pipelines.partitions import connection_day, split
from pipelines.resources import FieldledgerResource
from posting.validation import coding_problems, describe

SOURCES = (("customer", "st_customers"), ("vendor", "st_vendors"), ("invoice", "st_invoices"),
           ("invoice", "st_applied_invoices"), ("payment", "st_payments"), ("bill", "st_inventory_bills"))


with warnings.catch_warnings():  # beta in Dagster 1.13 and stable for our use: not on every CLI's stderr
    warnings.simplefilter("ignore", dg.BetaWarning)
    _DAY_TO_CONNECTION = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="connection")


@dg.asset(
    partitions_def=connection_day, group_name="mapping", kinds={"python", "postgres"}, code_version="1",
    description="Canonical documents for the day, GL-coded by the connection's business-unit rules.",
    deps=[dg.AssetDep("erp_reference_data", partition_mapping=_DAY_TO_CONNECTION)],
    check_specs=[
        dg.AssetCheckSpec("coding_valid", asset="mapped_documents", blocking=True,
                          description="Every document to be posted lands on an account/branch/project the ERP has."),
        dg.AssetCheckSpec("mapping_complete", asset="mapped_documents",
                          description="No record of the day is quarantined for want of a mapping."),
    ],
)
def mapped_documents(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource,
                     st_customers: list[dict], st_vendors: list[dict], st_invoices: list[dict],
                     st_payments: list[dict], st_inventory_bills: list[dict], st_applied_invoices: list[dict]):
    connection, day = split(context)
    conn = fieldledger.connection(connection)
    store = fieldledger.store
    inputs = {"st_customers": st_customers, "st_vendors": st_vendors, "st_invoices": st_invoices,
              "st_payments": st_payments, "st_inventory_bills": st_inventory_bills,
              "st_applied_invoices": st_applied_invoices}
    summary = IntakeSummary()
    for source_type, name in SOURCES:
        register(store, conn, source_type, inputs[name], day, context.run_id, summary)
    began = store.extraction_began(connection, day, context.run_id)
    if began is not None:  # every change known before this run read the day is registered
        store.satisfy_sync(connection, day, began)

    # Coding against the ERP: quarantine what would land on something the ERP does not have.
    ref, dimensions = load_reference_data(fieldledger, conn)
    invalid = 0
    for rec in store.records(connection, statuses=["pending", "failed"], business_date=day):
        document = (rec.payload or {}).get("document")
        problems = coding_problems(rec.source_type, document, ref, dimensions) if document else []
        if problems:
            invalid += 1
            message = describe(problems, conn.erp.kind)
            store.record_outcome(rec.id, "quarantined", step="mapped", outcome="quarantined", error_class="mapping",
                                 error_message=f"{rec.source_type} {rec.source_id}: {message}. Fix: add them in the "
                                 f"ERP or change mapping in connections/{connection}.yaml, then replay",
                                 run_id=context.run_id, count_attempt=False)
            summary.quarantined.append({"record": f"{rec.source_type} {rec.source_id}", "class": "mapping",
                                        "message": message, "fix": "add it in the ERP or fix the mapping; replay"})
    counts = summary.counts
    still_pending = [r for r in store.records(connection, statuses=["pending"], business_date=day)
                     if (r.payload or {}).get("document")
                     and coding_problems(r.source_type, r.payload["document"], ref, dimensions)]
    quarantined_today = len(store.records(connection, statuses=["quarantined"], business_date=day))
    yield dg.MaterializeResult(
        metadata={
            "extracted": dg.MetadataValue.int(counts["extracted"]),
            "new_versions": dg.MetadataValue.int(counts["new"]),
            "unchanged": dg.MetadataValue.int(counts["unchanged"]),
            "quarantined": dg.MetadataValue.int(counts["quarantined"] + invalid),
            "skipped_zero_amount": dg.MetadataValue.int(counts["skipped"]),
            "quarantined_records": failures_table(summary.quarantined),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="coding_valid", passed=not still_pending, severity=dg.AssetCheckSeverity.ERROR,
                metadata={"invalid_pending": dg.MetadataValue.int(len(still_pending))},
            ),
            dg.AssetCheckResult(
                check_name="mapping_complete", passed=quarantined_today == 0, severity=dg.AssetCheckSeverity.WARN,
                description=(f"{quarantined_today} record(s) of {day} quarantined: "
                             + "; ".join(list(dict.fromkeys(q["message"] for q in summary.quarantined))[:3]))
                if quarantined_today else
                "every record of the day is mapped",
                metadata={"quarantined": dg.MetadataValue.int(quarantined_today),
                          "records": failures_table(summary.quarantined)},
            ),
        ],
    )


ASSETS = [mapped_documents]
