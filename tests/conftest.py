"""Shared fixtures: real registries (started lazily, once per session) filled with known content.

* ``registry_http``: anonymous, plain HTTP.
* ``registry_basic``: htpasswd Basic auth over TLS (trust ``registry_basic.ca_file``).
* ``registry_token``: docker token auth over plain HTTP; ``token_issuer`` is its issuer.
* ``fresh_issuer``: ``token_issuer`` with records and knobs reset before and after the test.
* ``registry_many``: token auth, a process and issuer of its own, with 1,000 tags over 250
  distinct images in ``test/many`` (for scans); ``many_issuer`` is its issuer, reset.
* ``registry_referrers``: anonymous, plain HTTP, a process of its own holding
  ``support.referrers``' artifacts, fallback indexes and cosign tags: ``(registry, content)``.
* ``registry_audit``: likewise, holding ``support.audit``'s images of known dates, sizes,
  platforms and referrers: ``(registry, content)``.

Every test runs with HOME, DOCKER_CONFIG, XDG_RUNTIME_DIR and XDG_CACHE_HOME in ``temp_home``
and without REGISTRY_AUTH_FILE, DOCKER_USER or DOCKER_PASSWORD (``no_personal_credentials``,
autouse): the CLI's default cache is then the test's own, empty at the start of each test.

Each registry has ``.content`` (a ``support.content.Content``) describing what was pushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audit import AuditContent, push_audit
from support.certs import CertBundle, make_certs, make_server_cert
from support.fakeregistry import SIMULATED_HOSTS
from support.referrers import ReferrersContent, push_referrers
from support.registry import Mode, RegistryProcess
from support.tokens import TokenIssuer


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def temp_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The empty home every test runs in: HOME is this directory, DOCKER_CONFIG its ``.docker``
    and XDG_RUNTIME_DIR its ``run`` (neither is created: a test that writes there makes it)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def no_personal_credentials(temp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own docker/containers logins and DOCKER_USER out of every test
    (a test that wants credentials sets them up itself, in ``temp_home``)."""
    monkeypatch.setenv("HOME", str(temp_home))
    monkeypatch.setenv("DOCKER_CONFIG", str(temp_home / ".docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(temp_home / "run"))
    # The CLI's default cache (platformdirs: $XDG_CACHE_HOME/aioregistry), never the real one
    monkeypatch.setenv("XDG_CACHE_HOME", str(temp_home / ".cache"))
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_USER", "DOCKER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def registry_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def registry_certs(registry_workdir: Path) -> CertBundle:
    """One CA for the session: it signs the TLS server and the token-signing certificates."""
    return make_certs(registry_workdir / "certs")


def _registry(mode: Mode, workdir: Path, certs: CertBundle | None) -> Iterator[RegistryProcess]:
    with RegistryProcess(mode, workdir / mode, certs=certs) as registry:
        registry.push_content()
        yield registry


@pytest.fixture(scope="session")
def sim_cert(
    registry_certs: CertBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A TLS certificate for the simulated public registries' names (support.fakeregistry)."""
    return make_server_cert(registry_certs, tmp_path_factory.mktemp("sim"), SIMULATED_HOSTS)


@pytest.fixture(scope="session")
def registry_http(registry_workdir: Path) -> Iterator[RegistryProcess]:
    yield from _registry("http", registry_workdir, None)


@pytest.fixture(scope="session")
def registry_basic(registry_workdir: Path, registry_certs: CertBundle) -> Iterator[RegistryProcess]:
    yield from _registry("basic", registry_workdir, registry_certs)


@pytest.fixture(scope="session")
def registry_token(registry_workdir: Path, registry_certs: CertBundle) -> Iterator[RegistryProcess]:
    yield from _registry("token", registry_workdir, registry_certs)


@pytest.fixture(scope="session")
def token_issuer(registry_token: RegistryProcess) -> TokenIssuer:
    assert registry_token.issuer is not None
    return registry_token.issuer


@pytest.fixture
def fresh_issuer(token_issuer: TokenIssuer) -> Iterator[TokenIssuer]:
    token_issuer.reset()
    yield token_issuer
    token_issuer.reset()


@pytest.fixture(scope="session")
def registry_many(registry_workdir: Path, registry_certs: CertBundle) -> Iterator[RegistryProcess]:
    # No issuer given: in token mode the registry starts (and later stops) one of its own.
    with RegistryProcess("token", registry_workdir / "many", certs=registry_certs) as registry:
        registry.push_content(many_tags=1000, distinct=250)
        yield registry


@pytest.fixture
def many_issuer(registry_many: RegistryProcess) -> Iterator[TokenIssuer]:
    issuer = registry_many.issuer
    assert issuer is not None
    issuer.reset()
    yield issuer
    issuer.reset()


@pytest.fixture(scope="session")
def registry_referrers(
    registry_workdir: Path,
) -> Iterator[tuple[RegistryProcess, ReferrersContent]]:
    # A process of its own: the shared registries' catalogs stay what their content says.
    with RegistryProcess("http", registry_workdir / "referrers") as registry:
        yield registry, push_referrers(registry)


@pytest.fixture(scope="session")
def registry_audit(registry_workdir: Path) -> Iterator[tuple[RegistryProcess, AuditContent]]:
    with RegistryProcess("http", registry_workdir / "audit") as registry:
        yield registry, push_audit(registry)
