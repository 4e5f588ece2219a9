"""The auth flow: from a registry's challenge to the ``Authorization`` of each request.

A registry says how it wants to be asked in the challenge of its 401 (`Endpoint.challenge`,
learned by the ping). For ``Basic`` the credentials go with every request; for ``Bearer`` a
token per scope is fetched from the realm the challenge names (cached, single-flight, in
`TokenCache`): with an identity token by the OAuth2 refresh-token grant (``POST``; ``GET``
once a realm has answered that with 404 or 405), else by ``GET`` with Basic credentials when
there are any and anonymously when not. A 401 to a request that carried a token drops that
token, so the request is asked once more with a new one (`AuthFlow.renew`).

The rules that keep credentials where they belong live here: a realm must be an http(s) URL
with a host; a redirect target's challenge is never answered with the registry's
credentials; and credentials never travel in clear text to a host that is not loopback
unless the client is ``insecure``.
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from ._auth import (
    Challenge,
    Token,
    TokenCache,
    TokenKey,
    parse_token_response,
    parse_www_authenticate,
)
from ._credential_source import CredentialSource
from ._exceptions import AuthenticationError, InsecureCredentials, ResponseError, Unauthorized
from ._references import is_loopback_host
from ._responses import Response, error_for_response, redact_url
from ._scopes import scope_repository
from ._transport import Transport

__all__ = ["LOG_IN", "OAUTH_CLIENT_ID", "TOKEN_LIMIT", "AuthFlow", "Endpoint", "pick_challenge"]

TOKEN_LIMIT = 1024 * 1024
OAUTH_CLIENT_ID = "aioregistry"  # docs/spec/auth/oauth.md: a client identifies itself
LOG_IN = "(log in with docker login, --username/--password-stdin, or DOCKER_USER/DOCKER_PASSWORD)"


@dataclass(slots=True)
class Endpoint:
    """Where a registry answers (``base``: scheme://host) and what it asks for: the
    ``challenge`` of its 401, or None when it lets anyone in."""

    host: str
    base: URL
    challenge: Challenge | None


class AuthFlow:
    """Authorises requests to registries, one per client (its tokens, credentials, realms)."""

    def __init__(
        self,
        transport: Transport,
        credentials: CredentialSource,
        tokens: TokenCache,
        *,
        insecure: bool,
    ) -> None:
        self._transport = transport
        self.credentials = credentials
        self.tokens = tokens
        self._insecure = insecure
        self._realms_without_oauth: set[str] = set()  # answered our POST with 404/405

    async def authorize(
        self, endpoint: Endpoint, scope: str, headers: dict[str, str]
    ) -> Token | None:
        """Put the ``Authorization`` that ``endpoint`` wants for ``scope`` into ``headers``;
        returns the bearer token used, if any."""
        challenge = endpoint.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds, _ = await self.credentials.resolve(endpoint.host, scope_repository(scope))
            if creds is not None and creds.has_password:
                self.check_clear_text(endpoint.base, endpoint.host)
                headers["Authorization"] = creds.basic_header()
            return None
        if challenge.scheme == "bearer":
            token = await self.token(endpoint, challenge, scope)
            headers["Authorization"] = f"Bearer {token.value}"
            return token
        return None

    def renew(self, endpoint: Endpoint, scope: str, resp: Response, token: Token | None) -> bool:
        """A request got ``resp``, a 401: whether asking once more can succeed. When it can,
        the refused token is dropped or the new challenge adopted, so that the next
        `authorize` answers it."""
        if URL(resp.url).origin() != endpoint.base.origin():
            # A redirect target (a blob store) asked for credentials: what it names is not
            # the registry's realm, and the registry's credentials are not for it.
            return False
        challenge = pick_challenge(resp, endpoint.host, required=False)
        if challenge is None:
            return False
        if token is not None:
            # The registry no longer takes this token (expired, revoked): drop and renew.
            self.tokens.invalidate(_token_key(challenge, scope), token)
            self.tokens.invalidate(_token_key(endpoint.challenge, scope), token)
        elif endpoint.challenge is not None and endpoint.challenge.scheme == challenge.scheme:
            return False  # we already answered this kind of challenge; asking again cannot help
        endpoint.challenge = challenge
        return True

    def error(self, resp: Response, endpoint: Endpoint, what: str) -> ResponseError:
        """The error for an error status; a 401 also says whom the registry refused."""
        error = error_for_response(resp, what=what)
        if isinstance(error, Unauthorized):
            creds, source = self.credentials.last(endpoint.host)
            who = f"as {creds.describe()} ({source})" if creds else f"anonymously {LOG_IN}"
            error.args = (f"{error.args[0]} [authenticated {who}]",)
        return error

    async def token(self, endpoint: Endpoint, challenge: Challenge, scope: str) -> Token:
        """A bearer token for ``scope`` from the realm of ``challenge`` (cached)."""
        key = _token_key(challenge, scope)
        return await self.tokens.get(key, lambda: self._fetch_token(endpoint, key))

    async def describe(self, host: str) -> str:
        """Which credentials ``host`` would get and from where; never a secret."""
        creds, source = await self.credentials.resolve(host)
        return f"{creds.describe()} ({source})" if creds else "anonymous (no credentials found)"

    def check_clear_text(self, url: URL, host: str) -> None:
        """Refuse to send credentials to ``url`` over plain HTTP unless it is loopback."""
        if url.scheme == "http" and not self._insecure and not is_loopback_host(host):
            raise InsecureCredentials(
                f"refusing to send credentials over plain HTTP to {url.origin()} "
                "(use HTTPS, or -k/insecure=True to allow it)"
            )

    async def _fetch_token(self, endpoint: Endpoint, key: TokenKey) -> Token:
        """A token from the realm: the OAuth2 refresh-token grant for an identity token
        (``GET`` when the realm answers that ``POST`` with 404 or 405), else ``GET`` with Basic
        credentials when there are any, anonymous otherwise."""
        self._transport.meter.token()
        realm, service, scope = key
        creds, source = await self.credentials.resolve(endpoint.host, scope_repository(scope))
        resp: Response | None = None
        refused: tuple[int, ...] = (401, 403)
        if creds is not None and creds.identity_token and realm not in self._realms_without_oauth:
            resp = await self._oauth_token(URL(realm), service, scope, creds.identity_token)
            refused = (400, 401, 403)  # OAuth2 answers a bad refresh token 400 invalid_grant
            if resp.status in (404, 405):
                # No OAuth2 here (Harbor answers 405): docker's GET flow, now and from now on.
                self._realms_without_oauth.add(realm)
                resp, refused = None, (401, 403)
        if resp is None:
            url = URL(realm)
            query = dict(url.query)
            if service:
                query["service"] = service
            query["scope"] = scope
            url = url.with_query(query)
            headers: dict[str, str] = {}
            if creds is not None and creds.has_password:
                self.check_clear_text(url, url.host or "")
                headers["Authorization"] = creds.basic_header()
            resp = await self._transport.send(
                "GET", url, headers=headers, max_body=TOKEN_LIMIT, kind="token"
            )
        if resp.status in refused:
            who = f"{creds.describe()} ({source})" if creds else f"anonymous requests {LOG_IN}"
            error = error_for_response(resp, what=f"token server refused {who} for {scope}")
            if resp.status == 400:
                error = Unauthorized(
                    str(error), status=400, method=resp.method, url=redact_url(resp.url)
                )
            raise error
        if resp.status >= 400:
            raise error_for_response(resp, what=f"token request for {scope}")
        return parse_token_response(
            resp.body, scope=scope, now=self.tokens.clock(), realm=redact_url(realm)
        )

    async def _oauth_token(
        self, realm: URL, service: str, scope: str, refresh_token: str
    ) -> Response:
        """``POST`` the refresh-token grant (docs/spec/auth/oauth.md) to the realm."""
        self.check_clear_text(realm, realm.host or "")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": service,
            "client_id": OAUTH_CLIENT_ID,
            "scope": scope,  # several scopes would be joined by spaces
        }
        return await self._transport.send(
            "POST", realm, data=form, max_body=TOKEN_LIMIT, kind="token"
        )


def pick_challenge(resp: Response, host: str, *, required: bool = True) -> Challenge | None:
    """The challenge of a 401 that we answer: Bearer before Basic; a Bearer realm checked.

    None when there is none we can use and ``required`` is false; `AuthenticationError`
    when it is true.
    """
    challenges = parse_www_authenticate(resp.headers.getall("WWW-Authenticate", []))
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme != scheme:
                continue
            if scheme == "bearer":
                _check_realm(challenge, host)
            return challenge
    if required:
        offered = ", ".join(c.scheme for c in challenges) or "no challenge"
        raise AuthenticationError(
            f"registry {host} answered 401 with {offered}; only Bearer and Basic are supported"
        )
    return None


def _check_realm(challenge: Challenge, host: str) -> None:
    realm = challenge.realm
    try:
        url = URL(realm) if realm else None
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise AuthenticationError(f"registry {host} named an unusable token realm {realm!r}")


def _token_key(challenge: Challenge | None, scope: str) -> TokenKey:
    realm = challenge.realm if challenge and challenge.realm else ""
    return (realm, (challenge.service or "") if challenge else "", scope)
