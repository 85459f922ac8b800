"""Reconciliation asset: for each connection and day, ServiceTitan totals (read from ServiceTitan's
API, not from fieldledger's mapping) vs ERP totals (read from the ERP) per business unit and
document type; its check fails on any difference of a cent or more."""


import dagster as dg

from pipelines.partitions import connection_day, split
from pipelines.resources import FieldledgerResource
from posting.reconcile import ZERO, from_servicetitan, reconcile

RECON_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("type", "string"), dg.TableColumn("key", "string"), dg.TableColumn("servicetitan", "string"),
    dg.TableColumn("erp", "string"), dg.TableColumn("difference", "string"),
])


@dg.asset(
    partitions_def=connection_day, group_name="reconciliation", kinds={"python"}, deps=["erp_postings"],
    pool="erp_api", code_version="2",
    description="ServiceTitan totals (from ServiceTitan) vs ERP totals (from the ERP) for the day, per "
                "business unit, to the cent.",
    check_specs=[dg.AssetCheckSpec("reconciled", asset="reconciliation",
                                   description="Every difference between ServiceTitan and the ERP is 0.00.")],
)
def reconciliation(context: dg.AssetExecutionContext, fieldledger: FieldledgerResource):
    connection, day = split(context)
    conn = fieldledger.connection(connection)
    with fieldledger.servicetitan(conn) as client, fieldledger.erp(conn) as adapter:
        rows = reconcile(fieldledger.store, conn, day, adapter, from_servicetitan(client))
    off = [r for r in rows if r.difference != ZERO]
    table = dg.MetadataValue.table(
        records=[dg.TableRecord({"type": r.source_type, "key": r.key, "servicetitan": str(r.servicetitan),
                                 "erp": str(r.erp), "difference": str(r.difference)}) for r in rows],
        schema=RECON_SCHEMA)
    total_diff = sum((abs(r.difference) for r in rows), ZERO)
    yield dg.MaterializeResult(
        metadata={"rows": dg.MetadataValue.int(len(rows)), "differences": dg.MetadataValue.int(len(off)),
                  "absolute_difference": str(total_diff), "totals": table},
        check_results=[dg.AssetCheckResult(
            check_name="reconciled", passed=not off, severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{r.source_type} {r.key}: ServiceTitan {r.servicetitan} vs ERP {r.erp}"
                                  for r in off[:5]) or "ServiceTitan and the ERP agree to the cent",
            metadata={"absolute_difference": str(total_diff)})],
    )


ASSETS = [reconciliation]
