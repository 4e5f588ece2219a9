"""Throw-away PKI for the test registries.

One self-signed CA signs two leaf certificates:

* a TLS server certificate valid for ``127.0.0.1``, ``127.0.0.2``, ``::1`` and ``localhost``
  (the ``basic`` registry serves HTTPS with it);
* a token-signing certificate for an EC P-256 key (the token issuer puts it in the JWT ``x5c``
  header; the ``token`` registry trusts it through ``rootcertbundle`` = the CA file).

The extensions are chosen so that both Go's ``crypto/x509`` (distribution) and Python's
``ssl`` module, including ``VERIFY_X509_STRICT``, accept the chains.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SERVER_DNS_NAMES",
    "SERVER_IP_ADDRESSES",
    "CertBundle",
    "make_certs",
    "make_server_cert",
]

SERVER_IP_ADDRESSES: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "::1")
SERVER_DNS_NAMES: tuple[str, ...] = ("localhost",)

_VALIDITY = datetime.timedelta(days=30)
_BACKDATE = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertBundle:
    """PEM files written by :func:`make_certs`, and the key/certificate objects behind them."""

    directory: Path
    ca_file: Path
    ca_key_file: Path
    server_cert_file: Path
    server_key_file: Path
    token_cert_file: Path
    token_key_file: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    server_cert: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey
    token_cert: x509.Certificate
    token_key: ec.EllipticCurvePrivateKey

    @property
    def token_cert_der(self) -> bytes:
        """DER of the token-signing certificate, as it goes (base64) into the JWT ``x5c``."""
        return self.token_cert.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aioregistry tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _leaf_builder(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_certs(directory: Path) -> CertBundle:
    """Create a CA, a server certificate and a token-signing certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("aioregistry test CA"))
        .issuer_name(_name("aioregistry test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_DNS_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IP_ADDRESSES]
    server_cert = (
        _leaf_builder("127.0.0.1", server_key, ca_cert, ca_key, now)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    # No ExtendedKeyUsage on the token certificate: Go's x509.Verify, called by distribution
    # with no KeyUsages, demands serverAuth when the extension is present; absent means "any".
    token_key = ec.generate_private_key(ec.SECP256R1())
    token_cert = _leaf_builder(
        "aioregistry test token signer", token_key, ca_cert, ca_key, now
    ).sign(ca_key, hashes.SHA256())

    bundle = CertBundle(
        directory=directory,
        ca_file=directory / "ca.pem",
        ca_key_file=directory / "ca-key.pem",
        server_cert_file=directory / "server.pem",
        server_key_file=directory / "server-key.pem",
        token_cert_file=directory / "token.pem",
        token_key_file=directory / "token-key.pem",
        ca_cert=ca_cert,
        ca_key=ca_key,
        server_cert=server_cert,
        server_key=server_key,
        token_cert=token_cert,
        token_key=token_key,
    )
    _write_cert(bundle.ca_file, ca_cert)
    _write_key(bundle.ca_key_file, ca_key)
    _write_cert(bundle.server_cert_file, server_cert)
    _write_key(bundle.server_key_file, server_key)
    _write_cert(bundle.token_cert_file, token_cert)
    _write_key(bundle.token_key_file, token_key)
    return bundle


def make_server_cert(
    bundle: CertBundle,
    directory: Path,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
) -> tuple[Path, Path]:
    """A TLS server certificate signed by ``bundle``'s CA for other names (e.g. ``ghcr.io``).

    For simulated public registries: a client that trusts ``bundle.ca_file`` and resolves
    those names to loopback verifies them as it would the real hosts. Returns the
    (certificate, key) PEM paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        _leaf_builder(dns_names[0], key, bundle.ca_cert, bundle.ca_key, now)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(bundle.ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server-key.pem"
    _write_cert(cert_file, cert)
    _write_key(key_file, key)
    return cert_file, key_file
