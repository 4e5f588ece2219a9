"""The credential model: who the client says it is to a registry or a token server."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

__all__ = ["Credentials", "CredentialsLike", "as_credentials"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, and/or an identity (OAuth2 refresh) token.

    With ``identity_token`` a token server is asked with the OAuth2 ``refresh_token`` grant
    (docker's ``identitytoken``, ACR's refresh tokens); otherwise with Basic. Neither the
    password nor the identity token ever appears in a repr.
    """

    username: str
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def has_password(self) -> bool:
        """Whether Basic credentials can be built (a password, not only a token)."""
        return bool(self.password)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def describe(self) -> str:
        """Who these credentials say we are, for messages: never a secret."""
        if self.username and self.identity_token:
            return f"{self.username!r} with an identity token"
        if self.username:
            return repr(self.username)
        return "an identity token" if self.identity_token else "no user name"


CredentialsLike = Credentials | tuple[str, str]


def as_credentials(given: CredentialsLike) -> Credentials:
    """``given`` itself, or a ``(username, password)`` pair as `Credentials`."""
    return given if isinstance(given, Credentials) else Credentials(*given)
