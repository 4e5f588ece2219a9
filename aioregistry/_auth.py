"""The auth protocol without I/O: challenges, token answers and the bearer-token cache.

Nothing here does I/O except through the ``fetch`` callables it is handed, so every rule is
testable without a network (the requests themselves are `_authflow`'s):

- ``WWW-Authenticate`` headers may carry several challenges, and quoted values may contain
  commas and escaped quotes.
- A token answer holds ``token`` and/or ``access_token``; ``expires_in`` absent or below 60
  means 60 seconds; ``issued_at`` (RFC 3339) moves the expiry earlier when the token is old.
- Tokens are cached per (realm, service, scope) and fetched single-flight.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ._exceptions import AuthenticationError
from ._flight import SingleFlight
from ._models import load_object

__all__ = [
    "MIN_TOKEN_LIFETIME",
    "Challenge",
    "Token",
    "TokenCache",
    "TokenKey",
    "parse_token_response",
    "parse_www_authenticate",
]

MIN_TOKEN_LIFETIME = 60  # docs/spec/auth/token.md: absent or smaller means 60 seconds

_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.!#$%&\'*+^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_SCHEME = re.compile(r"\s*([A-Za-z0-9_.!#$%&\'*+^`|~-]+)(?=\s|$|,)")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: a scheme (lower-cased) and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def parse_www_authenticate(values: list[str] | tuple[str, ...] | str) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` header values into challenges, in order.

    Accepts RFC 7235 syntax: ``Bearer realm="https://a/token",service="a,b", Basic realm=x``.
    Unparseable fragments are skipped rather than fatal: a registry that sends one odd challenge
    beside a good one should still work.
    """
    if isinstance(values, str):
        values = [values]
    challenges: list[Challenge] = []
    for value in values:
        pos, end = 0, len(value)
        current: tuple[str, dict[str, str]] | None = None
        while pos < end:
            if value[pos] in ", \t":
                pos += 1
                continue
            param = _PARAM.match(value, pos)
            if param and current is not None:
                raw = param.group(2)
                if raw.startswith('"'):
                    if not _QUOTED.fullmatch(raw):
                        # An unterminated quoted string runs to the end of the header (a comma
                        # after its quote is inside it): no value is better than a cut one.
                        pos = end
                        continue
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                current[1][param.group(1).lower()] = raw
                pos = param.end()
                continue
            scheme = _SCHEME.match(value, pos)
            if scheme is None:
                # Stray character: skip to the next comma.
                nxt = value.find(",", pos)
                pos = end if nxt < 0 else nxt + 1
                continue
            if current is not None:
                challenges.append(Challenge(current[0], current[1]))
            current = (scheme.group(1).lower(), {})
            pos = scheme.end()
            token68 = _TOKEN68.match(value, pos + 1) if pos < end and value[pos] == " " else None
            if token68 and value[token68.end() :].lstrip(" \t")[:1] in ("", ","):
                pos = token68.end()  # e.g. "Negotiate abc==": a credential blob, not params
        if current is not None:
            challenges.append(Challenge(current[0], current[1]))
    return challenges


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when it stops being worth sending. ``value`` never appears in a repr."""

    value: str = field(repr=False)
    expires_at: float  # on the cache's clock (``time.time`` unless a test injects one)
    expires_in: int
    scope: str
    refresh_token: str | None = field(default=None, repr=False)

    def fresh(self, now: float) -> bool:
        # Refresh a little early so a token does not expire between check and use.
        margin = min(30.0, self.expires_in * 0.1)
        return now < self.expires_at - margin


def parse_token_response(body: bytes, *, scope: str, now: float, realm: str) -> Token:
    """Read a token server's JSON answer (``token`` or ``access_token``, expiry fields)."""
    data = load_object(body, f"the answer of token server {realm}", error=AuthenticationError)
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"token server {realm} answered without a token")
    expires_in = data.get("expires_in")
    lifetime = (
        int(expires_in)
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
        else 0
    )
    lifetime = max(lifetime, MIN_TOKEN_LIFETIME)
    expires_at = now + lifetime
    issued = _parse_rfc3339(data.get("issued_at"))
    if issued is not None:
        by_issue = issued + lifetime
        # An issued_at that makes a brand-new token already expired is clock skew, not age.
        if now < by_issue < expires_at:
            expires_at = by_issue
    refresh = data.get("refresh_token")
    return Token(value, expires_at, lifetime, scope, refresh if isinstance(refresh, str) else None)


def _parse_rfc3339(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 cannot read more than 6 fractional digits; Go sends 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


TokenKey = tuple[str, str, str]  # (realm, service, scope)


class TokenCache:
    """Bearer tokens per (realm, service, scope), shared by all tasks of one client.

    ``get`` returns a fresh cached token or fetches one, single-flight: concurrent callers for
    the same key wait for the one fetch. ``invalidate`` drops a token a registry refused, but
    only if no one has replaced it meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[TokenKey, Token] = {}
        self._flight: SingleFlight[TokenKey, Token] = SingleFlight()
        self.fetches = 0  # token requests started: one per key per expiry, whatever the load

    async def get(self, key: TokenKey, fetch: Callable[[], Awaitable[Token]]) -> Token:
        token = self._tokens.get(key)
        if token is not None and token.fresh(self.clock()):
            return token

        async def fetch_and_store() -> Token:
            # Another flight may have finished between our check and becoming leader.
            cached = self._tokens.get(key)
            if cached is not None and cached.fresh(self.clock()):
                return cached
            self.fetches += 1
            new = await fetch()
            self._tokens[key] = new
            return new

        return await self._flight.do(key, fetch_and_store)

    def invalidate(self, key: TokenKey, token: Token) -> None:
        if self._tokens.get(key) is token:
            del self._tokens[key]
