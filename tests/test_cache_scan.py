"""Scans with the cache against a real registry (issue #14), counted at its access log.

``test/many`` (300 tags over 40 images) and ``test/multi`` (a Docker list and an OCI index,
three platforms each) on the shared plain-HTTP registry, scanned with ``--platform all``:

- a re-scan into a warm cache makes one HEAD per tag and no GET of a manifest or a blob, and
  prints the same lines byte for byte (``--what manifest`` prints the manifests' bytes);
- a corrupted entry is found, fetched again (that entry alone) and the result is right;
- two scans filling one empty cache at once leave every entry whole;
- ``--no-cache``, and a first scan into an empty cache, make the requests a scan made before
  the cache existed: one GET per tag, no HEAD;
- a repository whose manifests the cache lacks is sampled with `SAMPLE` HEADs, then GETs;
- the library's client does the same with ``cache=``.

A late request may be hedged (sent again while the first is in flight, `_transport._HEDGES`
times at most): requests are compared as sets, each path asked at most that often more.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from support.registry import RegistryProcess

from aioregistry import RegistryClient, ScanStats
from aioregistry._resolution import SAMPLE
from aioregistry._transport import _HEDGES

OUR_AGENT = "aioregistry/"
_CONTENT_PATH = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/?]+)$")


def _targets(registry: RegistryProcess) -> list[str]:
    return [f"{registry.host}/{registry.content.many_repository}", f"{registry.host}/test/multi"]


def _tag_count(registry: RegistryProcess) -> int:
    return len(registry.content.many_tags) + len(registry.content.tags_of("test/multi"))


def _aioregistry(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m aioregistry ARGS``, checked: exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        capture_output=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result


def _scan(registry: RegistryProcess, *args: str, targets: list[str] | None = None) -> bytes:
    """One CLI scan (``--platform all``); its jsonl output, lines sorted."""
    targets = targets or _targets(registry)
    result = _aioregistry("scan", *targets, "--platform", "all", "--format", "jsonl", *args)
    return b"".join(sorted(result.stdout.splitlines(keepends=True)))


def _requests(registry: RegistryProcess, mark: int) -> list[tuple[str, str]]:
    """Our requests since ``mark`` as (method, path)."""
    time.sleep(0.1)  # a line may trail its response: let late ones in before counting
    return [
        (e["method"], e["path"])
        for e in registry.access_log(since=mark)
        if e["user_agent"].startswith(OUR_AGENT)
    ]


def _content_gets(requests: list[tuple[str, str]]) -> list[str]:
    """The paths of the GETs of manifests and blobs."""
    return [path for method, path in requests if method == "GET" and _CONTENT_PATH.match(path)]


def _heads(requests: list[tuple[str, str]]) -> set[str]:
    return {path for method, path in requests if method == "HEAD"}


def _at_most_hedged(requests: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The distinct requests, after checking none was sent more often than hedging allows."""
    counts = Counter(requests)
    assert all(n <= 1 + _HEDGES for n in counts.values()), counts.most_common(3)
    return set(counts)


def _entries_whole(cache: Path) -> int:
    blobs = cache / "blobs" / "sha256"
    files = list(blobs.iterdir())
    for file in files:
        assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name, file
    return len(files)


@pytest.mark.parametrize("what", ["config", "manifest"])
def test_a_rescan_makes_no_get_and_prints_the_same_bytes(registry_http, tmp_path, what):
    cache = tmp_path / "cache"
    mark = registry_http.log_mark()
    first = _scan(registry_http, "--what", what, "--cache", str(cache))
    cold = _requests(registry_http, mark)
    assert _heads(cold) == set()  # an empty cache: one GET per tag, as always
    assert _entries_whole(cache) > 0

    mark = registry_http.log_mark()
    second = _scan(registry_http, "--what", what, "--cache", str(cache))
    warm = _requests(registry_http, mark)
    assert second == first  # byte for byte
    assert _content_gets(warm) == []  # no GET of a manifest or a blob: zero pulls
    assert len(_heads(warm)) == _tag_count(registry_http)  # one HEAD per tag
    assert all(method == "HEAD" or not _CONTENT_PATH.match(path) for method, path in warm)


def test_no_cache_makes_the_requests_of_a_scan_without_one(registry_http, tmp_path):
    cache = tmp_path / "cache"
    runs = []
    for args in (["--no-cache"], ["--cache", str(cache)], ["--no-cache"]):
        # the second fills the cache; the third must not read it
        mark = registry_http.log_mark()
        output = _scan(registry_http, *args)
        runs.append((output, _at_most_hedged(_requests(registry_http, mark))))
    (out1, req1), (out2, req2), (out3, req3) = runs
    assert out1 == out2 == out3
    assert req1 == req2 == req3
    assert not any(method == "HEAD" for method, _ in req1)
    by_tag = {
        path
        for method, path in req1
        if method == "GET"
        and (m := _CONTENT_PATH.match(path))
        and m["kind"] == "manifests"
        and not m["ref"].startswith("sha256:")
    }
    assert len(by_tag) == _tag_count(registry_http)  # a GET per tag


def test_a_corrupted_entry_is_fetched_again_and_the_result_is_right(registry_http, tmp_path):
    cache = tmp_path / "cache"
    first = _scan(registry_http, "--cache", str(cache))
    content = registry_http.content
    image = content.many_tags[next(iter(content.many_tags))]
    child = content.get("test/multi:oci").child("linux/arm64/v8")
    blobs = cache / "blobs" / "sha256"
    for digest in (image.config_digest, child.digest):
        path = blobs / digest.removeprefix("sha256:")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit: same size, other bytes
        path.write_bytes(bytes(data))

    mark = registry_http.log_mark()
    again = _scan(registry_http, "--cache", str(cache))
    assert again == first
    fetched = sorted(set(_content_gets(_requests(registry_http, mark))))
    assert fetched == sorted(
        [
            f"/v2/{content.many_repository}/blobs/{image.config_digest}",
            f"/v2/test/multi/manifests/{child.digest}",
        ]
    )
    _entries_whole(cache)  # both replaced by what was fetched


def test_two_scans_filling_one_empty_cache_at_once_leave_every_entry_whole(registry_http, tmp_path):
    cache = tmp_path / "cache"
    command = [
        sys.executable,
        "-m",
        "aioregistry",
        "scan",
        *_targets(registry_http),
        "--platform",
        "all",
        "--format",
        "jsonl",
        "--cache",
        str(cache),
    ]
    scans = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    outputs = []
    for scan in scans:
        out, err = scan.communicate(timeout=120)
        assert scan.returncode == 0, err.decode()
        outputs.append(b"".join(sorted(out.splitlines(keepends=True))))
    assert outputs[0] == outputs[1]
    assert _entries_whole(cache) > 0
    assert not [p for p in (cache / "blobs" / "sha256").iterdir() if p.name.startswith(".")]

    mark = registry_http.log_mark()
    assert _scan(registry_http, "--cache", str(cache)) == outputs[0]
    assert _content_gets(_requests(registry_http, mark)) == []  # all there, and whole


def test_a_repository_the_cache_lacks_is_sampled_then_fetched_by_get(registry_http, tmp_path):
    cache = tmp_path / "cache"
    host = registry_http.host
    _scan(registry_http, "--cache", str(cache), targets=[f"{host}/test/multi"])  # warm, elsewhere
    many = registry_http.content.many_repository
    mark = registry_http.log_mark()
    _scan(registry_http, "--cache", str(cache), targets=[f"{host}/{many}"])
    requests = _requests(registry_http, mark)
    assert len(_heads(requests)) == SAMPLE  # the sample found nothing of this repository...
    by_tag = {
        path
        for path in _content_gets(requests)
        if "/manifests/" in path and "/manifests/sha256:" not in path
    }
    # ...so the rest were fetched with one GET each, as without a cache
    assert len(by_tag) == len(registry_http.content.many_tags) - SAMPLE


def test_the_cli_caches_in_the_user_cache_directory_by_default(registry_http, temp_home):
    default = temp_home / ".cache" / "aioregistry"  # XDG_CACHE_HOME is temp_home/.cache
    assert not default.exists()
    first = _scan(registry_http)
    assert _entries_whole(default) > 0
    mark = registry_http.log_mark()
    assert _scan(registry_http) == first
    assert _content_gets(_requests(registry_http, mark)) == []


@pytest.mark.anyio
async def test_the_client_takes_a_cache_and_a_rescan_gets_nothing(registry_http, tmp_path):
    targets = _targets(registry_http)

    async def scan() -> tuple[list, ScanStats]:
        async with RegistryClient(use_env_credentials=False, cache=tmp_path / "c") as client:
            async with client.scan(*targets, platform="all", what="manifest") as results:
                found = [r async for r in results]
            return sorted(found, key=lambda r: (r.reference, r.platform or "")), results.stats

    first, cold = await scan()
    assert "manifest-head" not in cold.requests
    assert (cold.from_cache, cold.cache_dropped) == (0, 0)
    second, warm = await scan()
    assert second == first
    # Every distinct manifest came from the disk (once: then from memory), nothing corrupt.
    entries = len(list((tmp_path / "c" / "blobs" / "sha256").iterdir()))
    assert len({r.manifest_digest for r in second}) <= warm.from_cache <= entries
    assert warm.cache_dropped == 0
    assert "manifest" not in warm.requests
    assert "blob" not in warm.requests
    tags = _tag_count(registry_http)
    assert tags <= warm.requests["manifest-head"] <= tags + warm.hedges


@pytest.mark.anyio
async def test_the_client_keeps_no_cache_unless_given_one(registry_http, temp_home):
    async with RegistryClient(use_env_credentials=False) as client:
        assert client.cache is None
        async with client.scan(*_targets(registry_http)) as results:
            assert [r async for r in results]
    assert not (temp_home / ".cache").exists()


def test_a_reaudit_gets_only_what_tags_name(registry_audit, tmp_path):
    """``audit`` reads and fills the cache as ``scan`` does: run again, it asks for no
    manifest or config by digest; what it still GETs is named by a tag (a referrers fallback
    index, whose tag may move), and its rows are the same."""
    registry, _ = registry_audit
    cache = tmp_path / "cache"

    def audit() -> tuple[list[object], list[tuple[str, str]]]:
        mark = registry.log_mark()
        result = _aioregistry(
            *("audit", f"{registry.host}/test/audit"),
            *("--format", "json", "--sort", "tag", "--cache", str(cache)),
        )
        return orjson.loads(result.stdout)["rows"], _requests(registry, mark)

    first, cold = audit()
    second, warm = audit()
    assert second == first
    by_digest = [path for path in _content_gets(cold) if "/sha256:" in path]
    assert by_digest  # the first audit fetched manifests and configs by digest...
    assert [path for path in _content_gets(warm) if "/sha256:" in path] == []  # ...not again
    # What is still fetched is named by a tag: the fallback indexes (sha256-<hex>).
    assert all("/manifests/sha256-" in path for path in _content_gets(warm)), _content_gets(warm)


def test_the_summary_says_what_came_from_the_cache(registry_http, tmp_path):
    cache = tmp_path / "cache"
    target = f"{registry_http.host}/{registry_http.content.many_repository}"

    def summary() -> str:
        result = _aioregistry(
            *("scan", target, "--what", "config", "--format", "jsonl", "--cache", str(cache))
        )
        return result.stderr.decode().strip().splitlines()[-1]

    assert "from the cache" not in summary()  # the first scan fills it
    image = next(iter(registry_http.content.many_tags.values()))
    configs = {i.config_digest for i in registry_http.content.many_tags.values()}
    manifests = {i.digest for i in registry_http.content.many_tags.values()}
    warm = summary()
    # each distinct manifest and config once from the disk
    assert f" {len(configs) + len(manifests)} from the cache, " in warm, warm
    path = cache / "blobs" / "sha256" / image.config_digest.removeprefix("sha256:")
    path.write_bytes(path.read_bytes() + b" ")
    again = summary()
    assert "1 corrupt cache entry fetched anew" in again, again
    assert f" {len(configs) + len(manifests) - 1} from the cache, " in again, again
