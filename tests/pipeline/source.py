"""What ServiceTitan says a connection's days hold, mapped with the connection's rules: the
expected side of the pipeline tests (read straight from the ServiceTitan simulator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mappings.connection import load_connection
from mappings.rules import MappingError, ZeroAmountDocument, map_record
from pipelines.servicetitan import extract
from resources.servicetitan import ServiceTitanClient


def last_days(n: int) -> list:
    today = datetime.now(UTC).date()
    return [today - timedelta(days=i) for i in range(n - 1, -1, -1)]


def source_documents(info: dict, connection: str, days) -> dict[str, dict]:
    st = info["servicetitan"]
    t = st["tenants"][connection]
    conn = load_connection(connection)
    docs: dict[str, dict] = {"invoice": {}, "payment": {}, "bill": {}}
    with ServiceTitanClient(st["base_url"], st["auth_url"], t["tenant"], t["client_id"], t["client_secret"],
                            t["app_key"]) as client:
        for day in days:
            for kind in docs:
                for raw in extract.day_records(client, kind, day):
                    try:
                        docs[kind][str(raw["id"])] = map_record(kind, raw, conn)
                    except (MappingError, ZeroAmountDocument):
                        pass
    return docs
