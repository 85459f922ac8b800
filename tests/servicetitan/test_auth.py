"""Tokens: cached per 15-minute window, shared by threads, refreshed once on 401; auth failures
have ServiceTitan's shapes."""

from __future__ import annotations

import math
import threading

import httpx
import pytest

from resources.http import AuthError

T = 1000001


def test_token_requests_follow_the_token_lifetime_not_the_call_count(st_factory):
    running = st_factory()
    sim = running.sim
    client = running.client(clock=lambda: sim.clock.now().timestamp(), token_margin_seconds=60)
    issued_before = sim.issuer.stats["issued"]
    calls = 0
    for _ in range(120):  # two simulated hours, a call a minute
        list(client.business_units())
        calls += 1
        sim.clock.advance(60)
    windows = math.ceil(7200 / (900 - 60))  # one token per (lifetime - refresh margin)
    assert client.token_fetches == windows == 9
    assert sim.issuer.stats["issued"] - issued_before == windows
    assert client.http.stats["refreshes"] == 0  # renewed before expiry, never by a 401
    assert calls == 120


def test_concurrent_callers_share_one_token_fetch(st):
    client = st.client()
    barrier = threading.Barrier(16)
    errors: list[Exception] = []

    def work():
        barrier.wait()
        try:
            list(client.gl_accounts())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert client.token_fetches == 1
    assert client.http.stats["requests"] == 16


def test_revoked_token_is_refreshed_once_and_the_call_succeeds(st):
    client = st.client()
    list(client.business_units())
    with st.control() as ctl:
        assert ctl.post("/_sim/tokens/revoke").json()["revoked"] >= 1
    units = list(client.business_units())
    assert len(units) == 7
    assert client.token_fetches == 2
    assert client.http.stats["refreshes"] == 1


def test_expired_token_gets_401(st_factory):
    running = st_factory()
    token = running.token()
    headers = {"ST-App-Key": running.creds()["app_key"], "Authorization": token}  # no "Bearer ": accepted
    url = f"{running.base_url}/settings/v2/tenant/{T}/business-units"
    assert httpx.get(url, headers=headers).status_code == 200
    running.sim.clock.advance(901)
    r = httpx.get(url, headers=headers)
    assert r.status_code == 401
    assert r.json()["title"] == "The access token has expired."
    assert "invalid_token" in r.headers["www-authenticate"]


def test_401_shapes(st):
    url = f"{st.base_url}/crm/v2/tenant/{T}/customers"
    app_key = st.creds()["app_key"]
    token = st.token()
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["title"] == "Application key not present, check ST-App-Key header value."
    assert r.json()["status"] == 401 and r.json()["traceId"]
    assert httpx.get(url, headers={"ST-App-Key": "ak1.nope", "Authorization": token}).status_code == 401
    assert httpx.get(url, headers={"ST-App-Key": app_key}).status_code == 401
    garbled = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = httpx.get(url, headers={"ST-App-Key": app_key, "Authorization": f"Bearer {garbled}"})
    assert r.status_code == 401 and "signature" in r.json()["title"]
    r = httpx.get(url, headers={"ST-App-Key": app_key, "Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401


def test_token_for_another_tenant_is_403(st):
    cascade = st.creds("cascade-hvac")
    summit = st.creds("summit-mechanical")
    headers = {"ST-App-Key": cascade["app_key"], "Authorization": f"Bearer {st.token('cascade-hvac')}"}
    r = httpx.get(f"{st.base_url}/crm/v2/tenant/{summit['tenant']}/customers", headers=headers)
    assert r.status_code == 403
    assert str(summit["tenant"]) in r.json()["title"]
    client = st.client("cascade-hvac")
    client.tenant = summit["tenant"]
    with pytest.raises(AuthError):
        list(client.customers())


def test_bad_client_credentials(st):
    r = httpx.post(f"{st.base_url}/connect/token", data={
        "grant_type": "client_credentials", "client_id": st.creds()["client_id"], "client_secret": "cs1.wrong"})
    assert r.status_code == 400 and r.json() == {"error": "invalid_client"}
    c = st.creds()
    from resources.servicetitan import ServiceTitanClient

    client = ServiceTitanClient(st.base_url, st.base_url, c["tenant"], c["client_id"], "cs1.wrong-secret-value",
                                c["app_key"])
    with pytest.raises(AuthError) as err:
        list(client.business_units())
    assert "st_client_secret" in str(err.value)
    assert "cs1.wrong-secret-value" not in str(err.value)


def test_token_endpoint_is_throttled(st_factory):
    running = st_factory(token_requests_per_minute=3)
    c = running.creds()
    form = {"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}
    statuses = [httpx.post(f"{running.base_url}/connect/token", data=form).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_token_response_shape(st):
    c = st.creds()
    body = httpx.post(f"{st.base_url}/connect/token", data={
        "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}).json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["expires_in"] == 900 and body["token_type"] == "Bearer"
    assert "tn.acc.invoices:r" in body["scope"].split()
