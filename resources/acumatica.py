"""Acumatica contract-based REST client (Default endpoint) over the shared HTTP layer, and its
Dagster resource.

One OAuth password-grant session per API user per process (SharedSessions: every client of the
same user shares it) = one API-user seat, refreshed before expiry, signed in again after Acumatica
ended it (a 401 is answered before anything is done, so the request is resent once), and released
when the last client closes (logout with the bearer token). The endpoint version comes from the
connection and is checked once against ``GET /entity``. Value objects are wrapped and unwrapped
in one place (``wrap_values`` / ``unwrap_values``); OData literals in one place (``odata_string``).
Not for mapping or posting rules: those live in mappings/ and the sink assets.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict

from resources.client_resource import VaultClientResource
from resources.http import (
    AuthError,
    ConflictError,
    HttpClient,
    NotFoundError,
    RateLimiter,
    RemoteError,
    RetryPolicy,
    TransientError,
    ValidationError,
    register_secret,
)

SYSTEM = "acumatica"
SYSTEM_FIELDS = frozenset({"id", "rowNumber", "custom", "_links", "error", "files", "delete"})
# Where each document keeps the ServiceTitan number (design §3 "Exactly once").
EXTERNAL_REF_FIELDS = {"Invoice": "CustomerOrder", "Payment": "PaymentRef", "Bill": "VendorRef"}
RELEASE_ACTIONS = {"Invoice": "ReleaseInvoice", "Payment": "ReleasePayment", "Bill": "ReleaseBill"}
SEAT_LIMIT_TEXT = "API Login Limit"


# --- wire format ----------------------------------------------------------------------------

def _json_number(value: Decimal) -> float | str:
    """A Decimal as a JSON number when float carries it exactly, else as a numeric string
    (which Acumatica also accepts)."""
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def _wire_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def wrap_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """Plain record -> Acumatica wire entity: scalars become {"value": x}; a nested mapping is a
    linked entity, a list of mappings a detail collection; system fields pass through."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in SYSTEM_FIELDS:
            out[name] = value
        elif name == "note":
            out[name] = {"value": value}
        elif isinstance(value, Mapping):
            out[name] = wrap_values(value)
        elif isinstance(value, (list, tuple)):
            out[name] = [wrap_values(row) for row in value]
        else:
            out[name] = {"value": _wire_scalar(value)}
    return out


def unwrap_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Acumatica wire entity -> plain record: {"value": x} -> x, {} -> None, linked entities and
    detail rows recursively; numbers arrive as Decimal when parsed with ``parse_json``."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if name in SYSTEM_FIELDS:
            out[name] = value
        elif isinstance(value, Mapping):
            keys = set(value)
            if keys <= {"value", "error"}:
                out[name] = value.get("value")
            else:
                out[name] = unwrap_values(value)
        elif isinstance(value, list):
            out[name] = [unwrap_values(row) if isinstance(row, Mapping) else row for row in value]
        else:
            out[name] = value
    return out


def parse_json(response: httpx.Response) -> Any:
    return json.loads(response.content or b"null", parse_float=Decimal)


def odata_string(value: str) -> str:
    """A string as an OData literal: quoted, with ' doubled, so no value can widen a query."""
    return "'" + str(value).replace("'", "''") + "'"


def field_errors(entity: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every error Acumatica attached to an echoed entity: the entity's own, each field's, each
    detail row's and each linked entity's, as 'Path: message'."""
    found: list[str] = []
    if isinstance(entity.get("error"), str) and entity["error"]:
        found.append(f"{prefix.rstrip('.') or 'record'}: {entity['error']}")
    for name, value in entity.items():
        if name in SYSTEM_FIELDS:
            continue
        if isinstance(value, Mapping):
            if set(value) <= {"value", "error"}:
                if value.get("error"):
                    shown = "empty" if value.get("value") in (None, "") else value["value"]
                    found.append(f"{prefix}{name} ({shown}): {value['error']}")
            else:
                found.extend(field_errors(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            for i, row in enumerate(value):
                if isinstance(row, Mapping):
                    found.extend(field_errors(row, f"{prefix}{name}[{i + 1}]."))
    return found


# --- errors ---------------------------------------------------------------------------------

class SeatLimitError(AuthError):
    """Every API-user seat of the Acumatica licence is taken (sign-in answered 'API Login Limit')."""


class EndpointVersionError(RuntimeError):
    """The connection pins an endpoint version the instance does not serve."""


def classify_response(response: httpx.Response) -> type[RemoteError] | None:
    """Acumatica quirks on top of the HTTP layer's status mapping."""
    if response.status_code < 400:
        return None
    text = response.text[:4000]
    if SEAT_LIMIT_TEXT in text:
        return SeatLimitError
    if response.status_code == 500:
        if "NoEntitySatisfiesTheConditionException" in text:
            return NotFoundError
        if "OutcomeEntityHasErrorsException" in text:
            return ConflictError
        if "Another process has" in text:
            return TransientError
        if '"exceptionType":"PX.' in text.replace(" ", ""):
            return ValidationError  # a business rule refused the operation: retrying cannot help
    return None


# --- models ---------------------------------------------------------------------------------

class AcuModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class GLAccount(AcuModel):
    AccountCD: str
    Description: str | None = None
    Type: str | None = None
    Active: bool | None = None
    CashAccount: bool | None = None


class Subaccount(AcuModel):
    SubaccountCD: str
    Description: str | None = None
    Active: bool | None = None


class BranchInfo(AcuModel):
    BranchID: str
    BranchName: str | None = None
    BranchStatus: bool | None = None
    CompanyName: str | None = None


class CashAccountInfo(AcuModel):
    CashAccount: str
    PaymentMethod: str | None = None
    Branch: str | None = None
    ARDefault: bool | None = None


class DocumentRef(AcuModel):
    """What the sink records about a posted document."""

    entity: str
    id: str
    Type: str | None = None
    ReferenceNbr: str | None = None
    Status: str | None = None
    external_ref: str | None = None
    Amount: Decimal | None = None
    Balance: Decimal | None = None

    @classmethod
    def from_record(cls, entity: str, record: Mapping[str, Any]) -> DocumentRef:
        amount = record.get("Amount", record.get("PaymentAmount"))
        return cls(entity=entity, id=record["id"], Type=record.get("Type"), ReferenceNbr=record.get("ReferenceNbr"),
                   Status=record.get("Status"), external_ref=record.get(EXTERNAL_REF_FIELDS.get(entity, "")),
                   Amount=None if amount is None else Decimal(str(amount)),
                   Balance=None if record.get("Balance") is None else Decimal(str(record["Balance"])))


# --- auth -----------------------------------------------------------------------------------

class OAuthPasswordAuth:
    """OAuth 2.0 resource-owner password grant with refresh tokens: one grant = one session =
    one API-user seat. Thread-safe; implements the HTTP layer's Auth protocol."""

    def __init__(self, http: HttpClient, client_id: str, client_secret: str, username: str, password: str,
                 seat_wait_seconds: float = 660.0, seat_retry_seconds: float = 15.0, refresh_skew: float = 60.0,
                 sleep=time.sleep, clock=time.monotonic):
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self.seat_wait_seconds = seat_wait_seconds
        self.seat_retry_seconds = seat_retry_seconds
        self._skew = refresh_skew
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.RLock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.sign_ins = 0
        self.refreshes = 0
        self.seat_waits = 0
        for secret in (client_secret, password):
            register_secret(secret)

    @property
    def access_token(self) -> str | None:
        return self._access

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._access is None:
                self._sign_in()
            elif self._clock() >= self._expires_at - self._skew:
                self._renew()
            return {"Authorization": f"Bearer {self._access}"}

    def refresh(self, failed_headers: dict[str, str]) -> None:
        with self._lock:
            failed = failed_headers.get("authorization") or failed_headers.get("Authorization")
            if self._access is not None and failed != f"Bearer {self._access}":
                return  # another thread already replaced the token
            self._renew()

    def _renew(self) -> None:
        if self._refresh:
            try:
                self._store(self._token({"grant_type": "refresh_token", "refresh_token": self._refresh}))
                self.refreshes += 1
                return
            except SeatLimitError:
                pass  # the session ended; a new grant waits for a seat below
            except (AuthError, ValidationError):
                pass  # invalid_grant: the refresh token is gone, sign in again
        self._access = self._refresh = None
        self._sign_in()

    def _sign_in(self) -> None:
        deadline = self._clock() + self.seat_wait_seconds
        form = {"grant_type": "password", "username": self._username, "password": self._password,
                "scope": "api offline_access"}
        while True:
            try:
                self._store(self._token(form))
                self.sign_ins += 1
                return
            except SeatLimitError as exc:
                if self._clock() >= deadline:
                    raise SeatLimitError(
                        f"All API-user seats of the Acumatica licence stayed in use for {self.seat_wait_seconds:.0f} s "
                        f"('{SEAT_LIMIT_TEXT}'). Another integration or a crashed run holds them; a leaked session "
                        f"frees itself after 10 idle minutes, or sign the other sessions out (SM604000)",
                        system=SYSTEM, method="POST", path="/identity/connect/token", status=exc.status,
                    ) from None
                self.seat_waits += 1
                self._sleep(min(self.seat_retry_seconds, max(0.0, deadline - self._clock())))

    def _token(self, form: dict[str, str]) -> dict:
        body = dict(form, client_id=self._client_id, client_secret=self._client_secret)
        response = self._http.post("/identity/connect/token", data=body, use_auth=False, idempotent=True)
        return response.json()

    def _store(self, answer: dict) -> None:
        self._access = answer["access_token"]
        register_secret(self._access)
        if answer.get("refresh_token"):
            self._refresh = answer["refresh_token"]
            register_secret(self._refresh)
        self._expires_at = self._clock() + float(answer.get("expires_in", 3600))

    def forget(self) -> str | None:
        """Drop the tokens (after logout); returns the access token that was held."""
        with self._lock:
            token, self._access, self._refresh = self._access, None, None
            return token


class SharedSessions:
    """One Acumatica session per API user per process: every client of the same instance, connected
    application and user (all workers and threads of a run) signs in through one OAuthPasswordAuth.
    A second sign-in of the same user would cost a second API-user seat, and where the user's
    concurrent-login limit is 1 it signs the first session out (every request on it then answers
    401 and re-signs in, evicting the other: churn). The last client to close signs out."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, list] = {}  # key -> [auth, identity http client, users]

    def acquire(self, key: tuple, build) -> OAuthPasswordAuth:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = [*build(), 0]
            entry[2] += 1
            return entry[0]

    def release(self, key: tuple) -> tuple[OAuthPasswordAuth, HttpClient] | None:
        """Drop one user of the session; the auth and its HTTP client when that was the last."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry[2] -= 1
            if entry[2] > 0:
                return None
            del self._entries[key]
            return entry[0], entry[1]


SESSIONS = SharedSessions()


PASSWORD_GRANT_HELP = (
    "Acumatica refused the resource-owner password grant for this connected application (unauthorized_client). "
    "fieldledger signs in as an API user with that grant, so the connected application must allow it")
PASSWORD_GRANT_FIX = (
    "In Acumatica open Connected Applications (SM303010), select the application whose client ID is stored in "
    "acu_client_id, set its OAuth 2.0 flow to 'Resource Owner Password Credentials', save, then ping again")


def _classify_identity(response: httpx.Response) -> type[RemoteError] | None:
    if SEAT_LIMIT_TEXT in response.text[:4000]:
        return SeatLimitError
    if response.status_code == 400 and "invalid_grant" in response.text:
        return AuthError
    if response.status_code == 400 and "invalid_client" in response.text:
        return AuthError
    if response.status_code == 400 and "unauthorized_client" in response.text:
        return AuthError  # the connected application does not allow the password grant: PASSWORD_GRANT_FIX
    return None


# --- the client -----------------------------------------------------------------------------

class AcumaticaClient:
    """Contract-based REST API of one Acumatica tenant, pinned to one endpoint version."""

    def __init__(self, base_url: str, tenant: str, client_id: str, client_secret: str, username: str,
                 password: str, endpoint: str = "Default", version: str = "24.200.001", max_concurrency: int = 3,
                 rate_per_minute: float | None = None, timeout: float = 120.0, retry: RetryPolicy | None = None,
                 seat_wait_seconds: float = 660.0, seat_retry_seconds: float = 15.0, poll_interval: float = 1.0,
                 action_timeout: float = 600.0, transport: httpx.BaseTransport | None = None, sleep=time.sleep,
                 share_session: bool = True, time_zone: str = "UTC"):
        if "@" not in client_id:
            raise ValueError("The Acumatica client id must have the form <GUID>@<Tenant> (Connected Applications, "
                             "SM303010)")
        if tenant and client_id.split("@", 1)[1].casefold() != tenant.casefold():
            raise ValueError(f"The client id names tenant '{client_id.split('@', 1)[1]}' but the connection's tenant "
                             f"is '{tenant}'; the tenant in the client id decides which data is reached")
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.endpoint = endpoint
        self.version = version
        self.poll_interval = poll_interval
        self.action_timeout = action_timeout
        self._sleep = sleep
        retry = retry or RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=30.0)
        self.zone = ZoneInfo(time_zone)  # the API user's: dates are its calendar days (day filters)

        def identity() -> HttpClient:
            return HttpClient(SYSTEM, self.base_url, timeout=timeout, retry=retry, classify=_classify_identity,
                              transport=transport, sleep=sleep)

        def build() -> tuple[OAuthPasswordAuth, HttpClient]:
            http = identity()
            return OAuthPasswordAuth(http, client_id, client_secret, username, password,
                                     seat_wait_seconds=seat_wait_seconds, seat_retry_seconds=seat_retry_seconds,
                                     sleep=sleep), http

        # a test's private transport cannot be shared; everything else signs in once per process
        self._session_key = None
        if share_session and transport is None:
            digest = hashlib.sha256(f"{client_secret}\0{password}".encode()).hexdigest()
            self._session_key = (self.base_url.casefold(), client_id, username.casefold(), digest)
            self.auth = SESSIONS.acquire(self._session_key, build)
            self._identity = identity()
        else:
            self.auth, self._identity = build()
        limiter = None
        if rate_per_minute:
            limiter = RateLimiter.shared(f"{SYSTEM}:{self.base_url}:{client_id}", rate_per_minute / 60.0,
                                         burst=max(1, max_concurrency))
        self.api_path = f"/entity/{quote(endpoint)}/{quote(version)}"
        self.http = HttpClient(SYSTEM, f"{self.base_url}{self.api_path}", auth=self.auth, timeout=timeout,
                               retry=retry, limiter=limiter, max_concurrency=max_concurrency,
                               classify=classify_response, transport=transport, sleep=sleep,
                               default_headers={"Accept": "application/json"})
        self._version_checked = False
        self._version_lock = threading.Lock()
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> AcumaticaClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Sign out (frees the API-user seat) and close the connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        owned: tuple[OAuthPasswordAuth, HttpClient] | None = (self.auth, self._identity)
        if self._session_key is not None:
            owned = SESSIONS.release(self._session_key)  # None: other clients still use the session
            self._identity.close()
        try:
            token = owned[0].forget() if owned else None
            if token:
                # one quick attempt: if the instance is unreachable the seat expires on its own
                owned[1].post("/entity/auth/logout", headers={"Authorization": f"Bearer {token}"},
                              use_auth=False, content=b"", timeout=5.0, attempts=1)
        except RemoteError:
            pass  # the seat frees itself after 10 idle minutes; nothing else to do here
        finally:
            self.http.close()
            if owned:
                owned[1].close()

    def served_endpoints(self) -> list[tuple[str, str]]:
        """(name, version) pairs from GET /entity (anonymous; both answer shapes handled)."""
        body = parse_json(self._identity.get("/entity", use_auth=False))
        rows = body.get("endpoints", []) if isinstance(body, Mapping) else body
        return [(str(r.get("name")), str(r.get("version"))) for r in rows or [] if isinstance(r, Mapping)]

    def ensure_version(self) -> None:
        """Fail fast, once, when the instance does not serve the pinned endpoint version."""
        if self._version_checked:
            return
        with self._version_lock:
            if self._version_checked:
                return
            served = self.served_endpoints()
            if not any(n.casefold() == self.endpoint.casefold() and v == self.version for n, v in served):
                listed = ", ".join(f"{n}/{v}" for n, v in served) or "none"
                raise EndpointVersionError(
                    f"The connection pins Acumatica endpoint {self.endpoint}/{self.version}, but {self.base_url} "
                    f"serves only: {listed}. Set the connection's endpoint version to one of these.")
            self._version_checked = True

    # --- requests -------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        self.ensure_version()
        return self.http.request(method, path, **kw)

    @staticmethod
    def _params(select=None, expand=None, filter=None, top=None, skip=None) -> dict[str, str]:
        params: dict[str, str] = {}
        if select:
            params["$select"] = select if isinstance(select, str) else ",".join(select)
        if expand:
            params["$expand"] = expand if isinstance(expand, str) else ",".join(expand)
        if filter:
            params["$filter"] = filter
        if top is not None:
            params["$top"] = str(int(top))
        if skip:
            params["$skip"] = str(int(skip))
        return params

    @staticmethod
    def _key_path(entity: str, id_or_keys: str | Sequence[str]) -> str:
        keys = [id_or_keys] if isinstance(id_or_keys, str) else list(id_or_keys)
        for k in keys:
            if "/" in k:
                raise ValueError(f"Key value {k!r} contains '/': address the {entity} by its id instead")
        return f"/{entity}/" + "/".join(quote(k, safe="") for k in keys)

    def get(self, entity: str, id_or_keys: str | Sequence[str], *, select=None, expand=None) -> dict:
        """One record by id (GUID) or key values; NotFoundError when there is none."""
        response = self._request("GET", self._key_path(entity, id_or_keys), params=self._params(select, expand))
        return unwrap_values(parse_json(response))

    def list(self, entity: str, *, filter: str | None = None, select=None, expand=None,
             top: int | None = None, skip: int | None = None) -> list[dict]:
        response = self._request("GET", f"/{entity}", params=self._params(select, expand, filter, top, skip))
        return [unwrap_values(row) for row in parse_json(response)]

    def iter_all(self, entity: str, *, filter: str | None = None, select=None, expand=None,
                 page_size: int = 500) -> Iterator[dict]:
        """Every record, paged with $top/$skip until a short page (the API has no count)."""
        skip = 0
        while True:
            page = self.list(entity, filter=filter, select=select, expand=expand, top=page_size, skip=skip)
            yield from page
            if len(page) < page_size:
                return
            skip += page_size

    def put(self, entity: str, record: Mapping[str, Any], *, expand=None, select=None,
            create_only: bool = False, update_only: bool = False) -> dict:
        """Upsert (by key fields or id); returns the saved record. A 422 becomes a ValidationError
        naming every bad field and its message."""
        headers = {"Content-Type": "application/json"}
        if create_only:
            headers["If-None-Match"] = "*"
        if update_only:
            headers["If-Match"] = "*"
        body = json.dumps(wrap_values(record), ensure_ascii=False).encode()
        path = f"/{entity}"
        response = self._request("PUT", path, params=self._params(select, expand), content=body,
                                 headers=headers, ok_statuses={200, 422})
        if response.status_code == 422:
            echoed = parse_json(response)
            problems = field_errors(echoed) if isinstance(echoed, Mapping) else []
            raise ValidationError(
                f"Acumatica refused the {entity}: " + ("; ".join(problems) or "no field message given"),
                system=SYSTEM, method="PUT", path=f"{self.api_path}{path}", status=422,
            )
        return unwrap_values(parse_json(response))

    def delete(self, entity: str, id_or_keys: str | Sequence[str]) -> None:
        self._request("DELETE", self._key_path(entity, id_or_keys))

    def invoke(self, entity: str, action: str, record_id: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run an action on a record and wait for it: 202 + Location, polled until 204."""
        location = self.start_action(entity, action, record_id, parameters)
        if location is not None:
            self.wait_action(location, f"{entity}/{action} on {record_id}")

    def start_action(self, entity: str, action: str, record_id: str,
                     parameters: Mapping[str, Any] | None = None) -> str | None:
        """Start an action; returns the absolute URL to poll, or None when it finished at once (204)."""
        body = {"entity": {"id": record_id}, "parameters": wrap_values(parameters or {})}
        response = self._request("POST", f"/{entity}/{action}", content=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, ok_statuses={202, 204})
        if response.status_code == 204:
            return None
        location = response.headers.get("location")
        if not location:
            raise TransientError(f"Acumatica accepted {entity}/{action} without a Location to poll", system=SYSTEM,
                                 method="POST", path=f"{self.api_path}/{entity}/{action}", status=202)
        return urljoin(self.base_url + "/", location)

    def wait_action(self, location: str, what: str) -> None:
        """Poll a started action until 204; its failure surfaces as the status GET's RemoteError."""
        deadline = time.monotonic() + self.action_timeout
        wait = min(0.05, self.poll_interval)
        while True:
            # quick first looks (most releases finish in well under a second), then every poll_interval
            self._sleep(wait)
            wait = min(self.poll_interval, wait * 2)
            status = self.http.request("GET", location, ok_statuses={202, 204})
            if status.status_code == 204:
                return
            if time.monotonic() > deadline:
                raise TransientError(
                    f"{what} still running after {self.action_timeout:.0f} s; check the document's Status before "
                    f"retrying", system=SYSTEM, method="GET", path=location, status=202)

    def release(self, entity: str, record_id: str) -> None:
        """Release an Invoice, Payment or Bill and wait for it. The action's final 204 is the
        confirmation; reading the document back would cost one more license-counted request per
        document, so callers that need its new Status GET it themselves."""
        if entity not in RELEASE_ACTIONS:
            raise ValueError(f"Acumatica has no release action for {entity}; known: {', '.join(RELEASE_ACTIONS)}")
        self.invoke(entity, RELEASE_ACTIONS[entity], record_id)

    # --- lookups --------------------------------------------------------------------------
    def find_by_external_ref(self, entity: str, refs: Iterable[str], *, extra_filter: str | None = None,
                             chunk_size: int = 25, select=None, expand=None) -> dict[str, list[dict]]:
        """Existing documents by the field that carries the ServiceTitan number (Invoice
        CustomerOrder, Payment PaymentRef, Bill VendorRef), a few OR-ed $filter requests for many
        refs. Returns ref -> matching records (exact, case-sensitive match; the server compares
        case-insensitively); refs with no match are absent."""
        ref_field = EXTERNAL_REF_FIELDS.get(entity)
        if ref_field is None:
            raise ValueError(f"No external reference field is known for {entity}")
        wanted = list(dict.fromkeys(str(r) for r in refs if r is not None and str(r) != ""))
        found: dict[str, list[dict]] = {}
        for start in range(0, len(wanted), chunk_size):
            chunk = wanted[start:start + chunk_size]
            ors = " or ".join(f"{ref_field} eq {odata_string(ref)}" for ref in chunk)
            flt = f"({ors})" if not extra_filter else f"({extra_filter}) and ({ors})"
            for row in self.list(entity, filter=flt, select=select, expand=expand):
                ref = row.get(ref_field)
                if ref in chunk:
                    found.setdefault(ref, []).append(row)
        return found

    # --- reference data -------------------------------------------------------------------
    def list_accounts(self) -> list[GLAccount]:
        return [GLAccount.model_validate(r) for r in self.iter_all("Account")]

    def list_subaccounts(self) -> list[Subaccount]:
        return [Subaccount.model_validate(r) for r in self.iter_all("Subaccount")]

    def list_branches(self) -> list[BranchInfo]:
        """Branches through the CompaniesStructure inquiry (PUT with an empty body, $expand=Results)."""
        response = self._request("PUT", "/CompaniesStructure", params={"$expand": "Results"}, content=b"{}",
                                 headers={"Content-Type": "application/json"}, idempotent=True)  # a read
        body = unwrap_values(parse_json(response))
        return [BranchInfo.model_validate(r) for r in body.get("Results") or []]

    def list_cash_accounts(self) -> list[CashAccountInfo]:
        rows = []
        for method in self.list("PaymentMethod", expand="AllowedCashAccounts"):
            for row in method.get("AllowedCashAccounts") or []:
                rows.append(CashAccountInfo.model_validate({**row, "PaymentMethod": method.get("PaymentMethodID")}))
        return rows


# --- Dagster resource -----------------------------------------------------------------------

class AcumaticaResource(VaultClientResource):
    """Acumatica for one connection. Config holds no secrets: the client id, client secret, user
    name and password come from the vault (acu_client_id, acu_client_secret, acu_username,
    acu_password) when a client is opened. Clients opened in a run are signed out at teardown."""

    secret_prefix: ClassVar[str] = "acu_"
    base_url: str
    tenant: str
    endpoint: str = "Default"
    version: str = "24.200.001"
    max_concurrency: int = 3
    rate_per_minute: float | None = None
    time_zone: str = "UTC"

    def build_client(self, secrets: dict[str, str]) -> AcumaticaClient:
        return AcumaticaClient(self.base_url, self.tenant, endpoint=self.endpoint, version=self.version,
                               max_concurrency=self.max_concurrency, rate_per_minute=self.rate_per_minute,
                               time_zone=self.time_zone, **secrets)
