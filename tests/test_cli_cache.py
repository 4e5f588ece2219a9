"""The cache on the command line (issue #14): ``aioregistry cache info`` and ``cache clear``,
``--cache DIR`` and ``--no-cache`` on every subcommand, and a directory that cannot be used
refused in one clear line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from aioregistry._cli import _build_parser

COMMANDS = [
    ["token", "-r", "x"],
    ["tags", "-r", "x"],
    ["digest", "-i", "x"],
    ["manifest", "-i", "x"],
    ["manifest-list", "-i", "x"],
    ["config", "-i", "x"],
    ["ratelimit", "-i", "x"],
    ["referrers", "-i", "x"],
    ["scan", "x"],
    ["auth", "check", "x"],
    ["catalog"],
]


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        capture_output=True,
        env=dict(os.environ),  # conftest: XDG_CACHE_HOME is the test's own
        timeout=60,
        check=False,
    )


def ok(*args: str) -> bytes:
    result = run(*args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[bytes], status: int) -> str:
    assert result.returncode == status, result.stderr.decode()
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


def info(*args: str) -> dict:
    return json.loads(ok("cache", "info", *args))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_subcommand_takes_cache_and_no_cache(command):
    parser = _build_parser()
    assert parser.parse_args([*command, "--cache", "/somewhere"]).cache == "/somewhere"
    assert parser.parse_args([*command, "--no-cache"]).no_cache is True
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--cache", "/somewhere", "--no-cache"])


def test_cache_and_no_cache_together_are_a_usage_error():
    result = run("scan", "x", "--cache", "/somewhere", "--no-cache")
    assert result.returncode == 2
    assert "--no-cache: not allowed with argument --cache" in result.stderr.decode()


def test_info_and_clear_of_the_default_cache(registry_http, temp_home):
    default = temp_home / ".cache" / "aioregistry"
    empty = info()
    assert empty == {"path": str(default), "entries": 0, "bytes": 0, "max_bytes": 512 << 20}
    ok("scan", f"{registry_http.host}/test/multi", "--platform", "all", "--format", "jsonl")
    files = list((default / "blobs" / "sha256").iterdir())
    held = info()
    assert held["entries"] == len(files) > 0
    assert held["bytes"] == sum(f.stat().st_size for f in files)

    out = ok("cache", "clear").decode()
    assert out == f"removed {held['entries']} entries ({held['bytes']} bytes) from {default}\n"
    assert info()["entries"] == 0
    assert (default / "oci-layout").exists()  # still an OCI layout, only empty


def test_cache_dir_is_used_for_info_clear_and_commands(registry_http, tmp_path, temp_home):
    cache = tmp_path / "mine"
    host = registry_http.host
    ok("config", "-i", f"{host}/test/multi:oci", "--cache", str(cache))
    # the index's image manifest and its config, by digest (the tag's index is asked anew)
    assert info("--cache", str(cache))["entries"] == 2
    assert not (temp_home / ".cache").exists()  # the default was left alone

    mark = registry_http.log_mark()
    config = ok("config", "-i", f"{host}/test/multi:oci", "--cache", str(cache))
    assert config == registry_http.content.get("test/multi:oci").child("linux/amd64").config_raw
    time.sleep(0.1)
    paths = [e["path"] for e in registry_http.access_log(since=mark) if e["method"] == "GET"]
    assert not any("/blobs/" in p or "/manifests/sha256:" in p for p in paths), paths
    assert any(p.endswith("/manifests/oci") for p in paths)  # what a tag points to: asked

    ok("cache", "clear", "--cache", str(cache))
    assert info("--cache", str(cache))["entries"] == 0


def test_no_cache_and_commands_that_fetch_nothing_by_digest_leave_no_directory(
    registry_http, tmp_path, temp_home
):
    host = registry_http.host
    ok("scan", f"{host}/test/single", "--no-cache", "--format", "jsonl")
    ok("manifest", "-i", f"{host}/test/single", "--no-cache")
    assert not (temp_home / ".cache").exists()
    ok("tags", "-r", f"{host}/test/single", "--cache", str(tmp_path / "unused"))
    ok("digest", "-i", f"{host}/test/single", "--cache", str(tmp_path / "unused"))
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("cache", "info"),
        ("cache", "clear"),
        ("scan", "127.0.0.1:1/x"),
        ("config", "-i", "127.0.0.1:1/x"),
    ],
)
def test_a_directory_others_can_read_is_refused_in_one_line(tmp_path, args):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    line = one_error_line(run(*args, "--cache", str(shared)), 2)
    assert line == (
        f"aioregistry: error: the cache directory {shared} is mode 0755: other users can read "
        "it, and it holds image configs, which may carry secrets "
        f"(chmod 700 {shared} if it is yours alone, or choose another with --cache DIR)\n"
    )
    assert list(shared.iterdir()) == []


def test_a_shared_sticky_directory_gets_no_chmod_advice(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    line = one_error_line(run("cache", "info", "--cache", str(sticky)), 2)
    assert "mode 1777: other users can write it" in line
    assert "chmod" not in line
    assert "choose a directory of your own with --cache DIR" in line


def test_a_default_directory_others_can_write_is_refused(temp_home):
    default = temp_home / ".cache" / "aioregistry"
    default.mkdir(parents=True)
    default.chmod(0o777)
    line = one_error_line(run("scan", "127.0.0.1:1/x"), 2)
    assert f"the cache directory {default} is mode 0777: other users can write it" in line
    # --no-cache is the way around it: the scan goes on (and finds no registry there)
    result = run("scan", "127.0.0.1:1/x", "--no-cache")
    assert result.returncode == 2
    assert "could not be reached" in result.stderr.decode()
    assert "cache directory" not in result.stderr.decode()


def test_a_file_given_as_the_cache_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    line = one_error_line(run("cache", "info", "--cache", str(file)), 2)
    assert line.startswith(f"aioregistry: error: cannot make the cache directory {file}: ")
