"""A scan leaves out the tags that are referrer bookkeeping (issue #13).

A registry of its own holds ``test/signed``: an image ``v1``, the cosign 2 legacy tags of its
digest (``sha256-<hex>.sig``, ``.att``, ``.sbom``), the spec's fallback tag ``sha256-<hex>``
on an OCI index, and ordinary tags that only look alike. A scan of the repository skips
exactly the bookkeeping tags (not one request for them, by the registry's access log) and
says how many it hid; ``include_digest_tags`` / ``--include-digest-tags`` scans them, and so
does naming one as an image. `is_referrer_tag` is pinned by a table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.content import OCI_INDEX, PushedImage, build_image, build_index, push_tagged
from support.registry import RegistryProcess

from aioregistry import RegistryClient
from aioregistry._artifacts import is_referrer_tag

HEX = "0123456789abcdef" * 4  # 64 lower-case hex digits
REPO = "test/signed"
_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)$")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


# -- the predicate -----------------------------------------------------------------------

REFERRER_TAGS = [
    f"sha256-{HEX}",  # the spec's fallback tag of a sha256 digest
    f"sha256-{HEX}.sig",  # cosign 2 legacy tags
    f"sha256-{HEX}.att",
    f"sha256-{HEX}.sbom",
    f"sha512-{HEX}",  # sha512's 128 hex digits cut to 64
    f"blake3-{HEX}",
]
ORDINARY_TAGS = [
    "latest",
    "v1.0",
    "sha256-abc",  # too short for a digest
    f"sha256-{HEX[:-1]}",  # 63 digits
    f"sha256-{HEX}0",  # 65 digits: the rule cuts to 64, so this is no fallback tag
    f"sha256-{HEX}-extra",
    f"sha256-{HEX}.sig.old",
    f"sha256-{HEX}.sigs",
    f"sha256-{HEX}.",
    f"v1-sha256-{HEX}",
    "v1.0-sha256",
    f"SHA256-{HEX}",  # algorithms are lower case
    f"sha256-{HEX.upper()}",  # and so is their hex
    f"sha256_{HEX}",
    f"sha256-{HEX[:-4]}wxyz",  # not hex
    f"sha512-{HEX}.sig",  # cosign's legacy tags are of sha256 digests
    f"md5-{HEX}",  # not a registered algorithm
    f"sha256-{HEX}\n",
    "",
]


@pytest.mark.parametrize("tag", REFERRER_TAGS)
def test_referrer_bookkeeping_tags_are_recognised(tag):
    assert is_referrer_tag(tag)


@pytest.mark.parametrize("tag", ORDINARY_TAGS)
def test_tags_that_only_look_alike_are_ordinary(tag):
    assert not is_referrer_tag(tag)


# -- a signed repository on a real registry ---------------------------------------------


@dataclass(frozen=True)
class Signed:
    registry: RegistryProcess
    image: PushedImage
    bookkeeping: frozenset[str]  # the tags a default scan leaves out
    ordinary: frozenset[str]  # the tags it scans

    @property
    def repository(self) -> str:
        return f"{self.registry.host}/{REPO}"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    """A registry of its own (the shared ones have tag lists other tests count)."""
    image = build_image(REPO, "v1", "linux/amd64", oci=True)
    hex_digest = image.digest.removeprefix("sha256:")
    cosign = {
        suffix: build_image(REPO, f"cosign-{suffix}", "linux/amd64", oci=True)
        for suffix in ("sig", "att", "sbom")
    }
    artifact = build_image(REPO, "referrer", "linux/amd64", oci=True)
    fallback = build_index(REPO, OCI_INDEX, (artifact,))
    tagged: dict = {f"{REPO}:v1": image}
    tagged.update({f"{REPO}:sha256-{hex_digest}.{s}": item for s, item in cosign.items()})
    tagged[f"{REPO}:sha256-{hex_digest}"] = fallback
    ordinary = {"v1", "sha256-abc", f"v1-sha256-{hex_digest}", f"sha256-{hex_digest}-extra"}
    for tag in ordinary - {"v1"}:
        tagged[f"{REPO}:{tag}"] = image
    bookkeeping = {ref.rpartition(":")[2] for ref in tagged} - ordinary
    assert len(bookkeeping) == 4
    with RegistryProcess("http", tmp_path_factory.mktemp("signed")) as registry:
        push_tagged(registry, tagged)
        yield Signed(registry, image, frozenset(bookkeeping), frozenset(ordinary))


def _manifest_refs(registry: RegistryProcess, mark: int) -> set[str]:
    """The references of every manifest request since ``mark``, from the access log."""
    time.sleep(0.05)  # a line may trail its response: let late ones in before reading
    refs = set()
    for entry in registry.access_log(since=mark):
        match = _MANIFEST_PATH.match(entry["path"])
        if match and match["repo"] == REPO:
            refs.add(match["ref"])
    return refs


async def _scan(*targets: str, **options) -> tuple[list, object]:
    async with (
        RegistryClient(use_env_credentials=False) as client,
        client.scan(*targets, **options) as scan,
    ):
        results = [result async for result in scan]
    return results, scan.stats


@pytest.mark.anyio
async def test_a_scan_leaves_out_the_bookkeeping_tags_and_their_requests(signed):
    mark = signed.registry.log_mark()
    results, stats = await _scan(signed.repository)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert {r.tag for r in results} == signed.ordinary
    assert all(r.digest == signed.image.digest for r in results)
    assert stats.hidden_tags == len(signed.bookkeeping) == 4
    requested = _manifest_refs(signed.registry, mark)
    assert requested >= signed.ordinary  # the log is read right: the scanned tags are there
    assert not requested & signed.bookkeeping
    assert not requested - signed.ordinary - {signed.image.digest}


@pytest.mark.anyio
async def test_include_digest_tags_scans_them(signed):
    mark = signed.registry.log_mark()
    results, stats = await _scan(signed.repository, include_digest_tags=True)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert {r.tag for r in results} == signed.ordinary | signed.bookkeeping
    assert stats.hidden_tags == 0
    assert _manifest_refs(signed.registry, mark) >= signed.bookkeeping


@pytest.mark.anyio
async def test_a_bookkeeping_tag_given_as_an_image_is_scanned(signed):
    hex_digest = signed.image.digest.removeprefix("sha256:")
    sig, fallback = f"sha256-{hex_digest}.sig", f"sha256-{hex_digest}"
    results, stats = await _scan(
        f"{signed.repository}:{sig}", f"{signed.repository}:{fallback}", what="digest"
    )
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert sorted(r.tag for r in results) == sorted([sig, fallback])
    assert stats.hidden_tags == 0
    # given as an image and listed by its repository: scanned once, not hidden
    results, stats = await _scan(f"{signed.repository}:{sig}", signed.repository, what="digest")
    assert sorted(r.tag for r in results) == sorted(signed.ordinary | {sig})
    assert stats.hidden_tags == len(signed.bookkeeping) - 1


# -- the command line --------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        capture_output=True,
        env=dict(os.environ),  # conftest has left no credentials in os.environ
        timeout=60,
        check=False,
    )


def _summary_patterns() -> list[re.Pattern[str]]:
    """The benchmarks' regexes of the scan's summary line, read from their source."""
    found = [
        re.compile(pattern, re.MULTILINE)
        for path in sorted(BENCHMARKS.glob("*.py"))
        for pattern in re.findall(r're\.compile\(r"(\^aioregistry: [^"]*)"', path.read_text())
    ]
    assert len(found) >= 3
    return found


def test_cli_scan_hides_them_and_says_how_many(signed):
    result = _cli("scan", signed.repository, "--what", "digest", "--format", "jsonl")
    assert result.returncode == 0, result.stderr.decode()
    tags = {json.loads(line)["tag"] for line in result.stdout.decode().splitlines()}
    assert tags == signed.ordinary
    err = result.stderr.decode()
    assert "4 results, 0 errors, 4 digest tags hidden (--include-digest-tags shows them), " in err
    for pattern in _summary_patterns():
        assert pattern.search(err), (pattern.pattern, err)


def test_cli_include_digest_tags_scans_them(signed):
    result = _cli(
        "scan", signed.repository, "--include-digest-tags", "--what", "digest", "--format", "jsonl"
    )
    assert result.returncode == 0, result.stderr.decode()
    tags = {json.loads(line)["tag"] for line in result.stdout.decode().splitlines()}
    assert tags == signed.ordinary | signed.bookkeeping
    err = result.stderr.decode()
    assert err.startswith("aioregistry: 8 results, 0 errors, ")
    assert "hidden" not in err
