"""ServiceTitan extract assets, one per record type, partitioned by connection x business day.

Each returns the day's raw records exactly as the API gave them (the mapping step keeps them as
the replayable source payload). Customers and vendors are fetched by id for the day's documents.
"""

import dagster as dg

from pipelines.partitions import connection_day, split
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan import extract

COMMON = dict(partitions_def=connection_day, group_name="servicetitan", kinds={"servicetitan"},
              pool="servicetitan_api", code_version="1")


def _documents(context, fieldledger: FieldledgerResource, source_type: str) -> list[dict]:
    connection, day = split(context)
    conn = fieldledger.connection(connection)
    began = fieldledger.store.now()  # every change known before this is in what the read returns
    with fieldledger.servicetitan(conn) as client:
        records = extract.day_records(client, source_type, day)
    fieldledger.store.audit(connection, source_type, "*", "extracted", "ok",
                            {"day": str(day), "count": len(records), "began": began.isoformat()}, context.run_id)
    context.add_output_metadata({"records": dg.MetadataValue.int(len(records))})
    return records


@dg.asset(description="Job invoices (with items) dated on the partition's day.", **COMMON)
def st_invoices(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource) -> list[dict]:
    return _documents(context, fieldledger, "invoice")


@dg.asset(description="Payments (with appliedTo) dated on the partition's day.", **COMMON)
def st_payments(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource) -> list[dict]:
    return _documents(context, fieldledger, "payment")


@dg.asset(description="Inventory bills created by received purchase orders, dated on the day.", **COMMON)
def st_inventory_bills(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource) -> list[dict]:
    return _documents(context, fieldledger, "bill")


@dg.asset(description="Earlier invoices the day's payments apply to that are not in the ERP yet "
                      "(so a payment never waits on a day that was not synced).", **COMMON)
def st_applied_invoices(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource,
                        st_payments: list[dict], st_invoices: list[dict]) -> list[dict]:
    connection, _ = split(context)
    applied = {str(a.get("appliedTo")) for p in st_payments for a in (p.get("appliedTo") or [])}
    applied -= {str(i.get("id")) for i in st_invoices}
    known = fieldledger.store.lookup_many(connection, "invoice", applied)
    missing = sorted(int(i) for i in applied - set(known) if i.isdigit())
    conn = fieldledger.connection(connection)
    with fieldledger.servicetitan(conn) as client:
        records = extract.by_ids(client, "invoice", missing)
    context.add_output_metadata({"records": dg.MetadataValue.int(len(records))})
    return records


@dg.asset(description="The customers the day's invoices and payments belong to.", **COMMON)
def st_customers(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource,
                 st_invoices: list[dict], st_payments: list[dict], st_applied_invoices: list[dict]) -> list[dict]:
    ids = extract.referenced_ids(st_invoices + st_payments + st_applied_invoices, "customer")
    conn = fieldledger.connection(split(context)[0])
    with fieldledger.servicetitan(conn) as client:
        records = extract.by_ids(client, "customer", ids)
    context.add_output_metadata({"records": dg.MetadataValue.int(len(records))})
    return records


@dg.asset(description="The vendors of the day's inventory bills.", **COMMON)
def st_vendors(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource,
               st_inventory_bills: list[dict]) -> list[dict]:
    ids = extract.referenced_ids(st_inventory_bills, "vendor")
    conn = fieldledger.connection(split(context)[0])
    with fieldledger.servicetitan(conn) as client:
        records = extract.by_ids(client, "vendor", ids)
    context.add_output_metadata({"records": dg.MetadataValue.int(len(records))})
    return records


ASSETS = [st_invoices, st_payments, st_inventory_bills, st_applied_invoices, st_customers, st_vendors]
