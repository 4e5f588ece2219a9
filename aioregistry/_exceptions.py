"""The one error hierarchy of aioregistry.

Every error the library raises on purpose derives from `RegistryError`; aiohttp, ssl and
OS errors are translated into it in exactly one place (`_transport.Transport.send`).

    RegistryError
    ├── UsageError                  the caller asked for something malformed (also ValueError)
    │   ├── InvalidReference        an image reference or repository name that breaks the grammar
    │   ├── InvalidPlatform         a platform that is not os/arch[/variant]
    │   └── InsecureCredentials     credentials would travel in clear text to a remote host
    ├── CredentialsError            this machine's credential store failed: a broken docker or
    │                               containers config file, a helper missing, hanging or failing
    ├── CacheError                  the cache directory cannot be used: others may read or write
    │                               it, another user owns it, it cannot be made
    ├── TransportError              the request did not get an HTTP answer
    │   ├── ConnectError            refused, unreachable, name resolution failed
    │   ├── TLSError                certificate not trusted, hostname mismatch, not TLS
    │   └── RequestTimeout          connect or read deadline passed (how long, how many tries)
    ├── ResponseError               the registry answered with an error status
    │   ├── Unauthorized            401 after authenticating (wrong or missing credentials)
    │   ├── Forbidden               403
    │   ├── NotFound                404 (unknown repository, tag, manifest or blob)
    │   └── TooManyRequests         429
    └── ProtocolError               the answer was not what the protocol promises
        ├── DigestMismatch          content does not hash to the digest it was fetched by
        ├── UnsupportedMediaType    schema 1 or another type we cannot read
        ├── InvalidContent          malformed JSON or a body that breaks its schema or size
        ├── AuthenticationError     a challenge or token answer we cannot use
        └── NoMatchingPlatform      no entry of an index matches the requested platform
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationError",
    "CacheError",
    "ConnectError",
    "CredentialsError",
    "DigestMismatch",
    "ErrorDetail",
    "Forbidden",
    "InsecureCredentials",
    "InvalidContent",
    "InvalidPlatform",
    "InvalidReference",
    "NoMatchingPlatform",
    "NotFound",
    "ProtocolError",
    "RegistryError",
    "RequestTimeout",
    "ResponseError",
    "TLSError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "UsageError",
]


class RegistryError(Exception):
    """Base of every error aioregistry raises on purpose."""


class UsageError(RegistryError, ValueError):
    """The caller asked for something malformed; retrying cannot help."""


class InvalidReference(UsageError):
    """An image reference or repository name does not follow the distribution grammar."""


class InvalidPlatform(UsageError):
    """A platform string is not ``os/arch[/variant]``."""


class InsecureCredentials(UsageError):
    """Credentials would be sent in clear text to a host that is not loopback."""


class CredentialsError(RegistryError):
    """A credentials file is broken, or a credential helper is missing, hangs or fails.

    Not a usage error: the command was right, the machine's credential store is not. The
    message names the file or the helper, never a secret.
    """


class CacheError(RegistryError):
    """The cache directory cannot be used: it is not private to this user (others may read
    or write it: it holds image configs, which may carry secrets), or it cannot be made.
    The message names the directory and what is wrong with it."""


class TransportError(RegistryError):
    """No HTTP answer arrived: connection, TLS or timeout trouble."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """The connection could not be made or was lost (``retryable`` when it was lost)."""

    def __init__(self, message: str, *, url: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, url=url)
        self.retryable = retryable


class TLSError(TransportError):
    """The TLS handshake failed: an untrusted certificate, a wrong host name, or no TLS at all."""


class RequestTimeout(TransportError):
    """A connect or read deadline passed, on every try.

    ``timeout`` is the deadline that passed (seconds, per try: `Timeouts`), None when
    unknown; ``tries`` how many tries were made. The message says both: ``GET URL timed out
    after 7 s (4 tries)``.
    """

    def __init__(
        self, message: str, *, url: str | None = None, timeout: float | None = None, tries: int = 1
    ) -> None:
        super().__init__(message, url=url)
        self.timeout = timeout
        self.tries = tries


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a registry's ``{"errors": [...]}`` body."""

    code: str
    message: str
    detail: object = None


class ResponseError(RegistryError):
    """The registry answered with an error status.

    ``errors`` holds the parsed OCI error entries; ``body`` the first bytes of any other body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        errors: tuple[ErrorDetail, ...] = (),
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.errors = errors
        self.body = body
        self.headers = headers or {}

    @property
    def codes(self) -> tuple[str, ...]:
        """The OCI error codes of the answer, e.g. ``("MANIFEST_UNKNOWN",)``."""
        return tuple(e.code for e in self.errors)


class Unauthorized(ResponseError):
    """401: the registry refused our credentials (or the lack of them)."""


class Forbidden(ResponseError):
    """403: authenticated, but not allowed."""


class NotFound(ResponseError):
    """404: unknown repository, tag, manifest or blob."""


class TooManyRequests(ResponseError):
    """429: rate limited; ``retry_after`` is the server's wait in seconds when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        errors: tuple[ErrorDetail, ...] = (),
        body: str = "",
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status=status,
            method=method,
            url=url,
            errors=errors,
            body=body,
            headers=headers,
        )
        self.retry_after = retry_after


class ProtocolError(RegistryError):
    """The answer breaks the protocol: what came back cannot be trusted or read."""


class DigestMismatch(ProtocolError):
    """Content does not hash to the digest it was requested or described by."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class UnsupportedMediaType(ProtocolError):
    """The registry sent a media type we cannot read (e.g. Docker schema 1)."""

    def __init__(self, message: str, *, media_type: str) -> None:
        super().__init__(message)
        self.media_type = media_type


class InvalidContent(ProtocolError):
    """A body is malformed JSON, breaks its schema, or is larger than allowed."""


class AuthenticationError(ProtocolError):
    """A challenge or a token answer we cannot use (no realm, no token, a bad realm URL)."""


class NoMatchingPlatform(ProtocolError):
    """No usable entry of an index matches the requested platform."""

    def __init__(self, message: str, *, platform: str, available: tuple[str, ...]) -> None:
        super().__init__(message)
        self.platform = platform
        self.available = available
