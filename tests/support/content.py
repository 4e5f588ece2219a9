"""Known registry content, built deterministically and pushed with raw HTTP.

This module is the oracle for the client's answers: it never imports ``aioregistry``. It
builds images (realistic configs, gzipped tar layers), manifest lists and indexes as exact
bytes with their sha256 digests, pushes them through the distribution API (monolithic blob
uploads, manifests by digest before the indexes that list them, then tags) and returns a
:class:`Content` describing exactly what is in the registry.

Pushed repositories: ``test/single``, ``test/oci``, ``test/multi``, ``org/team/app``,
``test/plugin``, ``private/secret`` and the many-tags repository ``test/many``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urljoin

import aiohttp
import anyio
from yarl import URL

if TYPE_CHECKING:
    from .registry import RegistryProcess

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_PLUGIN_CONFIG",
    "IN_TOTO_LAYER",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "PUSHER",
    "PUSH_USER_AGENT",
    "Content",
    "PushError",
    "PushedBlob",
    "PushedImage",
    "PushedIndex",
    "apush_content",
    "build_attestation",
    "build_content",
    "build_image",
    "build_index",
    "build_layer",
    "push_content",
    "push_tagged",
    "sha",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO_LAYER = "application/vnd.in-toto+json"

#: An Accept header that gets every manifest kind from distribution 2.8 unconverted.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

PUSHER = ("pusher", "pushpw")
PUSH_USER_AGENT = "aioregistry-test-pusher"
IN_FLIGHT = 16
MANY_REPOSITORY = "test/many"
CREATED = "2024-05-01T12:00:00Z"
SHELL_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sha(data: bytes) -> str:
    """The digest of ``data`` as registries write it: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- what was pushed ---------------------------------------------------------------------


@dataclass(frozen=True)
class PushedBlob:
    """One layer blob: the exact (compressed) bytes and their digest."""

    media_type: str
    raw: bytes
    digest: str
    diff_id: str = ""  # sha256 of the uncompressed tar, "" when not a tar layer

    @property
    def size(self) -> int:
        return len(self.raw)


@dataclass(frozen=True)
class PushedImage:
    """One single-platform image manifest (or plugin, or attestation manifest)."""

    repository: str
    media_type: str
    raw: bytes
    digest: str
    config_media_type: str
    config_raw: bytes
    config_digest: str
    platform: str | None  # "linux/amd64", "linux/arm/v7"; None for plugins; "unknown/unknown"
    layers: tuple[PushedBlob, ...] = ()

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw)
        return result

    @property
    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.config_raw)
        return result


@dataclass(frozen=True)
class PushedIndex:
    """A Docker manifest list or an OCI index; ``children`` in index order."""

    repository: str
    media_type: str
    raw: bytes
    digest: str
    children: tuple[PushedImage, ...]

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw)
        return result

    def child(self, platform: str) -> PushedImage:
        """The first child for ``platform`` ("linux/arm64/v8"), as a client should pick it."""
        for image in self.children:
            if image.platform == platform:
                return image
        raise KeyError(platform)


@dataclass(frozen=True)
class Content:
    """Everything pushed to one registry."""

    tags: dict[str, PushedImage | PushedIndex]  # "repo:tag" -> what the tag points at
    many_repository: str
    many_tags: dict[str, PushedImage]  # tag -> image, for ``many_repository``

    def get(self, ref: str) -> PushedImage | PushedIndex:
        """Look up ``repo:tag`` (any repository, including the many-tags one) or ``repo@digest``.

        By digest, index children are found too.
        """
        if "@" in ref:
            repository, _, digest = ref.partition("@")
            for item in self._all_manifests():
                if item.repository == repository and item.digest == digest:
                    return item
            raise KeyError(ref)
        if ref in self.tags:
            return self.tags[ref]
        repository, _, tag = ref.rpartition(":")
        if repository == self.many_repository and tag in self.many_tags:
            return self.many_tags[tag]
        raise KeyError(ref)

    def _all_manifests(self) -> Iterable[PushedImage | PushedIndex]:
        for item in (*self.tags.values(), *self.many_tags.values()):
            yield item
            if isinstance(item, PushedIndex):
                yield from item.children

    @property
    def repositories(self) -> list[str]:
        """Every repository name, sorted as ``/v2/_catalog`` lists them."""
        names = {ref.rpartition(":")[0] for ref in self.tags}
        names.add(self.many_repository)
        return sorted(names)

    def tags_of(self, repository: str) -> list[str]:
        """Every tag of ``repository``, sorted."""
        if repository == self.many_repository:
            return sorted(self.many_tags)
        return sorted(
            ref.rpartition(":")[2] for ref in self.tags if ref.rpartition(":")[0] == repository
        )


# -- building ----------------------------------------------------------------------------


@dataclass
class _Plan:
    """Blobs and manifests to push; manifests in stages, each stage after the previous."""

    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo -> digest -> bytes
    stages: list[list[tuple[str, str, str, bytes]]] = field(
        default_factory=lambda: [[], []]
    )  # (repo, reference, media type, raw): stage 0 by digest (children), stage 1 tags

    def add_image(self, image: PushedImage) -> None:
        self.blobs.setdefault(image.repository, {})[image.config_digest] = image.config_raw
        for layer in image.layers:
            self.blobs[image.repository][layer.digest] = layer.raw

    def put_child(self, item: PushedImage) -> None:
        self.stages[0].append((item.repository, item.digest, item.media_type, item.raw))

    def put_tag(self, item: PushedImage | PushedIndex, tag: str) -> None:
        self.stages[1].append((item.repository, tag, item.media_type, item.raw))


def _docker_json(value: Any) -> bytes:
    # Docker pretty-prints manifests with three spaces; clients must keep the exact bytes.
    return json.dumps(value, indent=3).encode()


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _random_bytes(seed: str, size: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(size)


def _tar_layer(seed: str, size: int, media_type: str) -> PushedBlob:
    payload = _random_bytes(seed, size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(f"opt/aioregistry/{hashlib.sha256(seed.encode()).hexdigest()[:12]}")
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = buffer.getvalue()
    raw = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
    return PushedBlob(media_type, raw, sha(raw), sha(tar_bytes))


def _parse_platform(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    result = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        result["variant"] = parts[2]
    return result


def _descriptor(media_type: str, raw: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha(raw), "size": len(raw), **extra}


def _blob_descriptor(blob: PushedBlob) -> dict[str, Any]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def _image(
    repository: str,
    label: str,
    platform: str,
    *,
    oci: bool = False,
    layers: tuple[PushedBlob, ...] | None = None,
    layer_sizes: tuple[int, ...] = (1536,),
    created: str = CREATED,
) -> PushedImage:
    """A container image whose config carries ``label``, unique per image, built at
    ``created``."""
    layer_type = OCI_LAYER if oci else DOCKER_LAYER
    if layers is None:
        layers = tuple(
            _tar_layer(f"{repository}:{label}:layer{i}", size, layer_type)
            for i, size in enumerate(layer_sizes)
        )
    history: list[dict[str, Any]] = [
        {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{layer.diff_id[7:19]} in /"}
        for layer in layers
    ]
    history.append(
        {
            "created": CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
            "empty_layer": True,
        }
    )
    config: dict[str, Any] = _parse_platform(platform)
    config.update(
        {
            "created": created,
            "config": {
                "Env": [SHELL_PATH],
                "Cmd": ["/bin/sh"],
                "WorkingDir": "/",
                "Labels": {"org.aioregistry.test.id": f"{repository}:{label}"},
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": history,
        }
    )
    config_type = OCI_CONFIG if oci else DOCKER_CONFIG
    config_raw = _compact_json(config)
    manifest_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": _descriptor(config_type, config_raw),
        "layers": [_blob_descriptor(layer) for layer in layers],
    }
    raw = _compact_json(manifest) if oci else _docker_json(manifest)
    return PushedImage(
        repository=repository,
        media_type=manifest_type,
        raw=raw,
        digest=sha(raw),
        config_media_type=config_type,
        config_raw=config_raw,
        config_digest=sha(config_raw),
        platform=platform,
        layers=layers,
    )


def _plugin(repository: str) -> PushedImage:
    layer = _tar_layer(f"{repository}:plugin-rootfs", 2048, DOCKER_LAYER)
    config = {
        "description": "aioregistry test volume plugin",
        "documentation": "https://docs.docker.com/engine/extend/plugins/",
        "interface": {"types": ["docker.volumedriver/1.0"], "socket": "plugin.sock"},
        "entrypoint": ["/usr/bin/aioregistry-volume-plugin", "--socket", "plugin.sock"],
        "workdir": "/",
        "user": {},
        "network": {"type": "host"},
        "linux": {"capabilities": ["CAP_SYS_ADMIN"], "allowAllDevices": False, "devices": None},
        "propagatedMount": "/data",
        "mounts": None,
        "env": [
            {
                "name": "DEBUG",
                "description": "Enable debug logging",
                "settable": ["value"],
                "value": "0",
            }
        ],
        "args": {"name": "args", "description": "", "settable": None, "value": None},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
    }
    config_raw = _compact_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": _descriptor(DOCKER_PLUGIN_CONFIG, config_raw),
        "layers": [_blob_descriptor(layer)],
    }
    raw = _docker_json(manifest)
    return PushedImage(
        repository=repository,
        media_type=DOCKER_MANIFEST,
        raw=raw,
        digest=sha(raw),
        config_media_type=DOCKER_PLUGIN_CONFIG,
        config_raw=config_raw,
        config_digest=sha(config_raw),
        platform=None,
        layers=(layer,),
    )


def _attestation(repository: str, subject: PushedImage) -> PushedImage:
    """A buildkit-style attestation manifest about ``subject`` (platform unknown/unknown)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [
            {
                "name": f"pkg:docker/{repository}@oci?platform=linux%2Famd64",
                "digest": {"sha256": subject.digest.removeprefix("sha256:")},
            }
        ],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "aioregistry-test-sbom", "packages": []},
    }
    layer_raw = _compact_json(statement)
    layer = PushedBlob(IN_TOTO_LAYER, layer_raw, sha(layer_raw))
    config_raw = _compact_json(
        {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, config_raw),
        "layers": [
            {
                **_blob_descriptor(layer),
                "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
            }
        ],
    }
    raw = _compact_json(manifest)
    return PushedImage(
        repository=repository,
        media_type=OCI_MANIFEST,
        raw=raw,
        digest=sha(raw),
        config_media_type=OCI_CONFIG,
        config_raw=config_raw,
        config_digest=sha(config_raw),
        platform="unknown/unknown",
        layers=(layer,),
    )


def _index(
    repository: str,
    media_type: str,
    children: tuple[PushedImage, ...],
    *,
    extra: dict[str, dict[str, Any]] | None = None,
) -> PushedIndex:
    extra = extra or {}
    entries = []
    for child in children:
        assert child.platform is not None
        entry = {"mediaType": child.media_type, "digest": child.digest, "size": child.size}
        entry["platform"] = _parse_platform(child.platform)
        entry.update(extra.get(child.digest, {}))
        entries.append(entry)
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    raw = _docker_json(document) if media_type == DOCKER_LIST else _compact_json(document)
    return PushedIndex(repository, media_type, raw, sha(raw), children)


def build_content(*, many_tags: int = 300, distinct: int = 40) -> tuple[Content, _Plan]:
    """Build the standard content (deterministic bytes) and the plan that pushes it."""
    if many_tags < 1 or distinct < 1:
        raise ValueError("many_tags and distinct must be positive")
    plan = _Plan()
    tags: dict[str, PushedImage | PushedIndex] = {}

    def tag(item: PushedImage | PushedIndex, *names: str) -> None:
        for name in names:
            tags[f"{item.repository}:{name}"] = item
            plan.put_tag(item, name)

    single = _image("test/single", "v1", "linux/amd64", layer_sizes=(2048, 100 * 1024))
    plan.add_image(single)
    tag(single, "v1", "latest")

    oci = _image("test/oci", "v1", "linux/arm64", oci=True, layer_sizes=(1024, 3072))
    plan.add_image(oci)
    tag(oci, "v1")

    docker_children = tuple(
        _image("test/multi", f"docker-{platform}", platform)
        for platform in ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
    )
    oci_images = tuple(
        _image("test/multi", f"oci-{platform}", platform, oci=True)
        for platform in ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
    )
    attestation = _attestation("test/multi", oci_images[0])
    oci_children = (attestation, *oci_images)
    for child in (*docker_children, *oci_children):
        plan.add_image(child)
        plan.put_child(child)
    tag(_index("test/multi", DOCKER_LIST, docker_children), "docker")
    reference = {
        "vnd.docker.reference.digest": oci_images[0].digest,
        "vnd.docker.reference.type": "attestation-manifest",
    }
    tag(
        _index(
            "test/multi",
            OCI_INDEX,
            oci_children,
            extra={attestation.digest: {"annotations": reference}},
        ),
        "oci",
    )

    nested = _image("org/team/app", "1.0", "linux/amd64")
    plan.add_image(nested)
    tag(nested, "1.0")

    plugin = _plugin("test/plugin")
    plan.add_image(plugin)
    tag(plugin, "latest")

    secret = _image("private/secret", "v1", "linux/amd64")
    plan.add_image(secret)
    tag(secret, "v1")

    base = (_tar_layer(f"{MANY_REPOSITORY}:base", 1024, DOCKER_LAYER),)
    images = [
        _image(MANY_REPOSITORY, f"image{i:04d}", "linux/amd64", layers=base)
        for i in range(distinct)
    ]
    for image in images:
        plan.add_image(image)
    width = max(4, len(str(many_tags - 1)))
    many: dict[str, PushedImage] = {}
    for i in range(many_tags):
        name = f"t{i:0{width}d}"
        many[name] = images[i % distinct]
        plan.put_tag(many[name], name)

    return Content(tags=tags, many_repository=MANY_REPOSITORY, many_tags=many), plan


def build_image(repository: str, label: str, platform: str, *, oci: bool = False) -> PushedImage:
    """One small image for ``platform`` ("linux/arm/v7"), unique per ``label``."""
    return _image(repository, label, platform, oci=oci)


def build_layer(seed: str, size: int, *, oci: bool = False) -> PushedBlob:
    """A gzipped tar layer of ``size`` random bytes (from ``seed``), to share between images."""
    return _tar_layer(seed, size, OCI_LAYER if oci else DOCKER_LAYER)


def build_attestation(repository: str, subject: PushedImage) -> PushedImage:
    """A buildkit-style attestation manifest of ``subject`` (platform unknown/unknown)."""
    return _attestation(repository, subject)


def build_index(repository: str, media_type: str, children: tuple[PushedImage, ...]) -> PushedIndex:
    """A manifest list (`DOCKER_LIST`) or OCI index of ``children``, in that order."""
    return _index(repository, media_type, children)


# -- pushing -----------------------------------------------------------------------------


class PushError(RuntimeError):
    """The registry refused part of the push."""


def _basic(user: str, password: str) -> str:
    # aiohttp 3.14 deprecates BasicAuth (a DeprecationWarning, an error under pytest here).
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class _Pusher:
    def __init__(self, registry: RegistryProcess, session: aiohttp.ClientSession) -> None:
        self.registry = registry
        self.session = session
        self.base = registry.url
        self._tokens: dict[str, str] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}

    async def _token(self, repository: str, *, refresh: bool = False) -> str:
        lock = self._token_locks.setdefault(repository, asyncio.Lock())
        async with lock:
            if refresh or repository not in self._tokens:
                issuer = self.registry.issuer
                assert issuer is not None
                params = [
                    ("service", issuer.service),
                    ("scope", f"repository:{repository}:pull,push"),
                ]
                async with self.session.get(
                    issuer.realm, params=params, headers={"Authorization": _basic(*PUSHER)}
                ) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise PushError(f"token request failed: {resp.status} {body[:500]!r}")
                data = json.loads(body)
                self._tokens[repository] = data.get("token") or data["access_token"]
            return self._tokens[repository]

    async def _headers(self, repository: str, *, refresh: bool = False) -> dict[str, str]:
        if self.registry.mode == "basic":
            return {"Authorization": _basic(*PUSHER)}
        if self.registry.mode == "token":
            return {"Authorization": f"Bearer {await self._token(repository, refresh=refresh)}"}
        return {}

    async def request(
        self,
        method: str,
        repository: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, bytes]:
        """One request with auth; retried once on 401 with a fresh token."""
        for attempt in range(2):
            all_headers = {
                **(headers or {}),
                **await self._headers(repository, refresh=attempt > 0),
            }
            async with self.session.request(
                method, URL(url, encoded=True), data=data, headers=all_headers
            ) as resp:
                body = await resp.read()
                if resp.status == 401 and self.registry.mode == "token" and attempt == 0:
                    continue
                return resp.status, resp.headers, body
        raise AssertionError("unreachable")

    async def push_blob(self, repository: str, digest: str, raw: bytes) -> None:
        blob_url = f"{self.base}/v2/{repository}/blobs/{digest}"
        status, _, _ = await self.request("HEAD", repository, blob_url)
        if status == 200:
            return
        status, headers, body = await self.request(
            "POST", repository, f"{self.base}/v2/{repository}/blobs/uploads/"
        )
        if status != 202 or "Location" not in headers:
            raise PushError(f"starting upload to {repository}: {status} {body[:500]!r}")
        location = urljoin(f"{self.base}/v2/{repository}/blobs/uploads/", headers["Location"])
        separator = "&" if "?" in location else "?"
        status, headers, body = await self.request(
            "PUT",
            repository,
            f"{location}{separator}digest={quote(digest, safe='')}",
            data=raw,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise PushError(f"uploading {repository}@{digest}: {status} {body[:500]!r}")
        if headers.get("Docker-Content-Digest", digest) != digest:
            raise PushError(f"registry stored {headers['Docker-Content-Digest']}, not {digest}")

    async def push_manifest(
        self, repository: str, reference: str, media_type: str, raw: bytes
    ) -> None:
        status, headers, body = await self.request(
            "PUT",
            repository,
            f"{self.base}/v2/{repository}/manifests/{reference}",
            data=raw,
            headers={"Content-Type": media_type},
        )
        if status != 201:
            raise PushError(f"putting manifest {repository}:{reference}: {status} {body[:500]!r}")
        digest = sha(raw)
        if headers.get("Docker-Content-Digest", digest) != digest:
            raise PushError(f"registry computed {headers['Docker-Content-Digest']}, not {digest}")


async def _bounded(limiter: anyio.CapacityLimiter, call: Callable[[], Awaitable[object]]) -> None:
    async with limiter:
        await call()


async def _run_all(calls: list[Callable[[], Awaitable[object]]], limit: int) -> None:
    limiter = anyio.CapacityLimiter(limit)
    async with anyio.create_task_group() as group:
        for call in calls:
            group.start_soon(_bounded, limiter, call)


async def apush_content(
    registry: RegistryProcess, *, many_tags: int = 300, distinct: int = 40
) -> Content:
    """Build the standard content and push it to ``registry`` (asyncio only)."""
    content, plan = build_content(many_tags=many_tags, distinct=distinct)
    await apush_plan(registry, plan)
    return content


async def apush_plan(registry: RegistryProcess, plan: _Plan) -> None:
    """Push a plan's blobs, then its manifests stage by stage (asyncio only)."""
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT, ssl=registry.ssl_context() or True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": PUSH_USER_AGENT}
    ) as session:
        pusher = _Pusher(registry, session)
        await _run_all(
            [
                partial(pusher.push_blob, repo, digest, raw)
                for repo, blobs in plan.blobs.items()
                for digest, raw in blobs.items()
            ],
            IN_FLIGHT,
        )
        for stage in plan.stages:  # children by digest first: an index needs them to exist
            await _run_all([partial(pusher.push_manifest, *item) for item in stage], IN_FLIGHT)


T = TypeVar("T")


def run_in_thread(work: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
    """``asyncio.run(work())`` from synchronous code, in a thread with its own event loop (the
    caller may be inside one already); what it raises is raised here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def push_content(registry: RegistryProcess, *, many_tags: int = 300, distinct: int = 40) -> Content:
    """:func:`apush_content` from synchronous code: runs in a thread with its own event loop."""
    return run_in_thread(
        lambda: apush_content(registry, many_tags=many_tags, distinct=distinct), "content-pusher"
    )


def push_tagged(registry: RegistryProcess, tagged: dict[str, PushedImage | PushedIndex]) -> None:
    """Push each item (an index with its children) and tag it: ``{"repo:tag": item}``."""
    plan = _Plan()
    for ref, item in tagged.items():
        images = item.children if isinstance(item, PushedIndex) else (item,)
        for image in images:
            plan.add_image(image)
            if isinstance(item, PushedIndex):
                plan.put_child(image)
        plan.put_tag(item, ref.rpartition(":")[2])
    run_in_thread(lambda: apush_plan(registry, plan), "tagged-pusher")
