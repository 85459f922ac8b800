"""One Acumatica session per API user (issue 17). Acumatica signs out a user's older session when
the same user signs in again (per-user concurrent-login limit, reference §1.1 / §9.1); the
simulator now does so for cookie logins (and for OAuth grants with per_user_limit_oauth), and
fieldledger shares one session per API user per process across clients and threads: one sign-in,
a new one only after the session was ended, and a write refused with 401 is resent exactly once
because the simulator (like Acumatica) refuses it before doing anything."""

from __future__ import annotations

import threading

from tests.acumatica.documents import invoice

BASE = "/entity/Default/24.200.001"


def login(sim):
    i = sim.info
    http = sim.http.__class__(base_url=sim.base_url, timeout=30)
    r = http.post("/entity/auth/login", json={"name": i["username"], "password": i["password"], "tenant": i["tenant"]})
    assert r.status_code == 204
    return http


def test_a_second_cookie_login_of_the_same_user_signs_the_first_out(sim):
    first = login(sim)
    assert first.get(f"{BASE}/Account", params={"$top": 1}).status_code == 200
    second = login(sim)
    try:
        answer = first.get(f"{BASE}/Account", params={"$top": 1})
        assert answer.status_code == 401 and answer.json() == {"message": "You are not logged in."}
        assert second.get(f"{BASE}/Account", params={"$top": 1}).status_code == 200
        seats = sim.seats()
        assert seats["in_use"] == 1 and seats["evicted"] == 1
        assert sorted(s["ended"] or "active" for s in seats["sessions"]) == ["active", "evicted"]
    finally:
        first.close()
        second.close()


def test_oauth_grants_are_counted_per_user_only_when_switched_on(make_sim):
    lenient = make_sim(tier="trial")
    lenient.token()
    lenient.token()
    assert lenient.seats()["in_use"] == 2 and lenient.seats()["evicted"] == 0
    strict = make_sim(tier="trial", per_user_limit_oauth=True)
    old = strict.token()["access_token"]
    strict.token()
    r = strict.http.get(f"{BASE}/Account", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and strict.seats()["in_use"] == 1


def test_clients_of_one_process_share_one_session_and_recover_from_eviction(make_sim):
    sim = make_sim(tier="trial", per_user_limit_oauth=True)
    clients = [sim.client(share_session=True, max_concurrency=2) for _ in range(3)]
    try:
        def work(n, client):
            for k in range(4):
                client.put("Invoice", invoice(ref=f"SH-{n}-{k}"))

        threads = [threading.Thread(target=work, args=(n, c)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seats = sim.seats()
        assert (seats["sign_ins"], seats["in_use"], seats["evicted"]) == (1, 1, 0)  # no churn
        assert clients[0].auth is clients[1].auth is clients[2].auth
        # another process signs the same user in: our session is ended; the next write gets a 401,
        # which Acumatica answers before doing anything, so the client signs in once and resends
        sim.token()
        saved = clients[1].put("Invoice", invoice(ref="SH-after"))
        assert saved["CustomerOrder"] == "SH-after"
        assert clients[0].list("Account", top=1)
        assert sim.stats()["by_status"].get("401", 0) == 1
        assert clients[0].auth.sign_ins == 2
        found = clients[2].find_by_external_ref("Invoice", ["SH-after", "SH-0-0", "SH-2-3"])
        assert {ref: len(rows) for ref, rows in found.items()} == {"SH-after": 1, "SH-0-0": 1, "SH-2-3": 1}
        assert len(clients[0].list("Invoice", filter="startswith(CustomerOrder,'SH-')")) == 13
    finally:
        for c in clients:
            c.close()
    seats = sim.seats()
    assert seats["in_use"] == 0  # the last client to close signed the shared session out
    assert [s["ended"] for s in seats["sessions"]].count("logout") == 1
