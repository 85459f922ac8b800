"""Vantagepoint auth over real sockets: password and refresh grants, refresh before the token
lapses and after a 401, revoked tokens, the disabled password grant, and no secret in errors."""

from __future__ import annotations

import time

import httpx
import pytest

from resources.http import AuthError


def _form(info: dict, **over) -> dict:
    return {"grant_type": "password", "username": info["username"], "password": info["password"],
            "client_id": info["client_id"], "client_secret": info["client_secret"], "database": info["database"],
            **over}


def test_password_grant_field_names_are_case_insensitive_and_refresh_rotates(vp):
    info = vp.info
    mixed = {"grant_type": "password", "Username": info["username"], "Password": info["password"],
             "Client_Id": info["client_id"], "CLIENT_SECRET": info["client_secret"], "Database": info["database"],
             "Integrated": "N"}
    first = httpx.post(f"{info['base_url']}/token", data=mixed)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1799
    assert len(body["access_token"]) >= 300 and body["refresh_token"].endswith("=")

    refresh_form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                    "client_id": info["client_id"], "client_secret": info["client_secret"]}
    second = httpx.post(f"{info['base_url']}/token", data=refresh_form)
    assert second.status_code == 200 and second.json()["refresh_token"] != body["refresh_token"]
    reused = httpx.post(f"{info['base_url']}/token", data=refresh_form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    ok = httpx.get(f"{info['base_url']}/firm", params={"pageSize": 1},
                   headers={"Authorization": f"bearer {second.json()['access_token']}"})
    assert ok.status_code == 200 and len(ok.json()) == 1


def test_oauth_errors_and_401_body(vp):
    info = vp.info
    url = f"{info['base_url']}/token"
    assert httpx.post(url, data=_form(info, grant_type="client_credentials")).json() == {
        "error": "unsupported_grant_type"}
    assert httpx.post(url, data=_form(info, client_secret="nope")).json()["error"] == "invalid_client"
    bad = httpx.post(url, data=_form(info, password="wrong"))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert httpx.post(url, data=_form(info, database="OTHER")).json()["error"] == "invalid_grant"

    denied = httpx.get(f"{info['base_url']}/firm", headers={"Authorization": "Bearer not-a-token"})
    assert denied.status_code == 401
    assert denied.json() == {"Message": "Authorization has been denied for this request."}


def test_disabled_password_grant_tells_what_to_tick(vp):
    vp.control("PUT", "password_grant", json={"enabled": False})
    raw = httpx.post(f"{vp.info['base_url']}/token", data=_form(vp.info))
    assert raw.status_code == 400 and raw.json()["error"] == "unauthorized_client"

    client = vp.client()
    with pytest.raises(AuthError) as caught:
        client.list_organizations()
    message = str(caught.value)
    assert "Allow Password Grant Type" in message and "API Authorization" in message
    assert caught.value.error_class == "auth"


def test_wrong_password_is_an_auth_error_without_the_secret(vp):
    client = vp.client(password="Sup3r-Secret-Value")
    with pytest.raises(AuthError) as caught:
        client.authenticate()
    assert "vp_password" in str(caught.value)
    assert "Sup3r-Secret-Value" not in str(caught.value)
    assert vp.info["client_secret"] not in str(caught.value)


def test_refreshes_before_the_token_lapses(make_vp):
    vp = make_vp(token_ttl_seconds=61)
    client = vp.client(refresh_margin=60)
    client.list_organizations()
    time.sleep(1.1)  # now inside the refresh margin
    client.list_organizations()
    tokens = vp.stats()["tokens"]
    assert tokens["password_grants"] == 1
    assert tokens["refresh_grants"] == 1
    assert tokens["denied"] == 0  # refreshed before use, never rejected


def test_expired_token_is_refreshed_after_a_401(vp):
    client = vp.client()
    client.list_organizations()
    vp.control("POST", "clock/advance", json={"seconds": 1800})  # the server's 1799 s have passed
    assert len(client.list_organizations()) == 3
    tokens = vp.stats()["tokens"]
    assert tokens["denied"] == 1 and tokens["refresh_grants"] == 1 and tokens["password_grants"] == 1


def test_revoked_tokens_fall_back_to_the_password_grant(vp):
    client = vp.client()
    client.list_organizations()
    vp.control("POST", "revoke_tokens", json={"refresh_tokens": True})
    assert len(client.list_organizations()) == 3
    tokens = vp.stats()["tokens"]
    assert tokens["password_grants"] == 2
    assert tokens["token_errors"] == 1  # the refused refresh token


def test_token_revoke_fault_profile_is_survived(make_vp):
    vp = make_vp(profile="token_revoke_after_seconds=4")
    client = vp.client()
    client.list_organizations()
    time.sleep(4.3)  # past the revocation; the new token lives 4 s, ample for one request on a busy machine
    assert len(client.list_organizations()) == 3
    assert vp.stats()["faults_injected"].get("token_revoked", 0) >= 1
