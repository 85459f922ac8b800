"""Opens a connection's clients: the right ERP adapter (the only place that branches on ERP kind)
and its ServiceTitan client, from the secrets the connection file names."""

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


def open_servicetitan(conn: Connection, vault: Vault, **options):
    """A ServiceTitan client for the connection (close it, or use it as a context manager)."""
    from resources.servicetitan import ServiceTitanClient

    st = conn.servicetitan
    creds = {k: vault.get(conn.name, st.secrets[k]) for k in ("client_id", "client_secret", "app_key")}
    return ServiceTitanClient(base_url=st.base_url, auth_url=st.auth_url, tenant=st.tenant,
                              rate_per_second=st.rate_per_second, **creds, **options)
