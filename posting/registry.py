"""Opens the right ERP adapter for a connection (the only place that branches on ERP kind)."""

from __future__ import annotations

from mappings.connection import Connection
from posting.adapter import ErpAdapter
from resources.vault import Vault


def open_adapter(conn: Connection, vault: Vault) -> ErpAdapter:
    if conn.erp.kind == "acumatica":
        from posting.acumatica import AcumaticaAdapter

        return AcumaticaAdapter.open(conn, vault)
    if conn.erp.kind == "vantagepoint":
        from posting.vantagepoint import VantagepointAdapter

        return VantagepointAdapter.open(conn, vault)
    raise ValueError(f"connection {conn.name}: unknown ERP kind {conn.erp.kind!r}")
