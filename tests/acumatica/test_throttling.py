"""License throttling: concurrent posting from threads under a small tier finishes without a
failure; the queue overflows into 429s (no Retry-After) that the client backs off from; the
per-minute budget slows requests down above half of it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from resources.http import RetryPolicy
from tests.acumatica.documents import invoice


def _post_all(client, refs):
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(lambda ref: client.put("Invoice", invoice(ref=ref)), refs))


def test_many_concurrent_posts_within_the_tier_finish_without_429(make_sim):
    sim = make_sim(tier="small", per_minute=0)
    refs = [f"T-{i:03d}" for i in range(60)]
    with sim.client(max_concurrency=3) as client:
        saved = _post_all(client, refs)
        assert len({s["ReferenceNbr"] for s in saved}) == 60
        assert len(client.find_by_external_ref("Invoice", refs)) == 60
    stats = sim.stats()
    assert stats["throttled_429"] == 0
    assert stats["peak_concurrency"] <= 3 and stats["seats_peak"] == 1


def test_queue_overflow_429s_are_backed_off_and_nothing_fails(make_sim):
    sim = make_sim(tier="small", concurrency=1, queue_size=2, per_minute=0)
    sim.http.put("/_sim/faults", json={"profile": "latency_ms=20"}).raise_for_status()
    refs = [f"Q-{i:03d}" for i in range(36)]
    retry = RetryPolicy(max_attempts=30, base_delay=0.05, max_delay=0.5)
    with sim.client(max_concurrency=12, retry=retry) as client:
        saved = _post_all(client, refs)
        assert len(saved) == 36
        assert set(client.find_by_external_ref("Invoice", refs)) == set(refs)
        assert client.http.stats["by_status"].get(429, 0) > 0
    stats = sim.stats()
    assert stats["throttled_429"] > 0 and stats["license"]["peak_queue"] == 2
    assert stats["peak_concurrency"] == 1


def test_429_has_no_retry_after_and_iis_body(make_sim):
    import threading

    sim = make_sim(tier="small", concurrency=1, queue_size=0, per_minute=0)
    sim.http.put("/_sim/faults", json={"profile": "latency_ms=300"}).raise_for_status()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(sim.http.get("/entity"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    declined = [r for r in answers if r.status_code == 429]
    assert declined and "retry-after" not in declined[0].headers
    assert declined[0].text == "The custom error module does not recognize this error."


def test_per_minute_budget_delays_above_half(make_sim):
    # 20 requests/minute; a simulated minute lasts 0.5 s of wall time.
    sim = make_sim(tier="small", per_minute=20, time_factor=120)
    with sim.client(max_concurrency=3) as client:
        for _ in range(15):
            client.list("Account", top=1)
    license_ = sim.stats()["license"]
    assert license_["delayed"] >= 4
    assert sim.stats()["throttled_429"] == 0


def test_injected_5xx_are_retried_without_duplicates(make_sim):
    sim = make_sim(tier="trial", seed=11)
    sim.http.put("/_sim/faults", json={"profile": "error_rate=0.3"}).raise_for_status()
    refs = [f"F-{i:03d}" for i in range(30)]
    retry = RetryPolicy(max_attempts=20, base_delay=0.01, max_delay=0.05)
    with sim.client(max_concurrency=4, retry=retry) as client:
        _post_all(client, refs)
        found = client.find_by_external_ref("Invoice", refs)
    assert set(found) == set(refs) and all(len(rows) == 1 for rows in found.values())
    assert sim.stats()["faults_injected"].get("http_503", 0) > 0
