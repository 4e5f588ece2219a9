"""Credential sources as people have them: docker's config.json (auths, credHelpers, credsStore),
containers' auth.json, the environment and explicit credentials, in that order of precedence.

Every test runs in conftest's temporary home (``temp_home``: HOME, with DOCKER_CONFIG and
XDG_RUNTIME_DIR in it, and no REGISTRY_AUTH_FILE, DOCKER_USER or DOCKER_PASSWORD) and puts fake
``docker-credential-*`` helpers first on PATH; the fakes record each call (argv and stdin) in a
JSON-lines file. The happy paths read ``private/secret`` from the real token-auth registry,
which the issuer grants to ``alice`` and never anonymously.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from aioregistry import Credentials, CredentialsError, RegistryClient, Unauthorized
from aioregistry._config_files import (
    DOCKER_HUB_KEY,
    ConfigFiles,
    containers_auth_paths,
    docker_config_path,
)
from aioregistry._credential_source import CredentialSource
from aioregistry._references import registry_key

pytestmark = pytest.mark.anyio

PASSWORD = "wonderland"
SECRET_REF = "private/secret:v1"


# -- a temporary home and fake helpers -------------------------------------------------------


class Home:
    """conftest's ``temp_home``: where HOME, DOCKER_CONFIG and XDG_RUNTIME_DIR point (the last
    two made here), so where the config files go; and the fake helpers' directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = Path(os.environ["HOME"])
        self.docker = Path(os.environ["DOCKER_CONFIG"])
        self.runtime = Path(os.environ["XDG_RUNTIME_DIR"])
        self.bin = root / "bin"
        self.calls = root / "helper-calls.jsonl"
        for directory in (self.docker, self.runtime, self.bin):
            directory.mkdir()

    def docker_config(self, config: object) -> Path:
        path = self.docker / "config.json"
        path.write_text(json.dumps(config))
        return path

    def containers_auth(self, config: object, where: str = "runtime") -> Path:
        base = self.runtime if where == "runtime" else self.home / ".config"
        path = base / "containers" / "auth.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config))
        return path

    def helper(self, name: str, store: dict[str, dict[str, str]], *, hang: bool = False) -> None:
        """A fake ``docker-credential-NAME``: answers ``get`` from ``store``, records calls."""
        script = self.bin / f"docker-credential-{name}"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys, time\n"
            f"STORE = {json.dumps(store)!r}\n"
            "url = sys.stdin.read().strip()\n"
            f"with open({str(self.calls)!r}, 'a') as log:\n"
            f"    log.write(json.dumps({{'helper': {name!r}, 'argv': sys.argv[1:], "
            "'url': url, 'pid': os.getpid()}) + '\\n')\n"
            f"if {hang!r}:\n"
            "    time.sleep(60)\n"
            "entry = json.loads(STORE).get(url)\n"
            "if entry is None:\n"
            "    print('credentials not found in native keychain')\n"
            "    sys.exit(1)\n"
            "print(json.dumps(dict(entry, ServerURL=url)))\n"
        )
        script.chmod(0o755)

    def helper_calls(self) -> list[dict[str, object]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


@pytest.fixture
def home(temp_home, monkeypatch):
    h = Home(temp_home)
    monkeypatch.setenv("PATH", f"{h.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return h


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def alice_auth(password: str = PASSWORD) -> dict[str, str]:
    return {"auth": b64(f"alice:{password}")}


async def read_secret(registry, **kwargs):
    async with RegistryClient(**kwargs) as client:
        return await client.get_manifest(f"{registry.host}/{SECRET_REF}")


# -- key matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "registry-1.docker.io"),
        ("index.docker.io", "registry-1.docker.io"),
        ("docker.io", "registry-1.docker.io"),
        ("registry-1.docker.io", "registry-1.docker.io"),
        ("http://docker.io", "registry-1.docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("https://Registry.Example.com:8443/some/path", "registry.example.com:8443"),
        ("registry.example.com/team/app", "registry.example.com"),
        ("  ghcr.io  ", "ghcr.io"),
    ],
)
def test_config_keys_name_registries_as_docker_reads_them(key, host):
    assert registry_key(key) == host


def test_docker_hub_keys_match_each_other(tmp_path):
    for key in ("https://index.docker.io/v1/", "docker.io", "index.docker.io"):
        (tmp_path / "config.json").write_text(json.dumps({"auths": {key: alice_auth()}}))
        files = ConfigFiles({"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)})
        for asked in ("docker.io", "registry-1.docker.io", "index.docker.io"):
            found = anyio.run(files.find, asked)
            assert found is not None, (key, asked)
            assert found.credentials == Credentials("alice", PASSWORD)
        assert anyio.run(files.find, "ghcr.io") is None
        assert anyio.run(files.find, "127.0.0.1:5000") is None


def test_host_with_port_does_not_match_the_bare_host(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://127.0.0.1:5000/v2/": alice_auth()}})
    )
    files = ConfigFiles({"DOCKER_CONFIG": str(tmp_path)})
    assert anyio.run(files.find, "127.0.0.1:5000") is not None
    assert anyio.run(files.find, "127.0.0.1") is None
    assert anyio.run(files.find, "127.0.0.1:5001") is None


def test_file_locations_follow_the_environment(tmp_path):
    env = {"HOME": "/h", "XDG_RUNTIME_DIR": "/run/user/7", "REGISTRY_AUTH_FILE": "/a/auth.json"}
    assert docker_config_path(env) == Path("/h/.docker/config.json")
    assert docker_config_path({**env, "DOCKER_CONFIG": "/d"}) == Path("/d/config.json")
    assert containers_auth_paths(env) == [
        Path("/a/auth.json"),
        Path("/run/user/7/containers/auth.json"),
        Path("/h/.config/containers/auth.json"),
    ]
    assert containers_auth_paths({"HOME": "/h"}) == [Path("/h/.config/containers/auth.json")]


# -- what an entry holds ---------------------------------------------------------------------


async def test_auths_entry_forms(home):
    home.docker_config(
        {
            "auths": {
                "a.example": alice_auth(),
                "b.example": {"username": "bob", "password": "pw-b"},
                "c.example": {"auth": b64("0000-guid:"), "identitytoken": "refresh-c"},
                "d.example": {},  # docker writes this beside a credsStore
                "e.example": {"username": "eve"},  # a name alone is no credential
            }
        }
    )
    files = ConfigFiles()
    found = await files.find("a.example")
    assert found is not None
    assert found.credentials == Credentials("alice", PASSWORD)
    assert found.source == f"docker config {home.docker / 'config.json'} (auths)"
    found = await files.find("b.example")
    assert found is not None
    assert found.credentials == Credentials("bob", "pw-b")
    found = await files.find("c.example")
    assert found is not None
    assert found.credentials == Credentials("0000-guid", "", identity_token="refresh-c")
    assert not found.credentials.has_password
    assert await files.find("d.example") is None
    assert await files.find("e.example") is None


def test_secrets_stay_out_of_reprs():
    creds = Credentials("alice", "hunter2", identity_token="refresh-xyz")
    assert "hunter2" not in repr(creds)
    assert "refresh-xyz" not in repr(creds)
    assert creds.describe() == "'alice' with an identity token"
    assert Credentials("alice", "hunter2").describe() == "'alice'"
    assert Credentials("", "", identity_token="t").describe() == "an identity token"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"is not valid JSON"),
        ("[]", r"does not hold a JSON object"),
        ('{"auths": []}', r"'auths' must be a JSON object"),
        ('{"auths": {"x.example": "s3cret-value"}}', r"auths\['x.example'\] is not a JSON object"),
        ('{"auths": {"x.example": {"auth": "s3cret-value!"}}}', r"auth is not base64"),
        ('{"auths": {"x.example": {"auth": "czNjcmV0LXZhbHVl"}}}', r"auth is not base64"),
        ('{"auths": {"x.example": {"password": 5}}}', r"password is not a string"),
        ('{"credHelpers": {"x.example": 1}}', r"'credHelpers' must map"),
        ('{"credsStore": ["a"]}', r"'credsStore' must be a helper name"),
    ],
)
async def test_broken_config_names_the_file_and_never_the_secret(home, content, message):
    path = home.docker / "config.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=message) as info:
        await ConfigFiles().find("x.example")
    assert str(path) in str(info.value)
    assert "s3cret-value" not in str(info.value)


async def test_broken_containers_file_names_the_file(home):
    path = home.containers_auth({"auths": {"x.example": {"auth": 1}}})
    with pytest.raises(CredentialsError, match=r"auth is not a string") as info:
        await ConfigFiles().find("x.example")
    assert str(path) in str(info.value)


async def test_unreadable_config_names_the_file(home):
    if os.geteuid() == 0:
        path = home.docker / "config.json"
        path.mkdir()  # root reads any file, but not a directory as one
    else:
        path = home.docker_config({})
        path.chmod(0)
    with pytest.raises(CredentialsError, match="cannot read credentials file") as info:
        await ConfigFiles().find("x.example")
    assert str(path) in str(info.value)


async def test_no_files_at_all_means_no_credentials(home):
    assert await ConfigFiles().find("registry-1.docker.io") is None


# -- containers' auth.json -------------------------------------------------------------------


async def test_containers_longest_key_wins(home):
    home.containers_auth(
        {
            "auths": {
                "reg.example": {"auth": b64("host-wide:pw1")},
                "reg.example/team": {"auth": b64("team:pw2")},
                "reg.example/team/app": {"auth": b64("app:pw3")},
                "reg.example/other": {"auth": b64("other:pw4")},
            }
        }
    )
    files = ConfigFiles()

    async def user(repository):
        found = await files.find("reg.example", repository)
        assert found is not None
        return found.credentials.username

    assert await user("team/app") == "app"
    assert await user("team/app/sub") == "app"
    assert await user("team/application") == "team"  # a path part, not a string prefix
    assert await user("team/x") == "team"
    assert await user("library/x") == "host-wide"
    assert await user(None) == "host-wide"


async def test_containers_files_in_order(home, monkeypatch):
    legacy = home.containers_auth({"auths": {"reg.example": {"auth": b64("legacy:1")}}}, "home")
    files = ConfigFiles()
    found = await files.find("reg.example")
    assert found is not None
    assert found.credentials.username == "legacy"
    assert found.source == f"containers auth file {legacy}"

    runtime = home.containers_auth({"auths": {"reg.example": {"auth": b64("runtime:1")}}})
    found = await ConfigFiles().find("reg.example")
    assert found is not None
    assert (found.credentials.username, found.source) == (
        "runtime",
        f"containers auth file {runtime}",
    )

    explicit = home.root / "explicit-auth.json"
    explicit.write_text(json.dumps({"auths": {"reg.example": {"auth": b64("explicit:1")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    found = await ConfigFiles().find("reg.example")
    assert found is not None
    assert found.credentials.username == "explicit"

    home.docker_config({"auths": {"reg.example": {"auth": b64("docker:1")}}})
    found = await ConfigFiles().find("reg.example")
    assert found is not None
    assert found.credentials.username == "docker"  # docker's config comes first


# -- helpers ---------------------------------------------------------------------------------


async def test_cred_helpers_beat_creds_store_and_auths(home):
    home.helper("per-registry", {"reg.example": {"Username": "from-helper", "Secret": "s1"}})
    home.helper("store", {"other.example": {"Username": "from-store", "Secret": "s2"}})
    path = home.docker_config(
        {
            "auths": {"reg.example": {"auth": b64("from-auths:x")}, "other.example": {}},
            "credHelpers": {"https://reg.example/v2/": "per-registry"},
            "credsStore": "store",
        }
    )
    files = ConfigFiles()
    found = await files.find("reg.example")
    assert found is not None
    assert found.credentials == Credentials("from-helper", "s1")
    assert found.source == f"docker config {path} (credHelpers per-registry)"
    found = await files.find("other.example")
    assert found is not None
    assert found.credentials == Credentials("from-store", "s2")
    assert found.source == f"docker config {path} (credsStore store)"
    assert [(c["helper"], c["argv"], c["url"]) for c in home.helper_calls()] == [
        ("per-registry", ["get"], "reg.example"),
        ("store", ["get"], "other.example"),
    ]


async def test_docker_hub_helper_gets_the_legacy_url(home):
    home.helper("store", {DOCKER_HUB_KEY: {"Username": "hubuser", "Secret": "s"}})
    home.docker_config({"auths": {DOCKER_HUB_KEY: {}}, "credsStore": "store"})
    found = await ConfigFiles().find("registry-1.docker.io")
    assert found is not None
    assert found.credentials == Credentials("hubuser", "s")
    assert home.helper_calls()[0]["url"] == DOCKER_HUB_KEY


async def test_helper_token_username_means_identity_token(home):
    home.helper("acr", {"reg.example": {"Username": "<token>", "Secret": "refresh-1"}})
    home.docker_config({"credHelpers": {"reg.example": "acr"}})
    found = await ConfigFiles().find("reg.example")
    assert found is not None
    assert found.credentials == Credentials("", "", identity_token="refresh-1")


async def test_helper_without_credentials_goes_on_to_the_next_source(home):
    home.helper("store", {})  # answers "credentials not found", exit 1
    home.docker_config({"auths": {"reg.example": {}}, "credsStore": "store"})
    files = ConfigFiles()
    assert await files.find("reg.example") is None
    auth_file = home.containers_auth({"auths": {"reg.example": {"auth": b64("podman:pw")}}})
    files = ConfigFiles()
    for _ in range(2):
        found = await files.find("reg.example")
        assert found is not None
        assert found.source == f"containers auth file {auth_file}"
    assert len(home.helper_calls()) == 2  # once per ConfigFiles: "not found" is cached too


async def test_helper_failure_names_the_helper(home):
    script = home.bin / "docker-credential-broken"
    script.write_text("#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n")
    script.chmod(0o755)
    home.docker_config({"credsStore": "broken"})
    with pytest.raises(CredentialsError, match=r"docker-credential-broken failed \(exit 3\)"):
        await ConfigFiles().find("reg.example")


async def test_helper_that_is_not_json(home):
    script = home.bin / "docker-credential-chatty"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    home.docker_config({"credsStore": "chatty"})
    with pytest.raises(CredentialsError, match=r"docker-credential-chatty answered .* not JSON"):
        await ConfigFiles().find("reg.example")


async def test_missing_helper_names_the_helper(home):
    path = home.docker_config({"credHelpers": {"reg.example": "nowhere"}})
    with pytest.raises(CredentialsError, match="docker-credential-nowhere not found on PATH") as e:
        await ConfigFiles().find("reg.example")
    assert f"credHelpers in {path}" in str(e.value)


async def test_hanging_helper_is_killed_at_the_deadline(home):
    home.helper("slow", {}, hang=True)
    home.docker_config({"credsStore": "slow"})
    files = ConfigFiles(helper_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CredentialsError, match=r"docker-credential-slow did not answer within"):
        await files.find("reg.example")
    assert time.monotonic() - started < 5
    [call] = home.helper_calls()
    pid = int(call["pid"])  # type: ignore[call-overload]
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left behind
        os.kill(pid, 0)


async def test_helper_answers_are_cached_and_shared(home):
    home.helper("store", {"reg.example": {"Username": "u", "Secret": "s"}})
    home.docker_config({"credsStore": "store"})
    clock = [0.0]
    files = ConfigFiles(cache_seconds=300, clock=lambda: clock[0])
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(files.find, "reg.example")
    assert files.helper_runs == 1
    clock[0] = 299.0
    await files.find("reg.example")
    assert files.helper_runs == 1
    clock[0] = 301.0  # past the bound: asked again (a new `docker login` is seen)
    await files.find("reg.example")
    assert files.helper_runs == 2
    assert len(home.helper_calls()) == 2


# -- precedence ------------------------------------------------------------------------------


async def test_source_order(home, monkeypatch):
    home.containers_auth({"auths": {"reg.example": {"auth": b64("podman:1")}}})

    async def who(**kwargs):
        creds, source = await CredentialSource(use_config_files=True, **kwargs).resolve(
            "reg.example"
        )
        return (creds.username if creds else None), source.split(" /")[0]

    assert await who() == ("podman", "containers auth file")
    home.docker_config({"auths": {"reg.example": {"auth": b64("docker:1")}}})
    assert await who() == ("docker", "docker config")
    monkeypatch.setenv("DOCKER_USER", "envuser")
    monkeypatch.setenv("DOCKER_PASSWORD", "envpw")
    assert await who() == ("envuser", "DOCKER_USER/DOCKER_PASSWORD")
    assert await who(explicit={"reg.example": ("given", "pw")}) == (
        "given",
        "explicit credentials",
    )
    assert await who(explicit=Credentials("any", "pw")) == ("any", "explicit credentials")
    assert await who(use_env=False) == ("docker", "docker config")
    monkeypatch.delenv("DOCKER_USER")
    none = CredentialSource(use_config_files=False)
    assert await none.resolve("reg.example") == (None, "anonymous")


# -- against the real registry ---------------------------------------------------------------


async def test_private_repository_denied_without_credentials(home, registry_token, fresh_issuer):
    with pytest.raises(Unauthorized, match="anonymously"):
        await read_secret(registry_token)
    assert all(record.account is None for record in fresh_issuer.issued)


async def test_private_repository_with_docker_auths(home, registry_token, fresh_issuer):
    home.docker_config({"auths": {f"http://{registry_token.host}/v2/": alice_auth()}})
    manifest = await read_secret(registry_token)
    assert manifest.raw == registry_token.content.get(SECRET_REF).raw
    assert fresh_issuer.issued[-1].account == "alice"


async def test_config_files_can_be_switched_off(home, registry_token, fresh_issuer):
    home.docker_config({"auths": {registry_token.host: alice_auth()}})
    with pytest.raises(Unauthorized, match="anonymously"):
        await read_secret(registry_token, use_config_files=False)


async def test_private_repository_with_creds_store_one_helper_run(
    home, registry_token, fresh_issuer
):
    home.helper("fake", {registry_token.host: {"Username": "alice", "Secret": PASSWORD}})
    home.docker_config({"auths": {registry_token.host: {}}, "credsStore": "fake"})
    pushed = registry_token.content.get(SECRET_REF)
    async with RegistryClient() as client:
        results = []

        async def fetch():
            results.append(await client.get_manifest(f"{registry_token.host}/{SECRET_REF}"))

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(fetch)
        tags = await client.list_tags(f"{registry_token.host}/private/secret")
    assert [m.raw for m in results] == [pushed.raw] * 30
    assert "v1" in tags
    assert len(home.helper_calls()) == 1
    assert {record.account for record in fresh_issuer.issued} == {"alice"}


async def test_private_repository_with_cred_helper(home, registry_token, fresh_issuer):
    home.helper("per-host", {registry_token.host: {"Username": "alice", "Secret": PASSWORD}})
    home.docker_config({"credHelpers": {registry_token.host: "per-host"}})
    manifest = await read_secret(registry_token)
    assert manifest.digest == registry_token.content.get(SECRET_REF).digest
    assert fresh_issuer.issued[-1].account == "alice"


@pytest.mark.parametrize("where", ["runtime", "home", "REGISTRY_AUTH_FILE"])
async def test_private_repository_with_containers_auth(
    home, registry_token, fresh_issuer, monkeypatch, where
):
    entry = {f"{registry_token.host}/private": alice_auth()}
    if where == "REGISTRY_AUTH_FILE":
        path = home.root / "auth.json"
        path.write_text(json.dumps({"auths": entry}))
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    else:
        home.containers_auth({"auths": entry}, where)
    manifest = await read_secret(registry_token)
    assert manifest.digest == registry_token.content.get(SECRET_REF).digest
    assert fresh_issuer.issued[-1].account == "alice"


async def test_basic_registry_with_docker_config(home, registry_basic):
    home.helper("fake", {registry_basic.host: {"Username": "alice", "Secret": PASSWORD}})
    home.docker_config({"credHelpers": {registry_basic.host: "fake"}})
    ref = f"{registry_basic.host}/{SECRET_REF}"
    async with RegistryClient(ca_file=str(registry_basic.ca_file)) as client:
        digests = {await client.get_digest(ref) for _ in range(5)}
    assert digests == {registry_basic.content.get(SECRET_REF).digest}
    assert len(home.helper_calls()) == 1
    home.docker_config({})
    async with RegistryClient(ca_file=str(registry_basic.ca_file)) as client:
        with pytest.raises(Unauthorized, match="anonymously"):
            await client.get_digest(ref)


async def test_wrong_password_in_docker_config_is_named_in_the_error(
    home, registry_token, fresh_issuer
):
    path = home.docker_config({"auths": {registry_token.host: alice_auth("bad-secret-pw")}})
    with pytest.raises(Unauthorized) as info:
        await read_secret(registry_token)
    message = str(info.value)
    assert f"'alice' (docker config {path} (auths))" in message
    assert "bad-secret-pw" not in message
    assert fresh_issuer.failed == 1


async def test_unauthorized_message_names_the_helper_source(home, registry_token, fresh_issuer):
    # An identity token the issuer never handed out: its refusal names the source.
    home.helper("fake", {registry_token.host: {"Username": "<token>", "Secret": "refresh-bad"}})
    home.docker_config({"credsStore": "fake"})
    with pytest.raises(Unauthorized) as info:
        await read_secret(registry_token)
    assert "an identity token" in str(info.value)
    assert "credsStore fake" in str(info.value)
    assert "refresh-bad" not in str(info.value)


async def test_explicit_credentials_beat_a_broken_config(home, registry_token, fresh_issuer):
    (home.docker / "config.json").write_text("{broken")
    creds = {registry_token.host: ("alice", PASSWORD)}
    manifest = await read_secret(registry_token, credentials=creds)
    assert manifest.digest == registry_token.content.get(SECRET_REF).digest
    with pytest.raises(CredentialsError, match=r"config\.json is not valid JSON"):
        await read_secret(registry_token)


# -- the CLI ---------------------------------------------------------------------------------


def cli(*args, stdin=b"", env=None):
    """The CLI with this test's environment: the ``home`` fixture's, plus ``env``."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_cli_auth_check_with_creds_store(home, registry_token, fresh_issuer):
    home.helper("desktop", {registry_token.host: {"Username": "alice", "Secret": PASSWORD}})
    path = home.docker_config({"auths": {registry_token.host: {}}, "credsStore": "desktop"})
    result = cli("auth", "check", registry_token.host)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert f"'alice' (docker config {path} (credsStore desktop))" in out
    assert "accepted" in out
    assert PASSWORD not in out + result.stderr.decode()
    assert fresh_issuer.issued[-1].account == "alice"


def test_cli_auth_check_refused(home, registry_token, fresh_issuer):
    home.docker_config({"auths": {registry_token.host: alice_auth("wrong-pw")}})
    result = cli("auth", "check", registry_token.host)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "credentials: 'alice' (docker config" in result.stdout.decode()
    assert err.startswith("aioregistry: error: ")
    assert "token server refused 'alice'" in err
    assert err.count("\n") == 1
    assert "wrong-pw" not in err + result.stdout.decode()


def test_cli_auth_check_anonymous(home, registry_token, fresh_issuer):
    result = cli("auth", "check", registry_token.host)
    assert result.returncode == 0, result.stderr.decode()
    assert "credentials: anonymous" in result.stdout.decode()
    assert fresh_issuer.issued[-1].account is None


def test_cli_auth_check_basic_registry(home, registry_basic):
    ca = str(registry_basic.ca_file)
    result = cli("auth", "check", "--ca-file", ca, "-u", "alice", "--password-stdin",
                 registry_basic.host, stdin=b"wonderland\n")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert "credentials: 'alice' (explicit credentials)" in result.stdout.decode()
    assert "Basic" in result.stdout.decode()
    result = cli("auth", "check", "--ca-file", ca, registry_basic.host)
    assert result.returncode == 1
    assert "none usable were found [anonymous]" in result.stderr.decode()
    result = cli("auth", "check", "--ca-file", ca, registry_basic.host,
                 env={"DOCKER_USER": "alice", "DOCKER_PASSWORD": "nope"})  # fmt: skip
    assert result.returncode == 1
    assert "DOCKER_USER/DOCKER_PASSWORD" in result.stderr.decode()


def test_cli_username_and_password_stdin(home, registry_token, fresh_issuer):
    image = f"{registry_token.host}/{SECRET_REF}"
    result = cli("digest", "-i", image, "--username", "alice", "--password-stdin",
                 stdin=b"wonderland\n")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == registry_token.content.get(SECRET_REF).digest
    assert fresh_issuer.issued[-1].account == "alice"
    result = cli("digest", "-i", image)
    assert result.returncode == 1
    assert "anonymously" in result.stderr.decode()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--password-stdin"], b"pw\n", "--password-stdin needs --username"),
        (["--username", "alice"], b"", "--username needs --password-stdin"),
        (["--username", "alice", "--password-stdin"], b"\n", "no password on stdin"),
    ],
)
def test_cli_credential_flags_misused(home, args, stdin, message):
    result = cli("tags", "-r", "127.0.0.1:9/x", *args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert result.stderr.decode().count("\n") == 1


def test_cli_broken_config_is_one_line(home, registry_token):
    path = home.docker / "config.json"
    path.write_text("{")
    result = cli("tags", "-r", f"{registry_token.host}/test/single")
    assert result.returncode == 1  # the machine's credential store failed, not the command
    err = result.stderr.decode()
    assert err.startswith(f"aioregistry: error: credentials file {path} is not valid JSON")
    assert err.count("\n") == 1
