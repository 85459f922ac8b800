"""The secret sweep finds a secret wherever it hides (so "no hits" after the chaos means something)."""

from __future__ import annotations

from tests.chaos.sweep import sweep

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJhYmMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
REFRESH = "q0ZG3k8n+Yw/Rt1e9PpLxA=="
SECRET = "s3cr3t-Value_with.dots~"


def test_secrets_are_found_inside_json_urls_headers_and_prose():
    places = [
        ("log file", "a", b'{"event": "token", "value": "' + TOKEN.encode() + b'"}'),
        ("log file", "b", b"POST /token?refresh_token=" + REFRESH.encode() + b"&grant_type=refresh_token"),
        ("log file", "c", b"Authorization: Bearer " + TOKEN.encode()[:-3]),  # truncated: not the secret
        ("dagster table", "d", b"password was " + SECRET.encode() + b", oops"),
        ("cli output", "e", b"nothing to see"),
    ]
    report = sweep({"token": TOKEN, "refresh": REFRESH, "secret": SECRET}, places)
    assert report.places == 5 and report.bytes == sum(len(p[2]) for p in places)
    assert sorted(report.hits) == [("dagster table: d", "secret"), ("log file: a", "token"),
                                   ("log file: b", "refresh")]


def test_a_secret_that_is_not_token_shaped_is_still_found():
    report = sweep({"odd": "pass word with spaces!"}, [("log file", "x", b"... pass word with spaces! ...")])
    assert report.hits == [("log file: x", "odd")]
