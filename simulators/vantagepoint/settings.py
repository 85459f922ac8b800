"""The simulated Vantagepoint tenant's configuration: credentials derived from the seed, and every
behaviour the reference marks as inferred or unknown, read from ``SimOptions.options``.

Defaults are the stricter reading of the reference (see the package docstring for the list).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from simulators.contractor import CONTRACTORS_BY_KEY, SUMMIT, Contractor
from simulators.runtime import SimOptions


@dataclass(frozen=True)
class KeyFormats:
    """What ``GET /KeyCvt/CFGFormat`` reports and the simulator enforces."""

    account_length: int = 13
    vendor_length: int = 6
    client_length: int = 6
    wbs1_length: int = 30
    refno_length: int = 12  # invoice numbers and reference numbers, zero-padded on save
    org_levels: int = 2
    org_delimiter: str = ":"


@dataclass(frozen=True)
class TenantSettings:
    contractor: Contractor
    tenant: str  # the path segment: http://host:port/{tenant}/api
    database: str
    client_id: str
    client_secret: str
    username: str
    password: str
    token_ttl_seconds: int = 1799
    refresh_token_ttl_seconds: int = 8 * 3600
    rotate_refresh_tokens: bool = True
    allow_password_grant: bool = True
    use_files_to_group_transactions: bool = True
    post_failure_http_400: bool = False  # PostTransFile: 200 + retList 0 (default) or 400
    ledger_rejects_limit: bool = True  # PSALedger / DataEntry lists answer 500 to `limit`
    html_503: bool = True  # 503s come back as a proxy's HTML page, not JSON
    check_transdate_period: bool = True  # each document's TransDate must fall in an open period
    ap_allow_negative: bool = False
    rate_limit_per_minute: float = 0.0  # 0 = no limit (none is documented)
    rate_limit_burst: int = 20
    key_formats: KeyFormats = field(default_factory=KeyFormats)


def _secret(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def settings_from_options(options: SimOptions) -> TenantSettings:
    opts: dict[str, Any] = dict(options.options or {})
    contractor = opts.get("contractor", SUMMIT)
    if isinstance(contractor, str):
        if contractor not in CONTRACTORS_BY_KEY:
            raise ValueError(f"unknown contractor {contractor!r}; known: {', '.join(CONTRACTORS_BY_KEY)}")
        contractor = CONTRACTORS_BY_KEY[contractor]
    tenant = str(opts.get("tenant") or contractor.key.split("-")[0].upper())
    rng = random.Random(f"vantagepoint:{options.seed}:{contractor.key}")
    database = f"C00000{options.seed % 100000:05d}P_1_{tenant.upper()}"
    client_id = _secret(rng, 32, "0123456789ABCDEF")
    client_secret = _secret(rng, 43)
    password = _secret(rng, 20)
    formats = KeyFormats(**{k: v for k, v in (opts.get("key_formats") or {}).items()})
    simple = {
        k: opts[k]
        for k in (
            "token_ttl_seconds", "refresh_token_ttl_seconds", "rotate_refresh_tokens", "allow_password_grant",
            "use_files_to_group_transactions", "post_failure_http_400", "ledger_rejects_limit", "html_503",
            "check_transdate_period", "ap_allow_negative", "rate_limit_per_minute", "rate_limit_burst",
        )
        if k in opts
    }
    return TenantSettings(
        contractor=contractor,
        tenant=tenant,
        database=database,
        client_id=client_id,
        client_secret=client_secret,
        username=str(opts.get("username") or "FIELDLEDGER_API"),
        password=password,
        key_formats=formats,
        **simple,
    )
