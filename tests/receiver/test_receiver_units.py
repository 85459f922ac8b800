"""Pieces of the receiver without a server: signatures, event fields, connection settings and
their cache, and the Prometheus rendering."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from receiver.app import Refusal, event_fields
from receiver.connections import MISS, ConnectionFileError, _TtlCache, webhook_settings
from receiver.metrics import ReceiverMetrics
from receiver.signature import is_valid, sign
from tests.receiver.webhook_deliveries import CONNECTION, encode, make_event

KEY = "k" * 40


def test_signature_is_hmac_sha256_of_the_raw_body_in_either_encoding():
    body = b'{"eventType":"invoice.created","data":{}}'
    digest = hmac.new(KEY.encode(), body, hashlib.sha256).digest()
    assert sign(KEY, body) == base64.b64encode(digest).decode()
    assert sign(KEY, body, "hex") == digest.hex()
    assert is_valid(KEY, body, sign(KEY, body))
    assert is_valid(KEY, body, " " + sign(KEY, body, "hex").upper() + " ", "hex")
    assert not is_valid(KEY, body + b" ", sign(KEY, body))
    assert not is_valid(KEY, body, sign(KEY, body, "hex"))  # hex sent where base64 is expected
    assert not is_valid(KEY, body, "not base64 at all!")
    assert not is_valid(KEY, body, "zz", "hex")
    assert not is_valid("other" + KEY, body, sign(KEY, body))
    with pytest.raises(ValueError, match="encoding"):
        sign(KEY, body, "base32")


def test_event_fields():
    event = make_event(1)
    assert event_fields(encode(event)) == (event["eventId"], "invoice.created")
    numbered = {**event, "eventId": 44438357}
    assert event_fields(encode(numbered))[0] == "44438357"
    anonymous = encode(make_event(1, event_id=None))
    assert event_fields(anonymous)[0] == "sha256:" + hashlib.sha256(anonymous).hexdigest()
    assert event_fields(encode({**event, "eventId": ""}))[0].startswith("sha256:")
    for bad in ({**event, "eventId": True}, {**event, "eventId": "x" * 201}, {**event, "eventType": 7},
                {**event, "data": None}):
        with pytest.raises(Refusal) as refused:
            event_fields(encode(bad))
        assert refused.value.status == 400 and refused.value.outcome == "missing_event_fields"


def test_connection_settings(vault, home):
    assert webhook_settings(CONNECTION, vault) is None  # no secret, no file: unknown
    assert webhook_settings("../etc/passwd", vault) is None
    vault.set(CONNECTION, "st_webhook_secret", KEY)
    settings = webhook_settings(CONNECTION, vault)
    assert (settings.secret, settings.header, settings.encoding) == (KEY, "X-ServiceTitan-Signature", "base64")
    assert KEY not in repr(settings)
    path = home / "connections" / f"{CONNECTION}.yaml"
    path.write_text("servicetitan:\n  webhook:\n    signature_encoding: HEX\n")
    assert webhook_settings(CONNECTION, vault).encoding == "hex"
    # the connection file may name another vault secret for the webhook key
    vault.set(CONNECTION, "acme_webhook_key", "k" * 40)
    path.write_text("servicetitan:\n  secrets:\n    webhook_secret: acme_webhook_key\n")
    renamed = webhook_settings(CONNECTION, vault)
    assert (renamed.secret, renamed.secret_name) == ("k" * 40, "acme_webhook_key")
    path.write_text("servicetitan:\n  webhook:\n    signature_encoding: HEX\n")
    (home / "connections" / "summit.yaml").write_text("erp: vantagepoint\n")
    assert webhook_settings("summit", vault).secret is None  # known, but no secret yet
    path.write_text("servicetitan:\n  webhook:\n    signature_encoding: base32\n")
    with pytest.raises(ConnectionFileError, match="signature_encoding must be one of base64, hex"):
        webhook_settings(CONNECTION, vault)
    path.write_text("servicetitan:\n  webhook:\n    signature_header: 'X Bad Header'\n")
    with pytest.raises(ConnectionFileError, match="not a valid header name"):
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
