"""Pieces of the receiver without a server: signatures and path tokens, connection settings and
their cache, and the Prometheus rendering. Envelope parsing: test_envelopes.py."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from receiver.connections import MISS, ConnectionFileError, _TtlCache, webhook_settings
from receiver.metrics import ReceiverMetrics
from receiver.signature import is_valid, new_token, sign, token_bits, token_matches, verify
from tests.receiver.webhook_deliveries import CONNECTION

KEY = "k" * 40


def test_signature_is_hmac_sha256_of_the_raw_body_in_either_encoding():
    body = b'{"eventType":"invoice.created","data":{}}'
    digest = hmac.new(KEY.encode(), body, hashlib.sha256).digest()
    assert sign(KEY, body) == base64.b64encode(digest).decode()
    assert sign(KEY, body, "hex") == digest.hex()
    assert is_valid(KEY, body, sign(KEY, body))
    assert is_valid(KEY, body, " " + sign(KEY, body, "hex").upper() + " ", "hex")
    assert is_valid(KEY, body, sign(KEY, body, "hex"))  # the default accepts either encoding
    assert not is_valid(KEY, body + b" ", sign(KEY, body))
    assert not is_valid(KEY, body, sign(KEY, body, "hex"), "base64")  # hex sent where base64 is pinned
    assert not is_valid(KEY, body, sign(KEY, body), "hex")  # and the other way round
    assert not is_valid(KEY, body, "not base64 at all!")
    assert not is_valid(KEY, body, "zz", "hex")
    assert not is_valid("other" + KEY, body, sign(KEY, body))
    with pytest.raises(ValueError, match="encoding"):
        sign(KEY, body, "base32")


def test_two_keys_are_valid_during_a_rotation_and_tokens_compare_whole():
    body = b'{"eventType":"invoice.created","data":{}}'
    old, new = "o" * 40, "n" * 40
    assert verify((new, old), body, sign(old, body)) and verify((new, old), body, sign(new, body, "hex"))
    assert not verify((new,), body, sign(old, body))
    assert not verify((), body, sign(old, body))
    token = new_token()
    assert token_bits(token) >= 128 and len(token) == 43
    assert token_matches((new_token(), token), token)
    assert not token_matches((token,), token[:-1]) and not token_matches((token,), token + "x")
    assert not token_matches((), token)
    assert token_bits("short") == 30 and token_bits("has space " * 5) == 0


def test_connection_settings(vault, home):
    assert webhook_settings(CONNECTION, vault) is None  # no secret, no file: unknown
    assert webhook_settings("../etc/passwd", vault) is None
    vault.set(CONNECTION, "st_webhook_secret", KEY)
    settings = webhook_settings(CONNECTION, vault)
    assert (settings.mode, settings.keys, settings.headers, settings.encoding) == (
        "hmac", (KEY,), ("X-ServiceTitan-Signature",), "any")
    assert KEY not in repr(settings)
    vault.rotate(CONNECTION, "st_webhook_secret", "r" * 40)  # both valid while ServiceTitan switches over
    assert webhook_settings(CONNECTION, vault).keys == ("r" * 40, KEY)
    vault.finish_rotation(CONNECTION, "st_webhook_secret")
    assert webhook_settings(CONNECTION, vault).keys == ("r" * 40,)
    path = home / "connections" / f"{CONNECTION}.yaml"
    path.write_text("servicetitan:\n  webhook:\n    signature_encoding: HEX\n"
                    "    signature_header: [X-ST-Signature, X-ServiceTitan-Hmac]\n")
    assert webhook_settings(CONNECTION, vault).encoding == "hex"
    assert webhook_settings(CONNECTION, vault).headers == ("X-ST-Signature", "X-ServiceTitan-Hmac")
    # the connection file may name another vault secret for the webhook key
    vault.set(CONNECTION, "acme_webhook_key", "k" * 40)
    path.write_text("servicetitan:\n  secrets:\n    webhook_secret: acme_webhook_key\n")
    renamed = webhook_settings(CONNECTION, vault)
    assert (renamed.keys, renamed.secret_name) == (("k" * 40,), "acme_webhook_key")
    # path-token mode: the token, not the signing key, authenticates
    path.write_text("servicetitan:\n  webhook:\n    auth: path_token\n")
    assert webhook_settings(CONNECTION, vault).keys == ()
    token = new_token()
    vault.set(CONNECTION, "st_webhook_token", token)
    tokened = webhook_settings(CONNECTION, vault)
    assert (tokened.mode, tokened.keys, tokened.secret_name, tokened.weak_token) == (
        "path_token", (token,), "st_webhook_token", False)
    assert token not in repr(tokened)
    vault.set(CONNECTION, "st_webhook_token", "guessable")
    assert webhook_settings(CONNECTION, vault).weak_token
    (home / "connections" / "summit.yaml").write_text("erp: vantagepoint\n")
    assert webhook_settings("summit", vault).keys == ()  # known, but no secret yet
    for bad, message in (("signature_encoding: base32", "signature_encoding must be one of any, base64, hex"),
                         ("signature_header: 'X Bad Header'", "not a valid header name"),
                         ("auth: none", "auth must be hmac or path_token")):
        path.write_text(f"servicetitan:\n  webhook:\n    {bad}\n")
        with pytest.raises(ConnectionFileError, match=message):
            webhook_settings(CONNECTION, vault)
    path.write_text("servicetitan: [unclosed\n")
    with pytest.raises(ConnectionFileError, match="fix its YAML"):
        webhook_settings(CONNECTION, vault)


def test_ttl_cache_reloads_after_expiry_only():
    now = [100.0]
    loads: list[str] = []

    def load(key: str) -> str:
        loads.append(key)
        return f"{key}-{len(loads)}"

    cache = _TtlCache(load, ttl=3.0, clock=lambda: now[0])
    assert cache.peek("a") is MISS and cache.get("a") == "a-1"
    now[0] += 2.9
    assert cache.get("a") == "a-1" and cache.peek("a") == "a-1"
    now[0] += 0.2
    assert cache.get("a") == "a-2"
    assert loads == ["a", "a"]


def test_an_expired_answer_is_kept_for_a_grace_period_to_fall_back_on():
    """A refresh the store cannot answer in time (a burst on a loaded machine: the TTL ran out
    mid-burst and every delivery waited for one slow look-up, then answered 503) falls back on
    the last answer, but only for ``grace`` seconds past its TTL."""
    now = [0.0]
    cache = _TtlCache(lambda key: f"{key}-loaded", ttl=3.0, clock=lambda: now[0])
    assert cache.stale("a", grace=60) is MISS  # never loaded: nothing to fall back on
    cache.get("a")
    now[0] += 30
    assert cache.peek("a") is MISS and cache.stale("a", grace=60) == "a-loaded"
    now[0] += 40
    assert cache.stale("a", grace=60) is MISS


def test_metrics_render_prometheus_text():
    metrics = ReceiverMetrics()
    for seconds, outcome in ((0.002, "stored"), (0.03, "stored"), (7.0, "duplicate")):
        metrics.started()
        metrics.record('we"ird\\name', outcome, seconds)
    metrics.record_commit(2)
    text = metrics.render()
    assert 'fieldledger_webhooks_total{connection="we\\"ird\\\\name",outcome="stored"} 2' in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="0.001"} 0' in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="0.0025"} 1' in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="0.05"} 2' in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="5.0"} 2' in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="+Inf"} 3' in text
    assert "fieldledger_webhook_duration_seconds_count 3" in text
    assert "fieldledger_webhooks_in_flight 0" in text
    assert "fieldledger_inbox_commits_total 1" in text and "fieldledger_inbox_commit_events_total 2" in text
    assert text.endswith("\n")
