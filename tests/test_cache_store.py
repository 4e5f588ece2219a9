"""The content store on its own (issue #14): what goes to disk, how it is read back, and how
the directory is kept private and bounded.

Each mechanism is checked where it can fail: bytes that do not hash to their name never go
in and are dropped when read; a write interrupted before its rename leaves no entry; four
processes filling one directory at once leave every entry whole and none dropped; eviction
keeps the bound and spares what was read last; the directory is 0700 and its files 0600
whatever the umask, and a directory others may read or write is refused.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from support.content import sha

from aioregistry import CacheError, ContentStore
from aioregistry._models import ConfigBlob, ImageManifest, parse_manifest
from aioregistry._store import DEFAULT_MAX_BYTES, EVICT_TO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HOST = "registry.test"


def manifest_bytes(label: str, *, with_type: bool = True) -> bytes:
    config = f'{{"architecture":"amd64","os":"linux","label":"{label}"}}'.encode()
    body = {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [],
    }
    if with_type:
        body = {"mediaType": OCI_MANIFEST, **body}
    return json.dumps(body).encode()


def parsed(raw: bytes) -> ImageManifest:
    manifest = parse_manifest(raw, content_type=OCI_MANIFEST, digest=sha(raw), where="test")
    assert isinstance(manifest, ImageManifest)
    return manifest


class Fetcher:
    """A fetch that counts its calls."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.calls = 0

    async def __call__(self) -> ImageManifest:
        self.calls += 1
        return parsed(self.raw)


def entry(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.removeprefix("sha256:")


# -- the OCI layout and what goes in ------------------------------------------------------


def test_the_directory_is_an_oci_image_layout(tmp_path):
    root = tmp_path / "cache"
    store = ContentStore(root)
    raw = manifest_bytes("a")
    assert store.write(sha(raw), raw)
    assert json.loads((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_bytes())
    assert index["schemaVersion"] == 2
    assert index["manifests"] == []
    assert entry(root, sha(raw)).read_bytes() == raw  # the exact bytes, under their hash
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_only_bytes_that_hash_to_their_name_go_in(tmp_path):
    store = ContentStore(tmp_path)
    raw = manifest_bytes("a")
    assert not store.write(sha(raw), raw + b" ")
    assert not entry(tmp_path, sha(raw)).exists()
    # Digests other than sha256 are kept in memory only.
    digest512 = "sha512:" + hashlib.sha512(raw).hexdigest()
    assert not store.write(digest512, raw)
    assert store.info().entries == 0


def test_an_entry_is_read_back_verified(tmp_path):
    raw = manifest_bytes("a")
    ContentStore(tmp_path).write(sha(raw), raw)
    store = ContentStore(tmp_path)  # another run
    assert store.read(sha(raw)) == raw
    assert store.disk_hits == 1


@pytest.mark.anyio
async def test_a_second_store_on_the_directory_fetches_nothing(tmp_path):
    raw = manifest_bytes("a")
    first = Fetcher(raw)
    got = await ContentStore(tmp_path).manifest(HOST, sha(raw), first)
    assert first.calls == 1
    again = Fetcher(raw)
    cached = await ContentStore(tmp_path).manifest(HOST, sha(raw), again, media_type=OCI_MANIFEST)
    assert again.calls == 0
    assert cached == got


@pytest.mark.anyio
async def test_a_manifest_without_media_type_takes_the_one_the_registry_gave(tmp_path):
    raw = manifest_bytes("a", with_type=False)
    ContentStore(tmp_path).write(sha(raw), raw)
    fetch = Fetcher(raw)
    cached = await ContentStore(tmp_path).manifest(HOST, sha(raw), fetch, media_type=OCI_MANIFEST)
    assert fetch.calls == 0
    assert cached.media_type == OCI_MANIFEST
    assert cached.raw == raw


@pytest.mark.anyio
async def test_configs_are_kept_as_manifests_are(tmp_path):
    raw = b'{"architecture":"arm64","os":"linux","config":{"Env":["A=1"]}}'
    media_type = "application/vnd.oci.image.config.v1+json"
    calls = 0

    async def fetch() -> ConfigBlob:
        nonlocal calls
        calls += 1
        return ConfigBlob.parse(raw, media_type=media_type, digest=sha(raw))

    first = await ContentStore(tmp_path).config(HOST, sha(raw), media_type, fetch)
    second = await ContentStore(tmp_path).config(HOST, sha(raw), media_type, fetch)
    assert calls == 1
    assert second == first
    assert second.raw == raw


@pytest.mark.anyio
async def test_a_corrupted_entry_is_dropped_and_fetched_again(tmp_path):
    raw = manifest_bytes("a")
    ContentStore(tmp_path).write(sha(raw), raw)
    path = entry(tmp_path, sha(raw))
    path.write_bytes(raw.replace(b'"layers"', b'"layerz"'))  # same size, other bytes
    store = ContentStore(tmp_path)
    fetch = Fetcher(raw)
    got = await store.manifest(HOST, sha(raw), fetch)
    assert fetch.calls == 1  # not taken from the bad entry
    assert got.raw == raw
    assert store.dropped == 1
    assert path.read_bytes() == raw  # replaced by what was fetched
    # A truncated entry is no better.
    path.write_bytes(raw[:10])
    assert ContentStore(tmp_path).read(sha(raw)) is None
    assert not path.exists()


# -- atomic writes and concurrent processes ----------------------------------------------


def test_a_write_cut_short_before_its_rename_leaves_no_entry(tmp_path, monkeypatch):
    store = ContentStore(tmp_path)
    raw = manifest_bytes("a")

    def crash(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", crash)
    assert not store.write(sha(raw), raw)  # a disk error is no error of the operation
    blobs = tmp_path / "blobs" / "sha256"
    assert list(blobs.iterdir()) == []  # neither a partial entry nor the temporary file


def _fill(root: str, seed: int, count: int, size: int) -> tuple[int, int]:
    """One process's share of the concurrent test: write every entry, reading back after
    each write the next few, which another process may be writing at that moment; (entries
    read whole, entries dropped as corrupt)."""
    store = ContentStore(root, max_bytes=1 << 40)
    blobs = [_blob(i, size) for i in range(count)]
    _START.wait()  # every process begins at once
    whole = 0
    for i in range(count):
        store.write(sha(blobs[i]), blobs[i])
        for j in range(i, min(count, i + 3)):
            if store.read(sha(blobs[j])) is not None:
                whole += 1
    return whole, store.dropped


_START: Any = None


def _started(start: Any) -> None:
    global _START  # noqa: PLW0603  (a pool initializer's only way to hand a barrier over)
    _START = start


def _blob(i: int, size: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (size // 32)


def test_processes_filling_one_cache_at_once_leave_every_entry_whole(tmp_path):
    count, size, processes = 40, 1024 * 1024, 4  # large enough that a write takes a while
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    with context.Pool(processes, initializer=_started, initargs=(start,)) as pool:
        outcomes = pool.starmap(
            _fill, [(str(tmp_path), seed, count, size) for seed in range(processes)]
        )
    assert [dropped for _, dropped in outcomes] == [0] * processes  # none saw a torn entry
    assert all(whole >= count for whole, _ in outcomes)
    blobs = tmp_path / "blobs" / "sha256"
    names = sorted(p.name for p in blobs.iterdir())
    assert names == sorted(sha(_blob(i, size)).removeprefix("sha256:") for i in range(count))
    for path in blobs.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


# -- the bound ---------------------------------------------------------------------------


def test_the_default_bound():
    assert ContentStore().max_bytes == DEFAULT_MAX_BYTES == 512 * 1024 * 1024


def test_eviction_keeps_the_bound_and_spares_what_was_used_last(tmp_path):
    size, bound = 1000, 10_000
    store = ContentStore(tmp_path, max_bytes=bound)
    blobs = [bytes([i]) * size for i in range(9)]
    past = time.time() - 3600
    for i, raw in enumerate(blobs):
        assert store.write(sha(raw), raw)
        os.utime(entry(tmp_path, sha(raw)), (past + i, past + i))  # written in that order
    assert store.info().bytes == 9 * size  # within the bound: nothing went
    assert store.read(sha(blobs[0])) == blobs[0]  # the oldest, used again now
    for i in range(9, 14):
        raw = bytes([i]) * size
        store.write(sha(raw), raw)
        assert store.info().bytes <= bound
    kept = {p.name for p in (tmp_path / "blobs" / "sha256").iterdir()}
    assert sha(blobs[0]).removeprefix("sha256:") in kept  # read last: spared
    assert sha(blobs[1]).removeprefix("sha256:") not in kept  # least recently used: gone
    assert store.info().bytes >= int(bound * EVICT_TO) - size


def test_clear_removes_the_entries_and_nothing_else(tmp_path):
    store = ContentStore(tmp_path)
    raw = manifest_bytes("a")
    store.write(sha(raw), raw)
    (tmp_path / "notes.txt").write_text("mine")
    removed = store.clear()
    assert (removed.entries, removed.bytes) == (1, len(raw))
    assert store.info().entries == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "oci-layout").exists()


# -- privacy -----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_directory_is_0700_and_its_files_0600_whatever_the_umask(tmp_path):
    root = tmp_path / "new" / "cache"
    old = os.umask(0)
    try:
        store = ContentStore(root)
        raw = manifest_bytes("a")
        store.write(sha(raw), raw)
    finally:
        os.umask(old)
    for directory in (root, root / "blobs", root / "blobs" / "sha256"):
        assert _mode(directory) == 0o700, directory
    for file in (root / "oci-layout", root / "index.json", entry(root, sha(raw))):
        assert _mode(file) == 0o600, file


@pytest.mark.parametrize(
    ("mode", "can"), [(0o755, "read"), (0o750, "read"), (0o770, "write"), (0o777, "write")]
)
def test_a_directory_others_may_read_or_write_is_refused(tmp_path, mode, can):
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(mode)
    with pytest.raises(CacheError) as caught:
        ContentStore(root)
    message = str(caught.value)
    assert str(root) in message
    assert f"mode {mode:04o}: other users can {can} it" in message
    assert "chmod 700" in message
    assert not (root / "blobs").exists()  # nothing was written there


def test_a_blobs_directory_others_may_read_is_refused(tmp_path):
    ContentStore(tmp_path / "c")
    (tmp_path / "c" / "blobs" / "sha256").chmod(0o755)
    with pytest.raises(CacheError, match="sha256 is mode 0755"):
        ContentStore(tmp_path / "c")


def test_a_file_is_no_cache_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheError, match="cannot make the cache directory"):
        ContentStore(tmp_path / "file")
    with pytest.raises(CacheError, match="cannot make the cache directory"):
        ContentStore(tmp_path / "file" / "below")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_a_directory_of_another_user_is_refused(tmp_path):
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(CacheError, match=r"belongs to another user \(uid 65534\)"):
        ContentStore(root)


def test_a_bad_bound_is_refused():
    with pytest.raises(CacheError, match="invalid cache size -1"):
        ContentStore(max_bytes=-1)
