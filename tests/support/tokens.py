"""A docker token-auth server (``docs/spec/auth/token.md``) for the ``token`` test registry.

:class:`TokenIssuer` serves ``GET /token?service=S&scope=A&scope=B`` over plain HTTP on
127.0.0.1, from a background thread with its own event loop, so it works with any test's event
loop and from synchronous session fixtures. It signs ES256 JWTs carrying the signing
certificate in ``x5c``, which distribution verifies against its ``rootcertbundle``.

Policy: anonymous callers get ``pull`` on repositories outside ``private/``; ``alice`` gets
``pull`` on every repository; ``pusher`` gets ``pull,push`` on every repository and ``*`` on
``registry:catalog:*``. A grant is the intersection of what was asked and what is allowed.

OAuth2 (``docs/spec/auth/oauth.md``): ``POST /token`` with a form takes ``grant_type=password``
(``username``, ``password``; ``access_type=offline`` adds a refresh token to the answer) and
``grant_type=refresh_token`` (a refresh token this issuer handed out); ``client_id`` is
required, ``scope`` is space-separated. ``GET`` with ``offline_token=true`` and Basic
credentials also hands out a refresh token. Both methods are served on ``/token`` and on
``/service/token`` (Harbor's path).

Tests turn the knobs (plain attributes) to misbehave on purpose and read :attr:`issued`
(tokens handed out) and :attr:`requests` (every request: method, path, grant type).
The ``post_status`` knob makes every ``POST`` answer that status (404, or Harbor's 405).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_SERVICE",
    "DEFAULT_USERS",
    "ParsedScope",
    "RequestRecord",
    "TokenIssuer",
    "TokenRecord",
    "decode_jwt_unverified",
    "parse_scope",
]

DEFAULT_SERVICE = "aioregistry-test-registry"
DEFAULT_ISSUER = "aioregistry-test-issuer"
DEFAULT_USERS: Mapping[str, str] = {"alice": "wonderland", "pusher": "pushpw"}

#: How far in the past ``exp`` lies for tokens issued while ``expired_tokens_remaining`` > 0.
#: Distribution 2.8 accepts tokens up to 60 s past ``exp``; 200 s is well beyond that.
EXPIRED_BY_SECONDS = 200

_DEFAULT_KNOBS: dict[str, Any] = {
    "expires_in": 300,
    "jwt_lifetime": 300,
    "issued_at_offset": 0.0,
    "token_fields": ("token", "access_token"),
    "expired_tokens_remaining": 0,
    "delay": 0.0,
    "post_status": None,
}
TOKEN_PATHS = ("/token", "/service/token")
SAFE_FORM = frozenset({"grant_type", "service", "scope", "client_id", "access_type", "username"})


@dataclass(frozen=True)
class ParsedScope:
    """One scope ``type[(class)]:name:action[,action]``."""

    type: str
    resource_class: str | None
    name: str
    actions: tuple[str, ...]


def parse_scope(scope: str) -> ParsedScope | None:
    """Parse a scope: the type is split off the left, the actions off the right.

    Names may contain ``host:port``, so only the first and the last ``:`` separate fields.
    Returns None for a malformed scope.
    """
    type_part, sep, rest = scope.partition(":")
    if not sep:
        return None
    name, sep, actions_part = rest.rpartition(":")
    if not sep or not name or not type_part:
        return None
    resource_class: str | None = None
    if type_part.endswith(")") and "(" in type_part:
        type_part, _, resource_class = type_part[:-1].partition("(")
    actions = tuple(dict.fromkeys(a for a in actions_part.split(",") if a))
    return ParsedScope(type_part, resource_class, name, actions)


@dataclass(frozen=True)
class TokenRecord:
    """One issued token: who asked (None = anonymous), for what, and what was granted."""

    account: str | None
    service: str
    scopes: list[str]
    access: list[dict[str, Any]]
    time: float
    token: str
    expired: bool = False
    query: dict[str, list[str]] = field(default_factory=dict)
    method: str = "GET"
    grant_type: str | None = None  # the OAuth2 grant of a POST
    path: str = "/token"
    refresh_token: str | None = None  # handed out with this token, if asked for offline use


@dataclass(frozen=True)
class RequestRecord:
    """One request to the issuer, answered or not (no secrets: form values are left out)."""

    method: str
    path: str
    status: int
    grant_type: str | None = None
    fields: tuple[str, ...] = ()  # the form's field names (POST)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(header, claims)`` of a JWT without checking its signature."""
    header, claims, _signature = token.split(".")
    return json.loads(_b64url_decode(header)), json.loads(_b64url_decode(claims))


def _rfc3339(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class TokenIssuer:
    """The token endpoint the ``token`` registry points its clients at (see module doc)."""

    expires_in: int | None
    jwt_lifetime: int
    issued_at_offset: float
    token_fields: tuple[str, ...]
    expired_tokens_remaining: int
    delay: float
    post_status: int | None

    def __init__(
        self,
        signing_key: ec.EllipticCurvePrivateKey,
        signing_cert: x509.Certificate,
        *,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.signing_key = signing_key
        self.signing_cert = signing_cert
        self.service = service
        self.issuer = issuer
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        self.host = host
        self.port = 0
        self.issued: list[TokenRecord] = []
        self.requests: list[RequestRecord] = []
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> account
        self.failed = 0
        self._lock = threading.Lock()
        self._x5c = base64.b64encode(signing_cert.public_bytes(serialization.Encoding.DER))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._restore_knobs()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def realm(self) -> str:
        """The token endpoint URL, as the registry advertises it in its challenge."""
        if not self.port:
            raise RuntimeError("TokenIssuer is not started")
        return f"http://{self.host}:{self.port}/token"

    def start(self) -> None:
        """Start serving in a background thread; returns once the port is listening."""
        if self._thread is not None:
            raise RuntimeError("TokenIssuer already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the starting thread
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="token-issuer", daemon=True)
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("token issuer did not start within 20 s")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("token issuer failed to start") from failure[0]

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        for path in TOKEN_PATHS:
            app.router.add_get(path, self._handle_token)
            app.router.add_post(path, self._handle_oauth)
        # A short shutdown timeout: a handler held up by the ``delay`` knob must not stall stop().
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._stop_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            ready.set()
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("token issuer thread did not stop within 10 s")
        self._thread = self._loop = self._stop_event = None

    def __enter__(self) -> TokenIssuer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- records and knobs ------------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many tokens were issued since the last :meth:`reset`."""
        with self._lock:
            return len(self.issued)

    def _restore_knobs(self) -> None:
        for name, value in _DEFAULT_KNOBS.items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Forget every record and restore every knob to its default."""
        with self._lock:
            self.issued = []
            self.requests = []
            self.refresh_tokens = {}
            self.failed = 0
            self._restore_knobs()

    # -- policy ------------------------------------------------------------------------------

    def allowed_actions(self, account: str | None, scope: ParsedScope) -> frozenset[str]:
        """What ``account`` (None = anonymous) may do on the resource named by ``scope``."""
        if scope.type == "repository":
            if account == "pusher":
                return frozenset({"pull", "push"})
            if account is not None or not scope.name.startswith("private/"):
                return frozenset({"pull"})
            return frozenset()
        if scope.type == "registry" and scope.name == "catalog" and account == "pusher":
            return frozenset({"*"})
        return frozenset()

    def grant(self, account: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The ``access`` claim for ``scopes``: requested ∩ allowed, empty entries left out."""
        access: list[dict[str, Any]] = []
        for raw in scopes:
            scope = parse_scope(raw)
            if scope is None:
                continue
            allowed = self.allowed_actions(account, scope)
            actions = [action for action in scope.actions if action in allowed]
            if not actions:
                continue
            entry: dict[str, Any] = {"type": scope.type}
            if scope.resource_class is not None:
                entry["class"] = scope.resource_class
            entry["name"] = scope.name
            entry["actions"] = actions
            access.append(entry)
        return access

    def _authenticate(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        return self._check_password(user, password)

    def _check_password(self, user: str, password: str) -> str | None:
        expected = self.users.get(user)
        if expected is None:
            return None
        if not secrets.compare_digest(password.encode(), expected.encode()):
            return None
        return user

    def _new_refresh_token(self, account: str) -> str:
        token = "refresh-" + secrets.token_urlsafe(24)
        with self._lock:
            self.refresh_tokens[token] = account
        return token

    def _log(
        self,
        request: web.Request,
        status: int,
        grant_type: str | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        with self._lock:
            self.requests.append(
                RequestRecord(request.method, request.path, status, grant_type, fields)
            )

    # -- JWT ---------------------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Encode and sign ``claims`` as an ES256 JWT with the ``x5c`` header."""
        header = {"alg": "ES256", "typ": "JWT", "x5c": [self._x5c.decode("ascii")]}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.signing_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    async def _handle_token(self, request: web.Request) -> web.Response:
        with self._lock:
            delay = self.delay
        if delay > 0:
            await asyncio.sleep(delay)

        account: str | None = None
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            account = self._authenticate(authorization)
            if account is None:
                with self._lock:
                    self.failed += 1
                self._log(request, 401)
                return web.json_response(
                    {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                    status=401,
                )

        service = request.query.get("service", self.service)
        scopes = [part for raw in request.query.getall("scope", []) for part in raw.split()]
        refresh = None
        if account is not None and request.query.get("offline_token") == "true":
            refresh = self._new_refresh_token(account)
        self._log(request, 200)
        body = self._issue(
            account,
            service,
            scopes,
            query={key: request.query.getall(key) for key in request.query},
            path=request.path,
            refresh_token=refresh,
        )
        return web.json_response(body)

    async def _handle_oauth(self, request: web.Request) -> web.Response:
        """``POST``: the OAuth2 password and refresh-token grants (or ``post_status``)."""
        with self._lock:
            delay, post_status = self.delay, self.post_status
        if delay > 0:
            await asyncio.sleep(delay)
        form = await request.post()
        grant_type = str(form.get("grant_type", "")) or None
        fields = tuple(sorted(form.keys()))
        if post_status is not None:
            self._log(request, post_status, grant_type, fields)
            return web.Response(status=post_status, text=f"{request.method} not allowed here\n")

        def oauth_error(status: int, error: str) -> web.Response:
            if status == 401 or error == "invalid_grant":
                with self._lock:
                    self.failed += 1
            self._log(request, status, grant_type, fields)
            return web.json_response({"error": error}, status=status)

        if not form.get("client_id"):
            return oauth_error(400, "invalid_request")
        account: str | None
        refresh = None
        if grant_type == "password":
            account = self._check_password(
                str(form.get("username", "")), str(form.get("password", ""))
            )
            if account is None:
                return oauth_error(401, "invalid_grant")
            if form.get("access_type") == "offline":
                refresh = self._new_refresh_token(account)
        elif grant_type == "refresh_token":
            with self._lock:
                account = self.refresh_tokens.get(str(form.get("refresh_token", "")))
            if account is None:
                return oauth_error(400, "invalid_grant")
        else:
            return oauth_error(400, "unsupported_grant_type")
        self._log(request, 200, grant_type, fields)
        body = self._issue(
            account,
            str(form.get("service", self.service)),
            str(form.get("scope", "")).split(),
            query={key: [str(v) for v in form.getall(key)] for key in fields if key in SAFE_FORM},
            path=request.path,
            method="POST",
            grant_type=grant_type,
            refresh_token=refresh,
        )
        return web.json_response(body)

    def _issue(
        self,
        account: str | None,
        service: str,
        scopes: list[str],
        *,
        query: dict[str, list[str]],
        path: str,
        method: str = "GET",
        grant_type: str | None = None,
        refresh_token: str | None = None,
    ) -> dict[str, Any]:
        """Sign a token for ``account`` and record it; returns the JSON answer."""
        access = self.grant(account, scopes)
        now = time.time()

        with self._lock:
            expired = self.expired_tokens_remaining > 0
            if expired:
                self.expired_tokens_remaining -= 1
            lifetime = self.jwt_lifetime
            expires_in = self.expires_in
            issued_at_offset = self.issued_at_offset
            token_fields = tuple(self.token_fields)

        iat = int(now)
        exp = iat + lifetime
        if expired:
            exp = iat - EXPIRED_BY_SECONDS
            iat = exp - lifetime
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": service,
            "exp": exp,
            "nbf": iat,
            "iat": iat,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = self.sign(claims)

        body: dict[str, Any] = dict.fromkeys(token_fields, token)
        if expires_in is not None:
            body["expires_in"] = expires_in
        body["issued_at"] = _rfc3339(now + issued_at_offset)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if method == "POST":
            body["scope"] = " ".join(scopes)

        record = TokenRecord(
            account=account,
            service=service,
            scopes=scopes,
            access=access,
            time=now,
            token=token,
            expired=expired,
            query=query,
            method=method,
            grant_type=grant_type,
            path=path,
            refresh_token=refresh_token,
        )
        with self._lock:
            self.issued.append(record)
        return body
