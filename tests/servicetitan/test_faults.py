"""429 storms and 5xx faults: every record is still extracted exactly once."""

from __future__ import annotations

import threading

from resources.http import RetryPolicy

T = 1000001


def _expected_ids(running, stream):
    client = running.client()
    return sorted(r.id for r in client.iterate(stream))


def test_5xx_and_429_bursts_lose_and_duplicate_nothing(st_factory):
    running = st_factory(html_503_share=0.5)
    expected = _expected_ids(running, "invoices")
    with running.control() as ctl:
        ctl.put("/_sim/faults", json={"profile": "flaky", "set": {"error_rate": 0.25, "burst_429_rate": 0.05,
                                                                   "burst_429_seconds": 0.2}}).raise_for_status()
    client = running.client(page_size=10, retry=RetryPolicy(max_attempts=12, base_delay=0.05, max_delay=0.5))
    got = [i.id for i in client.invoices()]
    assert sorted(got) == expected and len(got) == len(set(got))
    with running.control() as ctl:
        faults = ctl.get("/_sim/stats").json()["faults"]
    assert faults.get("http_503", 0) > 0
    assert client.http.stats["retries"] > 0


def test_rate_limit_storm_with_threads_extracts_each_record_once(st_factory):
    running = st_factory(rate_limit_per_second=4)  # four threads surely exceed it, even on a loaded machine
    streams = ["customers", "locations", "payments", "purchase_orders"]
    expected = {s: _expected_ids(running, s) for s in streams}
    results: dict[str, list[int]] = {}
    errors: list[Exception] = []

    def extract(stream):
        try:
            client = running.client(rate_per_second=200, page_size=60,
                                    retry=RetryPolicy(max_attempts=15, base_delay=0.05, max_delay=1.0))
            results[stream] = [r.id for r in client.iterate(stream)]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=extract, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s in streams:
        assert sorted(results[s]) == expected[s], s
    with running.control() as ctl:
        stats = ctl.get("/_sim/stats").json()
    assert stats["rate_limited"] > 0
    assert stats["requests"]["by_status"].get("429", 0) == stats["rate_limited"]


def test_429_body_and_retry_after(st_factory):
    running = st_factory(rate_limit_per_second=2)
    with running.raw() as http:
        responses = [http.get(f"/settings/v2/tenant/{T}/business-units") for _ in range(4)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    body = limited[0].json()
    assert body["title"] == "Rate limit is exceeded. Try again in 1 seconds."
    assert body["title"].split(" ")[-2] == limited[0].headers["retry-after"] == "1"


def test_default_client_stays_under_the_ceiling(st_factory):
    running = st_factory()
    client = running.client(page_size=1)  # one record per request: 120 requests in about 2.4 s at 50/s
    n = sum(1 for _ in client.iterate("customers"))
    assert n == 120 and client.http.stats["requests"] >= 120
    with running.control() as ctl:
        assert ctl.get("/_sim/stats").json()["rate_limited"] == 0
