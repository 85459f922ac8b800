"""The receiver's counters and latency histogram, rendered in the Prometheus text format.

In-process only (one receiver process per host); no client library needed for this little.
Connections that do not exist are counted under ``connection="_unknown"`` so that a scan of
random URLs cannot grow the label set without bound.
"""

from __future__ import annotations

import threading
from collections import defaultdict

UNKNOWN_CONNECTION = "_unknown"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.total}')
        lines.append(f"{name}_sum {self.sum:.6f}")
        lines.append(f"{name}_count {self.total}")
        return lines


class ReceiverMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[tuple[str, str], int] = defaultdict(int)
        self.latency = Histogram()
        self.commits = 0
        self.committed_events = 0
        self.in_flight = 0

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def record(self, connection: str, outcome: str, seconds: float) -> None:
        """One delivery answered (pairs with ``started``)."""
        with self._lock:
            self.in_flight -= 1
            self.deliveries[(connection, outcome)] += 1
            self.latency.observe(seconds)

    def record_commit(self, events: int) -> None:
        with self._lock:
            self.commits += 1
            self.committed_events += events

    def count(self, connection: str, outcome: str) -> int:
        with self._lock:
            return self.deliveries.get((connection, outcome), 0)

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP fieldledger_webhooks_total Webhook deliveries answered, by connection and outcome.",
                "# TYPE fieldledger_webhooks_total counter",
            ]
            for (connection, outcome), n in sorted(self.deliveries.items()):
                lines.append(f'fieldledger_webhooks_total{{connection="{_label(connection)}",outcome="{_label(outcome)}"}} {n}')
            lines += [
                "# HELP fieldledger_webhook_duration_seconds Time from request start to answer.",
                "# TYPE fieldledger_webhook_duration_seconds histogram",
                *self.latency.render("fieldledger_webhook_duration_seconds"),
                "# HELP fieldledger_webhooks_in_flight Deliveries being received or waiting for their commit.",
                "# TYPE fieldledger_webhooks_in_flight gauge",
                f"fieldledger_webhooks_in_flight {self.in_flight}",
                "# HELP fieldledger_inbox_commits_total Inbox transactions committed (group commit).",
                "# TYPE fieldledger_inbox_commits_total counter",
                f"fieldledger_inbox_commits_total {self.commits}",
                "# HELP fieldledger_inbox_commit_events_total Deliveries written by those transactions.",
                "# TYPE fieldledger_inbox_commit_events_total counter",
                f"fieldledger_inbox_commit_events_total {self.committed_events}",
            ]
        return "\n".join(lines) + "\n"
