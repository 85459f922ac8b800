"""Claims held by a process that died are freed at once for the next worker."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from datetime import date

from resources.store import SyncStore


def _claim_and_hang(url: str, ready) -> None:
    store = SyncStore(url, max_size=1)
    assert store.claim("acme", store.worker_id("run-x"), limit=10)
    ready.set()
    import time

    time.sleep(60)


def test_release_dead_claims(database_url):
    with SyncStore(database_url) as store:
        for i in range(5):
            store.upsert_version("acme", "invoice", str(i), f"h{i}", date(2026, 11, 3), {})
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        proc = ctx.Process(target=_claim_and_hang, args=(database_url, ready))
        proc.start()
        assert ready.wait(60)
        assert store.claim("acme", store.worker_id("run-y")) == []  # held by a live process
        assert store.release_dead_claims() == 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert store.release_dead_claims() == 5
        assert len(store.claim("acme", store.worker_id("run-y"))) == 5
