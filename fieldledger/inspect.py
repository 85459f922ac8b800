"""What the operator asks of the sync store from the command line: open failures with their
fix, and per-connection status (last event, last posting, lag, open failures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from posting.protocol import fix_for
from resources.store import SyncStore


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
    return ConnectionStatus(connection, **store.activity(connection))


def failure_rows(store: SyncStore, connection: str | None, error_class: str | None = None) -> list[dict]:
    """Open failures, each with the fix for its error class."""
    return [{**row, "fix": fix_for(row["error_class"], row.get("id"))}
            for row in store.open_failures(connection, error_class)]
