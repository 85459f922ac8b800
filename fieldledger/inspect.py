"""What the operator asks of the sync store from the command line: open failures with their
fix, and per-connection status (last event, last posting, lag, open failures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from posting.protocol import FIXES
from resources.store import OPEN_FAILURE_STATUSES, SyncStore


@dataclass(frozen=True)
class ConnectionStatus:
    connection: str
    last_event: datetime | None
    last_posting: datetime | None
    pending: int
    open_failures: int

    @property
    def lag_seconds(self) -> float | None:
        """How long ago the last webhook arrived without a posting after it (None: caught up)."""
        if self.last_event is None or (self.last_posting and self.last_posting >= self.last_event):
            return None
        return (datetime.now(UTC) - self.last_event).total_seconds()


def connection_status(store: SyncStore, connection: str) -> ConnectionStatus:
    with store.transaction() as conn:
        event = conn.execute("SELECT max(received_at) AS t FROM inbox WHERE connection = %s", (connection,)).fetchone()
        posting = conn.execute("SELECT max(at) AS t FROM audit WHERE connection = %s AND step = 'posted'",
                               (connection,)).fetchone()
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending') AS pending, "
            "count(*) FILTER (WHERE status = ANY(%s)) AS failures FROM records WHERE connection = %s",
            (list(OPEN_FAILURE_STATUSES), connection)).fetchone()
    return ConnectionStatus(connection, event["t"], posting["t"], counts["pending"], counts["failures"])


def failure_rows(store: SyncStore, connection: str | None, error_class: str | None = None) -> list[dict]:
    clauses, args = ["status = ANY(%s)"], [list(OPEN_FAILURE_STATUSES)]
    if connection:
        clauses.append("connection = %s")
        args.append(connection)
    if error_class:
        clauses.append("error_class = %s")
        args.append(error_class)
    with store.transaction() as conn:
        rows = conn.execute(
            f"SELECT id, connection, source_type, source_id, business_date, status, error_class, error_message, "
            f"attempts, next_attempt_at, updated_at FROM records WHERE {' AND '.join(clauses)} "
            "ORDER BY connection, business_date, id", args).fetchall()
    for row in rows:
        row["fix"] = FIXES.get(row["error_class"] or "", "")
    return rows
