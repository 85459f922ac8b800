"""`fieldledger ping` names the webhook authentication mode of a connection and warns for the path
token; `fieldledger secrets rotate-webhook` makes and rotates the token (and HMAC keys), keeping
the former value valid until --finish. Real simulators and store (the operator stack)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from fieldledger.cli import app
from resources.store import SyncStore
from resources.vault import Vault
from tests.operator.conftest import connection_variant, run_cli, verdicts

pytestmark = pytest.mark.slow
TOKEN_MODE = ("    signature_header: X-ServiceTitan-Signature\n    signature_encoding: base64\n",
              "    auth: path_token\n")


def _token_mode(text: str) -> str:
    assert TOKEN_MODE[0] in text
    return text.replace(*TOKEN_MODE)


def _vault_names(connection: str) -> dict[str, str]:
    with SyncStore.open() as store:
        vault = Vault(store)
        return {s.name: vault.get(connection, s.name) for s in vault.list(connection)}


def test_ping_shows_hmac_mode(stack):
    found = verdicts(run_cli("ping", "--connection", "cascade-hvac").stdout)
    assert found["ServiceTitan webhook"].startswith("PASS")
    assert "mode hmac: signing secret st_webhook_secret stored" in found["ServiceTitan webhook"]


def test_token_mode_is_made_with_rotate_webhook_and_warned_by_ping(stack):
    """Input: a copy of cascade-hvac switched to ``servicetitan.webhook.auth: path_token``.
    Expected: ping FAILs until a token exists (vault secrets names st_webhook_token; the webhook
    check says how to make one); `secrets rotate-webhook` prints the callback URL with a 256-bit
    token once; ping then WARNs "mode path_token" (exit 0) without showing the token; a second
    rotation keeps the first token as st_webhook_token_previous until --finish."""
    name = "ping-token"
    with connection_variant("cascade-hvac", name, _token_mode):
        before = run_cli("ping", "--connection", name)
        found = verdicts(before.stdout)
        assert before.exit_code == 1
        assert "st_webhook_token (servicetitan.secrets.webhook_token)" in found["vault secrets"]
        assert found["ServiceTitan webhook"].startswith("FAIL")
        assert f"fieldledger secrets rotate-webhook {name}" in found["ServiceTitan webhook"]

        made = run_cli("secrets", "rotate-webhook", name)
        assert made.exit_code == 0, made.stdout + made.stderr
        token = _vault_names(name)["st_webhook_token"]
        assert len(token) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert f"/webhooks/servicetitan/{name}/{token}" in made.stdout
        assert "there was no former value" in made.stdout

        after = run_cli("ping", "--connection", name)
        found = verdicts(after.stdout)
        assert after.exit_code == 0, after.stdout
        assert found["vault secrets"].startswith("PASS")
        assert found["ServiceTitan webhook"].startswith("WARN")
        assert "mode path_token" in found["ServiceTitan webhook"] and "(258 bits)" in found["ServiceTitan webhook"]
        assert token not in after.stdout + after.stderr

        again = run_cli("secrets", "rotate-webhook", name)
        assert f"stays valid until `fieldledger secrets rotate-webhook {name} --finish`" in again.stdout
        names = _vault_names(name)
        assert names["st_webhook_token_previous"] == token and names["st_webhook_token"] != token
        finished = run_cli("secrets", "rotate-webhook", name, "--finish")
        assert "finished" in finished.stdout
        assert "st_webhook_token_previous" not in _vault_names(name)


def test_hmac_key_rotation_reads_the_new_key_from_stdin(stack):
    name = "ping-hmac-rotation"
    with connection_variant("cascade-hvac", name):
        former = _vault_names(name)["st_webhook_secret"]
        new_key = "n" * 48
        result = CliRunner().invoke(app, ["secrets", "rotate-webhook", name], input=new_key + "\n")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert new_key not in result.stdout
        names = _vault_names(name)
        assert (names["st_webhook_secret"], names["st_webhook_secret_previous"]) == (new_key, former)
        run_cli("secrets", "rotate-webhook", name, "--finish")
        assert "st_webhook_secret_previous" not in _vault_names(name)
