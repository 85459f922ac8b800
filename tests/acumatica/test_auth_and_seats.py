"""Sign-in and seats: OAuth and cookie flows with the real status codes, one seat per client for a
whole sync, release at close, recovery from a leaked session and from revoked tokens."""

from __future__ import annotations

import threading
import time

import pytest

from resources.acumatica import SeatLimitError
from resources.http import AuthError
from tests.acumatica.documents import invoice


def test_oauth_password_grant_shape(sim):
    answer = sim.token()
    assert answer["expires_in"] == 3600 and answer["token_type"] == "Bearer"
    assert answer["scope"] == "api offline_access" and answer["refresh_token"]
    assert "refresh_token" not in sim.token(scope="api")
    assert "@" in sim.info["client_id"] and sim.info["client_id"].endswith("@" + sim.info["tenant"])


def test_client_credentials_grant_is_not_offered(sim):
    i = sim.info
    r = sim.http.post("/identity/connect/token", data={"grant_type": "client_credentials", "client_id": i["client_id"],
                                                        "client_secret": i["client_secret"], "scope": "api"})
    assert r.status_code == 400 and r.json() == {"error": "unsupported_grant_type"}
    r = sim.http.post("/identity/connect/token", data={"grant_type": "password", "client_id": i["client_id"],
                                                        "client_secret": "wrong", "username": i["username"],
                                                        "password": i["password"], "scope": "api"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_refresh_grant_keeps_the_same_seat(sim):
    first = sim.token()
    i = sim.info
    r = sim.http.post("/identity/connect/token", data={"grant_type": "refresh_token", "client_id": i["client_id"],
                                                        "client_secret": i["client_secret"],
                                                        "refresh_token": first["refresh_token"]})
    assert r.status_code == 200 and r.json()["access_token"] != first["access_token"]
    assert sim.seats()["in_use"] == 1 and sim.seats()["sign_ins"] == 1


def test_cookie_login_codes_and_bodies(sim):
    i = sim.info
    r = sim.http.post("/entity/auth/login", json={"name": i["username"], "password": "nope", "tenant": i["tenant"]})
    assert r.status_code == 500
    assert r.json()["exceptionMessage"] == "Error: Invalid credentials. Please try again."
    r = sim.http.post("/entity/auth/login", json={"name": i["username"], "password": i["password"],
                                                   "tenant": "Elsewhere"})
    assert r.status_code == 500 and r.json()["exceptionType"] == "PX.Data.PXUndefinedCompanyException"
    unauth = sim.http.get("/entity/Default/24.200.001/Customer")
    assert unauth.status_code == 401 and unauth.json() == {"message": "You are not logged in."}
    r = sim.http.post("/entity/auth/login", json={"name": i["username"], "password": i["password"],
                                                   "company": i["tenant"]})
    assert r.status_code == 204 and "ASP.NET_SessionId" in r.cookies and ".ASPXAUTH" in r.cookies
    assert sim.http.get("/entity/Default/24.200.001/Customer", params={"$top": 1}).status_code == 200
    assert sim.seats()["in_use"] == 1
    out = sim.http.post("/entity/auth/logout")
    assert out.status_code == 204 and "1999" in out.headers["set-cookie"]
    assert sim.seats()["in_use"] == 0


def test_whole_sync_uses_one_seat_and_releases_it(sim):
    with sim.client(max_concurrency=4) as client:
        workers = [threading.Thread(target=lambda n=n: [client.put("Invoice", invoice(ref=f"S-{n}-{k}"))
                                                        for k in range(5)]) for n in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        client.list("Customer")
        assert sim.seats()["in_use"] == 1
        assert client.auth.sign_ins == 1
    seats = sim.seats()
    assert seats["in_use"] == 0 and seats["peak_in_use"] == 1 and seats["sign_ins"] == 1
    assert [s["ended"] for s in seats["sessions"]] == ["logout"]


def test_leaked_session_recovers_after_idle_expiry(make_sim):
    sim = make_sim(tier="trial", seats=1)
    leaked = sim.client()
    leaked.list("Account", top=1)  # signs in, then "crashes": no close()
    assert sim.seats()["in_use"] == 1
    survivor = sim.client(seat_wait_seconds=30, seat_retry_seconds=0.1)
    timer = threading.Timer(0.5, sim.advance, args=(601,))  # ten idle minutes pass on the simulator
    timer.start()
    try:
        started = time.monotonic()
        assert survivor.list("Account", top=1)
        assert time.monotonic() - started < 20
        assert survivor.auth.seat_waits >= 1
        seats = sim.seats()
        assert seats["in_use"] == 1 and seats["expired_idle"] == 1 and seats["refused"] >= 1
    finally:
        timer.cancel()
        survivor.close()
        leaked.http.close()


def test_seat_limit_that_never_clears_fails_loudly(make_sim):
    sim = make_sim(tier="trial", seats=1)
    holder = sim.client()
    holder.list("Account", top=1)
    blocked = sim.client(seat_wait_seconds=0.5, seat_retry_seconds=0.1)
    try:
        with pytest.raises(SeatLimitError) as err:
            blocked.list("Account", top=1)
        assert err.value.error_class == "auth" and "API Login Limit" in str(err.value)
        assert sim.info["password"] not in str(err.value) and sim.info["client_secret"] not in str(err.value)
    finally:
        blocked.close()
        holder.close()


def test_seat_limit_faults_at_sign_in_are_retried(make_sim):
    sim = make_sim(tier="trial")
    sim.http.put("/_sim/faults", json={"profile": "seat_limit_rate=0.6"}).raise_for_status()
    with sim.client(seat_wait_seconds=20, seat_retry_seconds=0.05) as client:
        assert len(client.list("Account")) == 16
    stats = sim.stats()
    assert stats["sign_ins"] == 1
    assert stats["faults_injected"].get("seat_limit", 0) == stats["sign_ins_refused"]


def test_revoked_tokens_are_refreshed_within_the_same_seat(sim):
    with sim.client() as client:
        client.list("Account", top=1)
        assert sim.http.post("/_sim/revoke-tokens", json={}).json()["revoked"] == 1
        assert client.list("Account", top=1)
        assert client.auth.refreshes == 1 and client.auth.sign_ins == 1
        assert sim.seats()["in_use"] == 1


def test_token_revoked_early_fault_and_session_end(sim):
    # long enough that the refreshed token outlives the retried request on a loaded machine
    sim.http.put("/_sim/faults", json={"profile": "token_revoke_after_seconds=1.5"}).raise_for_status()
    with sim.client() as client:
        client.list("Account", top=1)
        time.sleep(1.6)
        assert client.list("Account", top=1)
        assert client.auth.refreshes >= 1
    sim.http.put("/_sim/faults", json={"profile": "none"}).raise_for_status()
    with sim.client() as client:
        client.list("Account", top=1)
        sim.http.post("/_sim/revoke-tokens", json={"end_sessions": True, "refresh_tokens": True})
        assert client.list("Account", top=1)  # refresh refused -> a new sign-in
        assert client.auth.sign_ins == 2


def test_bad_password_is_an_auth_error_without_secrets(sim):
    i = sim.info
    client = sim.client()
    client.auth._password = "definitely-wrong-password"
    try:
        with pytest.raises(AuthError) as err:
            client.list("Account", top=1)
        assert "definitely-wrong-password" not in str(err.value)
        assert i["client_secret"] not in str(err.value)
    finally:
        client.close()
