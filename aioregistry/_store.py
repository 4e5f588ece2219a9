"""The content store: manifests, indexes and configs by digest, in memory and on disk.

What a digest names never changes, so what was fetched once need not be fetched again. A
`ContentStore` has two tiers behind one interface (`ContentStore.manifest`,
`ContentStore.config`):

- memory: the parsed objects a scan has used, single-flight (many tags naming one digest
  cause one fetch) and bounded (`MEMORY_ENTRIES`, least recently used out first), by registry
  host and digest as a scan has always kept them;
- disk (optional, ``path``): the exact bytes, laid out as the blobs of an OCI image layout
  (``DIR/blobs/sha256/<hex>``, with ``DIR/oci-layout`` and an empty ``DIR/index.json``), shared
  by every registry, every run and every process that uses the directory.

Only content is kept, never what a tag points to (tags are mutable), nor a token, a
credential or a URL; layers are never kept. Bytes go to disk only when they hash to their
name (checked again here, whatever the caller checked), and every read hashes them again: an
entry that no longer matches (a disk error, an edit) is removed and fetched anew. A write
is a temporary file in the same directory renamed over the name, so a reader, or another
process writing the same entry, sees the whole entry or none (no fsync: a torn entry after
a crash fails the read's check and is fetched again). The directory holds the configs of
private images, whose environment often carries secrets: it is made 0700 and its files 0600,
and a directory that another user owns or that others may read or write is refused
(`CacheError`). Beyond ``max_bytes`` the least recently used entries (by modification time,
refreshed when an entry is read) are removed, down to `EVICT_TO` of the bound.

Failing to write or read the disk (full, read-only) is not an error of the operation: the
content was fetched and is used; the store only remembers less.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ._exceptions import CacheError, RegistryError
from ._flight import Memo
from ._models import ConfigBlob, ImageIndex, ImageManifest, compute_digest, parse_manifest

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EVICT_TO",
    "MEMORY_ENTRIES",
    "CacheInfo",
    "ContentStore",
    "default_cache_dir",
    "open_store",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MEMORY_ENTRIES = 2048  # parsed manifests (and as many configs) kept in memory
EVICT_TO = 0.9  # an eviction goes down to this share of the bound, not just under it
_TOUCH_AFTER = 60.0  # seconds: an entry read is marked used again at most this often
_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
_INDEX = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
_TEMP_PREFIX = ".tmp-"

Manifest = ImageManifest | ImageIndex


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What a store's disk tier holds: entries, their bytes, and the bound."""

    path: str
    entries: int
    bytes: int
    max_bytes: int


class ContentStore:
    """Content by digest, in memory and, with ``path``, on disk (see the module doc).

    ``ContentStore()`` keeps things in memory only, for as long as the object lives;
    ``ContentStore(path)`` also keeps them in ``path`` (made if missing), across runs.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory_entries: int = MEMORY_ENTRIES,
    ) -> None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
            raise CacheError(f"invalid cache size {max_bytes!r}: expected a number of bytes >= 0")
        self._manifests: Memo[tuple[str, str], Manifest] = Memo(memory_entries)
        self._configs: Memo[tuple[str, str], ConfigBlob] = Memo(memory_entries)
        self.max_bytes = max_bytes
        self.disk_hits = 0  # entries read from disk and found whole
        self.dropped = 0  # entries read from disk that no longer hashed to their name
        self._root: Path | None = None
        self._blobs: Path | None = None
        self._bytes = 0
        self._entries = 0
        if path is not None:
            self._root = Path(path).expanduser()
            self._blobs = self._root / "blobs" / "sha256"
            _prepare(self._root, self._blobs)
            self._entries, self._bytes = _usage(self._blobs)

    @property
    def path(self) -> Path | None:
        """The directory of the disk tier; None for a store in memory only."""
        return self._root

    @property
    def persistent(self) -> bool:
        return self._root is not None

    @property
    def is_empty(self) -> bool:
        """Whether the disk tier held nothing when opened and nothing was written since."""
        return self._entries == 0

    # -- the interface the operations use ----------------------------------------------------

    async def manifest(
        self,
        host: str,
        digest: str,
        fetch: Callable[[], Awaitable[Manifest]],
        *,
        media_type: str | None = None,
    ) -> Manifest:
        """The manifest or index ``digest`` names: from memory, else from disk, else by
        ``fetch`` (then kept). ``media_type`` is what the registry said it is (the
        descriptor's, a HEAD's ``Content-Type``): the type of a manifest whose body names
        none."""

        async def load() -> Manifest:
            raw = self.read(digest)
            if raw is not None:
                try:
                    return parse_manifest(
                        raw, content_type=media_type, digest=digest, where=f"cached {digest}"
                    )
                except RegistryError:
                    pass  # whole, but not what is wanted here: fetched, as without a store
            fetched = await fetch()
            self.write(fetched.digest, fetched.raw)
            return fetched

        return await self._manifests.get((host, digest), load)

    async def config(
        self,
        host: str,
        digest: str,
        media_type: str,
        fetch: Callable[[], Awaitable[ConfigBlob]],
    ) -> ConfigBlob:
        """The config ``digest`` names, as `manifest` does it."""

        async def load() -> ConfigBlob:
            raw = self.read(digest)
            if raw is not None:
                try:
                    return ConfigBlob.parse(raw, media_type=media_type, digest=digest)
                except RegistryError:
                    pass
            fetched = await fetch()
            self.write(fetched.digest, fetched.raw)
            return fetched

        return await self._configs.get((host, digest), load)

    def keep(self, host: str, manifest: Manifest) -> None:
        """Remember a manifest fetched by tag (its digest is its bytes' hash)."""
        self._manifests.put((host, manifest.digest), manifest)
        self.write(manifest.digest, manifest.raw)

    def holds(self, host: str, digest: str) -> bool:
        """Whether a manifest of that digest is at hand (in memory, or a file on disk,
        checked when read) without a request."""
        if (host, digest) in self._manifests:
            return True
        path = self._entry(digest)
        return path is not None and path.is_file()

    # -- the disk tier -------------------------------------------------------------------------

    def _entry(self, digest: str) -> Path | None:
        if self._blobs is None:
            return None
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or len(hex_part) != 64 or hex_part.strip("0123456789abcdef"):
            return None  # only sha256 digests are kept on disk; the rest in memory only
        return self._blobs / hex_part

    def read(self, digest: str) -> bytes | None:
        """The bytes stored under ``digest``, if they still hash to it; an entry that does
        not is removed (and counted in ``dropped``)."""
        path = self._entry(digest)
        if path is None:
            return None
        try:
            with path.open("rb") as file:
                mtime = os.fstat(file.fileno()).st_mtime
                raw = file.read()
        except OSError:
            return None
        if compute_digest(raw) != digest:
            self.dropped += 1
            with contextlib.suppress(OSError):
                path.unlink()
                self._entries -= 1
                self._bytes -= len(raw)
            return None
        self.disk_hits += 1
        now = time.time()
        if now - mtime > _TOUCH_AFTER:  # used again: last in line for eviction
            with contextlib.suppress(OSError):
                os.utime(path, (now, now))
        return raw

    def write(self, digest: str, raw: bytes) -> bool:
        """Store ``raw`` under ``digest`` if it hashes to it (atomically: a temporary file
        renamed); whether it was stored. Errors of the disk are not raised."""
        path = self._entry(digest)
        if path is None or compute_digest(raw) != digest:
            return False
        if path.is_file():
            return True
        assert self._blobs is not None  # noqa: S101  (an entry means a disk tier)
        try:
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self._blobs)  # mode 0600
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(raw)
                Path(temp).replace(path)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(temp).unlink()
                raise
        except OSError:
            return False
        self._entries += 1
        self._bytes += len(raw)
        if self._bytes > self.max_bytes:
            self.evict()
        return True

    def evict(self) -> int:
        """Remove the least recently used entries until the disk tier is within `EVICT_TO` of
        its bound (counted afresh: other processes write here too); how many went."""
        if self._blobs is None:
            return 0
        entries = _entries(self._blobs)
        total = sum(size for _, _, size in entries)
        target = int(self.max_bytes * EVICT_TO)
        removed = 0
        if total > self.max_bytes:
            for _, path, size in sorted(entries):
                if total <= target:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
                total -= size
        self._entries = len(entries) - removed
        self._bytes = total
        return removed

    def info(self) -> CacheInfo:
        """What the disk tier holds now."""
        if self._blobs is None:
            return CacheInfo("", 0, 0, self.max_bytes)
        entries = _entries(self._blobs)
        self._entries = len(entries)
        self._bytes = sum(size for _, _, size in entries)
        return CacheInfo(str(self._root), self._entries, self._bytes, self.max_bytes)

    def clear(self) -> CacheInfo:
        """Remove every entry (and any temporary file left by a process that died), in
        memory and on disk; what was removed. Nothing else in the directory is touched."""
        self._manifests.clear()
        self._configs.clear()
        removed = self.info()
        if self._blobs is not None:
            for child in self._blobs.iterdir():
                if _is_entry_name(child.name) or child.name.startswith(_TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        child.unlink()
        self._entries = self._bytes = 0
        return removed


def open_store(
    path: str | os.PathLike[str] | ContentStore | None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ContentStore | None:
    """``path`` as a store: a store as it is, a path opened (`CacheError` if unusable)."""
    if path is None or isinstance(path, ContentStore):
        return path
    return ContentStore(path, max_bytes=max_bytes)


def default_cache_dir() -> Path:
    """Where the command line keeps its cache: the platform's user cache directory, on Linux
    ``$XDG_CACHE_HOME/aioregistry`` (``~/.cache/aioregistry``)."""
    import platformdirs  # noqa: PLC0415  (only a command that caches pays for it)

    return Path(platformdirs.user_cache_dir("aioregistry", appauthor=False))


def _prepare(root: Path, blobs: Path) -> None:
    """Make (or check) the directory: ours, 0700, and the OCI layout's two files."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot make the cache directory {root}: {exc.strerror}") from exc
    _check_private(root)
    try:
        for part in (root / "blobs", blobs):
            part.mkdir(mode=0o700, exist_ok=True)
            _check_private(part)
        for name, data in (("oci-layout", _LAYOUT), ("index.json", _INDEX)):
            target = root / name
            if not target.exists():
                fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=root)
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                Path(temp).replace(target)
    except OSError as exc:
        raise CacheError(f"cannot use the cache directory {root}: {exc}") from exc


def _check_private(directory: Path) -> None:
    try:
        info = directory.stat()
    except OSError as exc:
        raise CacheError(f"cannot use the cache directory {directory}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise CacheError(f"the cache directory {directory} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError(
            f"the cache directory {directory} belongs to another user (uid {info.st_uid}): "
            "choose a directory of your own with --cache DIR"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        who = "read" if not mode & 0o022 else "write"
        advice = (
            "choose a directory of your own with --cache DIR"  # a shared one such as /tmp
            if mode & stat.S_ISVTX
            else f"chmod 700 {directory} if it is yours alone, or choose another with --cache DIR"
        )
        raise CacheError(
            f"the cache directory {directory} is mode {mode:04o}: other users can {who} it, "
            f"and it holds image configs, which may carry secrets ({advice})"
        )


def _is_entry_name(name: str) -> bool:
    return len(name) == 64 and not name.strip("0123456789abcdef")


def _entries(blobs: Path) -> list[tuple[float, Path, int]]:
    """(last used, path, size) of every entry."""
    found = []
    try:
        children = list(os.scandir(blobs))
    except OSError:
        return []
    for child in children:
        if not _is_entry_name(child.name):
            continue
        try:
            info = child.stat()
        except OSError:
            continue
        found.append((info.st_mtime, Path(child.path), info.st_size))
    return found


def _usage(blobs: Path) -> tuple[int, int]:
    entries = _entries(blobs)
    return len(entries), sum(size for _, _, size in entries)
