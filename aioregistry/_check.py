"""What a registry makes of our credentials: a pull token, and ``auth check``."""

from __future__ import annotations

from ._auth import Token
from ._exceptions import AuthenticationError, Unauthorized
from ._references import Repository
from ._responses import redact_url
from ._scopes import CATALOG_SCOPE, RepoType
from ._session import PING_LIMIT, Sessions

__all__ = ["describe_credentials", "get_token", "verify_credentials"]


async def get_token(sessions: Sessions, repo: Repository, repo_type: RepoType) -> Token:
    """A pull token for ``repo`` (cached), as the registry's token server issued it."""
    session, scope = await sessions.pull(repo, repo_type)
    challenge = session.endpoint.challenge
    if challenge is None or challenge.scheme != "bearer":
        how = challenge.scheme if challenge else "no authentication"
        raise AuthenticationError(
            f"registry {repo.registry} does not use bearer tokens (it uses {how})"
        )
    return await sessions.auth.token(session.endpoint, challenge, scope)


async def describe_credentials(sessions: Sessions, host: str) -> str:
    """Which credentials ``host`` would get and from where; never a secret."""
    return await sessions.auth.describe(host)


async def verify_credentials(sessions: Sessions, host: str) -> str:
    """Proof that ``host`` accepts its credentials (or raise `Unauthorized`).

    A bearer registry: a token for the catalog scope is fetched and ``/v2/`` is asked with
    it; a token server grants an empty access list for a scope it will not give, so this
    checks the credentials without naming any repository. A Basic registry: ``/v2/`` with
    the credentials.
    """
    session = await sessions.get(host)
    challenge = session.endpoint.challenge
    if challenge is None:
        return f"accepted: {host} asks for no authentication"
    ping = session.url("/v2/")
    if challenge.scheme == "bearer":
        await session.request(
            CATALOG_SCOPE, "GET", ping, max_body=PING_LIMIT, what=host, kind="ping"
        )
        realm = redact_url(challenge.realm or "")
        return f"accepted: {realm} issued a token that {host} takes"
    creds, source = await sessions.auth.credentials.resolve(host)
    if creds is None or not creds.has_password:
        who = f"{creds.describe()} ({source})" if creds else "anonymous"
        raise Unauthorized(
            f"{host} asks for Basic credentials and none usable were found [{who}]",
            status=401,
            method="GET",
            url=str(ping),
        )
    await session.request("", "GET", ping, max_body=PING_LIMIT, what=host, kind="ping")
    return f"accepted: {host} takes the Basic credentials"
