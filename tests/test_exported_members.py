"""The public surface is deliberate: this fails when it drifts."""

from __future__ import annotations

import aioregistry

EXPECTED = {
    "AuthenticationError", "ClientStats", "ConfigBlob", "ConnectError", "Credentials",
    "CredentialsError",
    "DEFAULT_PLATFORM", "Descriptor", "DigestMismatch", "ErrorDetail", "Forbidden", "ImageIndex",
    "ImageManifest", "InsecureCredentials", "InvalidContent", "InvalidPlatform",
    "InvalidReference", "Limits", "NoMatchingPlatform", "NotFound", "Platform", "ProtocolError",
    "RateLimit", "Reference", "RegistryClient", "RegistryError", "RepoType", "Repository",
    "RequestTimeout", "Resolve", "ResponseError", "Retries", "Scan", "ScanError", "ScanResult",
    "ScanStats", "TLSError", "Timeouts", "Token", "TokenCache", "TooManyRequests",
    "TransportError", "Unauthorized", "UnsupportedMediaType", "UsageError", "What",
    "__version__", "parse_rate_limit", "parse_reference", "parse_repository",
}  # fmt: skip


def test_all_is_the_expected_public_surface():
    assert set(aioregistry.__all__) == EXPECTED


def test_every_exported_name_exists_and_claims_the_package():
    for name in aioregistry.__all__:
        member = getattr(aioregistry, name)
        module = getattr(member, "__module__", None)
        if module is not None and isinstance(member, type):
            # Public names live in private modules; none leaks from a third-party package.
            assert module.startswith("aioregistry."), (name, module)


def test_every_error_derives_from_registry_error():
    for name in aioregistry.__all__:
        member = getattr(aioregistry, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, aioregistry.RegistryError), name
