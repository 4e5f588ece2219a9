"""aioregistry: a fast, correct async client for Docker Registry HTTP API V2 / OCI registries.

async with aioregistry.RegistryClient() as client:
    digest = await client.get_digest("ubuntu:24.04")
"""

# The public names are imported on first use (PEP 562), not here: ``import aioregistry``, and
# so every ``aioregistry`` command line (``--help`` included), costs no aiohttp until a name
# that needs it is asked for. Type checkers see ordinary imports.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._artifacts import Referrer, ReferrerKind, ReferrerSource, referrer_kind
    from ._audit import Audit
    from ._audit_rows import AuditRow
    from ._audit_summary import AuditSummary
    from ._auth import Token, TokenCache
    from ._client import ClientStats, RegistryClient
    from ._config import Limits, Retries, Timeouts
    from ._credentials import Credentials
    from ._exceptions import (
        AuthenticationError,
        CacheError,
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
    from ._store import CacheInfo, ContentStore

# Where each public name lives (its module's own __all__ has it too).
_HOMES = {
    "_artifacts": ("Referrer", "ReferrerKind", "ReferrerSource", "referrer_kind"),
    "_audit": ("Audit",),
    "_audit_rows": ("AuditRow",),
    "_audit_summary": ("AuditSummary",),
    "_auth": ("Token", "TokenCache"),
    "_client": ("ClientStats", "RegistryClient"),
    "_config": ("Limits", "Retries", "Timeouts"),
    "_credentials": ("Credentials",),
    "_exceptions": (
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
    ),
    "_models": (
        "DEFAULT_PLATFORM",
        "ConfigBlob",
        "Descriptor",
        "ImageIndex",
        "ImageManifest",
        "Platform",
    ),
    "_ratelimit": ("RateLimit", "parse_rate_limit"),
    "_references": ("Reference", "Repository", "parse_reference", "parse_repository"),
    "_scan": ("Scan",),
    "_scan_results": ("Resolve", "ScanError", "ScanResult", "ScanStats", "What"),
    "_scopes": ("RepoType",),
    "_store": ("CacheInfo", "ContentStore"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "DEFAULT_PLATFORM",
    "Audit",
    "AuditRow",
    "AuditSummary",
    "AuthenticationError",
    "CacheError",
    "CacheInfo",
    "ClientStats",
    "ConfigBlob",
    "ConnectError",
    "ContentStore",
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
    "Referrer",
    "ReferrerKind",
    "ReferrerSource",
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
    "referrer_kind",
]


if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name stays an error there

    def __getattr__(name: str) -> object:
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # the next lookup is an ordinary one
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
