"""The CLI end to end: ``python -m aioregistry`` in a subprocess against real registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.content import sha
from support.tokens import decode_jwt_unverified

from aioregistry._scan import DEFAULT_SCAN_CONCURRENCY, MAX_SCAN_CONCURRENCY


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}  # conftest has left no credentials in os.environ
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        capture_output=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def ok(*args: str, env: dict[str, str] | None = None) -> bytes:
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    return result.stdout


def fails(*args: str, env: dict[str, str] | None = None, status: int = 1) -> str:
    result = run(*args, env=env)
    assert result.returncode == status, (result.returncode, result.stderr.decode())
    assert result.stdout == b""
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert err.startswith("aioregistry: error: ")
    assert err.count("\n") == 1  # one clear line
    return err


def test_every_subcommand_against_the_http_registry(registry_http):
    host, content = registry_http.host, registry_http.content
    tags = json.loads(ok("tags", "-r", f"{host}/test/multi"))
    assert tags["name"] == "test/multi"
    assert sorted(tags["tags"]) == ["docker", "oci"]

    many = json.loads(ok("tags", "-r", f"{host}/{content.many_repository}", "--plain-http"))
    assert sorted(many["tags"]) == sorted(content.many_tags)

    index = content.get("test/multi:oci")
    assert ok("digest", "-i", f"{host}/test/multi:oci") == index.digest.encode() + b"\n"
    assert (
        ok("digest", "-i", f"{host}/test/multi:oci", "--platform", "linux/arm64")
        == index.child("linux/arm64/v8").digest.encode() + b"\n"
    )

    # Manifests and configs come out byte for byte: their sha256 is their digest.
    manifest = ok("manifest", "-i", f"{host}/test/multi:oci")
    assert manifest == index.child("linux/amd64").raw
    assert sha(manifest) == index.child("linux/amd64").digest
    assert (
        ok("manifest", "-i", f"{host}/test/multi:docker", "--platform", "linux/arm/v7")
        == content.get("test/multi:docker").child("linux/arm/v7").raw
    )
    assert ok("manifest-list", "-i", f"{host}/test/multi:oci") == index.raw
    single = content.get("test/single:v1")
    assert ok("manifest-list", "-i", f"{host}/test/single:v1") == single.raw
    assert ok("config", "-i", f"{host}/test/single") == single.config_raw
    assert (
        ok("config", "-i", f"{host}/test/multi:oci", "--platform", "linux/arm/v7")
        == index.child("linux/arm/v7").config_raw
    )

    plugin = content.get("test/plugin:latest")
    assert ok("config", "-t", "plugin", "-i", f"{host}/test/plugin") == plugin.config_raw
    assert ok("manifest", "-t", "plugin", "-i", f"{host}/test/plugin") == plugin.raw

    catalog = json.loads(ok("catalog", "-r", host))
    assert catalog["repositories"] == content.repositories


def test_token_subcommand(registry_token, fresh_issuer):
    out = ok("token", "-r", f"{registry_token.host}/test/single")
    token = out.decode().strip()
    assert out.count(b"\n") == 1
    assert token == fresh_issuer.issued[0].token
    _, claims = decode_jwt_unverified(token)
    assert claims["access"][0]["name"] == "test/single"

    out = ok("token", "-t", "plugin", "-r", f"{registry_token.host}/test/plugin")
    _, claims = decode_jwt_unverified(out.decode().strip())
    assert claims["access"][0]["class"] == "plugin"
    assert fresh_issuer.issued[-1].scopes == ["repository(plugin):test/plugin:pull"]


def test_token_registry_with_env_credentials(registry_token, fresh_issuer):
    env = {"DOCKER_USER": "alice", "DOCKER_PASSWORD": "wonderland"}
    secret = registry_token.content.get("private/secret:v1")
    out = ok("digest", "-i", f"{registry_token.host}/private/secret:v1", env=env)
    assert out.decode().strip() == secret.digest
    err = fails("digest", "-i", f"{registry_token.host}/private/secret:v1")
    assert "401" in err
    bad = {"DOCKER_USER": "alice", "DOCKER_PASSWORD": "oops-wrong"}
    err = fails("digest", "-i", f"{registry_token.host}/private/secret:v1", env=bad)
    assert "token server refused 'alice'" in err
    assert "oops-wrong" not in err


def test_tls_registry_needs_trust(registry_basic):
    env = {"DOCKER_USER": "alice", "DOCKER_PASSWORD": "wonderland"}
    ref = f"{registry_basic.host}/test/single:v1"
    digest = registry_basic.content.get("test/single:v1").digest.encode() + b"\n"
    err = fails("digest", "-i", ref, env=env, status=2)
    assert "not trusted" in err
    assert ok("digest", "-i", ref, "-k", env=env) == digest
    assert ok("digest", "-i", ref, "--ca-file", str(registry_basic.ca_file), env=env) == digest
    err = fails(
        "digest",
        "-i",
        ref,
        "--ca-file",
        str(registry_basic.ca_file),
        env={"DOCKER_USER": "alice", "DOCKER_PASSWORD": "nope"},
    )
    assert "401" in err
    assert "nope" not in err


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("digest", "-i", "Upper/Case"), 'path component "Upper" must be lower case', 2),
        (("manifest", "-i", "127.0.0.1:1/x:bad!tag"), "tag", 2),
        (("manifest", "-i", "x@sha256:abc"), "sha256 needs 64 hex characters", 2),
        (("digest", "-i", "127.0.0.1:1/x"), "cannot connect to", 2),
    ],
)
def test_bad_input_is_one_clear_line(args, message, status):
    err = fails(*args, status=status)
    assert message in err


def test_not_found_and_bad_platform(registry_http):
    err = fails("manifest", "-i", f"{registry_http.host}/test/single:nope")
    assert "404" in err
    assert "MANIFEST_UNKNOWN" in err
    err = fails(
        "manifest", "-i", f"{registry_http.host}/test/multi:oci", "--platform", "x", status=2
    )
    assert "invalid platform" in err
    err = fails("manifest", "-i", f"{registry_http.host}/test/multi:oci", "--platform", "os2/x")
    assert "no manifest for platform os2/x" in err


def test_debug_shows_the_traceback():
    result = run("digest", "-i", "Upper/Case", "--debug")
    assert result.returncode != 0
    assert b"Traceback" in result.stderr
    assert b"InvalidReference" in result.stderr


def test_usage_errors_and_help():
    result = run("manifest")
    assert result.returncode == 2
    assert b"-i/--image" in result.stderr
    assert b"digest" in run("--help").stdout


# What --help, --version and a usage error may import: argparse and the parser's own modules,
# never the machinery (tests a laziness that is easy to undo with one import at the top).
HEAVY = ("aiohttp", "anyio", "rich", "yarl", "aioregistry._client", "aioregistry._cli_commands")
LIGHT_RUN = """
import sys
from aioregistry._cli import main
for argv in sys.argv[1:]:
    try:
        main(argv.split())
    except SystemExit:
        pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_help_and_usage_errors_import_no_machinery():
    argvs = ["--help", "--version", "scan --help", "manifest", "manifest --help", "nope"]
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_RUN, *argvs], capture_output=True, timeout=60, check=True
    )
    modules = set(result.stderr.decode().splitlines()[-1].split())
    assert "aioregistry._cli" in modules
    loaded = sorted(m for m in modules if m.startswith(HEAVY) or m.startswith("aioregistry._scan"))
    assert loaded == []


def test_scan_help_gives_the_real_default_concurrency():
    help_text = " ".join(run("scan", "--help").stdout.decode().split())
    assert f"from {DEFAULT_SCAN_CONCURRENCY} up to {MAX_SCAN_CONCURRENCY}," in help_text


def test_the_console_entry_freezes_its_objects_before_the_shutdown():
    # The interpreter's shutdown then skips walking them (tens of ms after aiohttp's import).
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print(gc.get_freeze_count(), file=sys.stderr))\n"
        "from aioregistry._cli import console\n"
        "sys.argv = ['aioregistry', 'digest', '-i', '127.0.0.1:1/x']\n"
        "raise SystemExit(console())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert int(result.stderr.decode().splitlines()[-1]) > 10_000
