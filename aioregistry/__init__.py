"""aioregistry: a fast, correct async client for Docker Registry HTTP API V2 / OCI registries.

async with aioregistry.RegistryClient() as client:
    digest = await client.get_digest("ubuntu:24.04")
"""

from ._auth import Token, TokenCache
from ._client import ClientStats, RegistryClient
from ._config import Limits, Retries, Timeouts
from ._credentials import Credentials
from ._exceptions import (
    AuthenticationError,
    ConnectError,
    CredentialsError,
    DigestMismatch,
    ErrorDetail,
    Forbidden,
    InsecureCredentials,
    InvalidContent,
    InvalidPlatform,
    InvalidReference,
    NoMatchingPlatform,
    NotFound,
    ProtocolError,
    RegistryError,
    RequestTimeout,
    ResponseError,
    TLSError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
    UsageError,
)
from ._models import (
    DEFAULT_PLATFORM,
    ConfigBlob,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
)
from ._ratelimit import RateLimit, parse_rate_limit
from ._references import Reference, Repository, parse_reference, parse_repository
from ._scan import Scan
from ._scan_results import Resolve, ScanError, ScanResult, ScanStats, What
from ._scopes import RepoType
from ._version import __version__

__all__ = [
    "DEFAULT_PLATFORM",
    "AuthenticationError",
    "ClientStats",
    "ConfigBlob",
    "ConnectError",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "DigestMismatch",
    "ErrorDetail",
    "Forbidden",
    "ImageIndex",
    "ImageManifest",
    "InsecureCredentials",
    "InvalidContent",
    "InvalidPlatform",
    "InvalidReference",
    "Limits",
    "NoMatchingPlatform",
    "NotFound",
    "Platform",
    "ProtocolError",
    "RateLimit",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RepoType",
    "Repository",
    "RequestTimeout",
    "Resolve",
    "ResponseError",
    "Retries",
    "Scan",
    "ScanError",
    "ScanResult",
    "ScanStats",
    "TLSError",
    "Timeouts",
    "Token",
    "TokenCache",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "UsageError",
    "What",
    "__version__",
    "parse_rate_limit",
    "parse_reference",
    "parse_repository",
]
