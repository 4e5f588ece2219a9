"""Referrers: the signatures, SBOMs and attestations that name a manifest as their subject.

`list_referrers` looks in three places, as regctl and oras do:

1. the referrers API, ``GET /v2/<name>/referrers/<digest>[?artifactType=]``: every page
   (``Link``), filtered here unless the answer's ``OCI-Filters-Applied`` names
   ``artifactType``. A registry that has the API never answers 404 there (an unknown subject
   gives an empty index), so a 404 means it has none;
2. then the spec's fallback, the index under the tag `referrers_tag` of the digest; no such
   tag, no referrers;
3. and always cosign 2's legacy tags of the digest (``sha256-<hex>.sig``, ``.att``,
   ``.sbom``), found in the tag list, each a descriptor of the manifest it tags (one
   ``HEAD``; a ``GET`` only to match an ``artifact_type`` filter).

Whether a registry has the API is learned once per registry host and kept in the client's
`ReferrersState` for its life: the first call probes (later calls to that host wait for
it rather than probe again), and every later call goes straight to the right place. A 404
that says ``NAME_UNKNOWN`` is about the repository, not the API (a registry with the API
answers so for a repository it does not hold): that call falls back, and nothing is learned. The tag
list is read at most once per call and not at all when the caller has it (``tags``, as a
scan does); it also says whether the fallback tag exists, so a missing one costs nothing.

An entry without an artifact type, or with the empty one (GHCR's fallback indexes list
cosign bundles so), is classified by its manifest (`referrer_kind` of its ``artifactType``,
config and layer media types), read once per digest and remembered in the state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import anyio
from yarl import URL

from ._artifacts import (
    EMPTY_MEDIA_TYPE,
    Referrer,
    ReferrerKind,
    ReferrerSource,
    cosign_tag_kind,
    referrer_kind,
    referrers_tag,
)
from ._exceptions import InvalidContent, NotFound, UsageError
from ._flight import Memo
from ._media import OCI_INDEX
from ._models import Descriptor, ImageIndex, ImageManifest, load_object
from ._pages import MAX_PAGES, paginate, parse_next_link
from ._references import Reference, parse_digest
from ._responses import Response, redact_url
from ._session import MANIFEST_LIMIT, Session

__all__ = ["REFERRERS_PAGE_LIMIT", "ReferrersState", "list_referrers"]

REFERRERS_PAGE_LIMIT = MANIFEST_LIMIT  # one page is an OCI index
MANIFEST_MEMO_SIZE = 4096  # referrer manifests kept for classification, by digest
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")


class ReferrersState:
    """What one client learns about referrers: per registry host whether it has the
    referrers API (``api``, learned once), and the referrer manifests read to classify them."""

    def __init__(self) -> None:
        self.api: dict[str, bool] = {}
        self._probes: dict[str, anyio.Lock] = {}
        self.manifests: Memo[tuple[str, str, str], ImageManifest | ImageIndex] = Memo(
            MANIFEST_MEMO_SIZE
        )

    def probe_lock(self, host: str) -> anyio.Lock:
        return self._probes.setdefault(host, anyio.Lock())


async def list_referrers(
    session: Session,
    ref: Reference,
    scope: str,
    *,
    state: ReferrersState,
    artifact_type: str | None = None,
    tags: Sequence[str] | None = None,
) -> list[Referrer]:
    """Every referrer of ``ref``'s digest (``ref`` must carry one), each once, in the order
    found: the API's (or the fallback index's), then cosign's legacy tags'. ``tags`` is the
    repository's tag list when the caller has it; otherwise it is listed when needed."""
    if ref.digest is None:
        raise UsageError(f"list_referrers needs a digest, not the tag of {ref}")
    if artifact_type is not None and not _MEDIA_TYPE.fullmatch(artifact_type):
        raise UsageError(
            f"invalid artifact type {artifact_type!r}: expected a media type such as "
            "application/spdx+json"
        )
    digest = parse_digest(ref.digest)
    lister = _Lister(
        session,
        ref,
        digest=digest,
        scope=scope,
        state=state,
        artifact_type=artifact_type,
        tags=tags,
    )
    found = [*await lister.listed(), *await lister.cosign_tagged()]
    unique: dict[str, Referrer] = {}
    for referrer in found:
        unique.setdefault(referrer.digest, referrer)
    return list(unique.values())


class _Lister:
    """One call of `list_referrers`: its subject, and the tag list once read."""

    def __init__(
        self,
        session: Session,
        ref: Reference,
        *,
        digest: str,
        scope: str,
        state: ReferrersState,
        artifact_type: str | None,
        tags: Sequence[str] | None,
    ) -> None:
        self.session = session
        self.ref = ref
        self.digest = digest
        self.scope = scope
        self.state = state
        self.artifact_type = artifact_type
        self._tags = tags
        self._unknown_name = False  # the API's 404 said NAME_UNKNOWN

    async def tags(self) -> Sequence[str]:
        if self._tags is None:
            repo = self.ref.repository
            self._tags = await paginate(
                self.session,
                f"/v2/{repo.path}/tags/list",
                key="tags",
                scope=self.scope,
                page_size=None,
                what=f"tags of {repo}",
            )
        return self._tags

    # -- the referrers API, or the fallback tag ---------------------------------------------

    async def listed(self) -> list[Referrer]:
        host = self.session.host
        known = self.state.api.get(host)
        if known is None:
            async with self.state.probe_lock(host):  # one probe per host; the others wait
                known = self.state.api.get(host)
                if known is None:
                    found = await self._api()
                    if found is not None or not self._unknown_name:
                        self.state.api[host] = found is not None
                    if found is not None:
                        return found
                    known = False
        if known:
            found = await self._api()
            if found is not None:
                return found
        return await self._tag_schema()

    async def _api(self) -> list[Referrer] | None:
        """The API's answer, every page; None when the registry answers 404 (no API)."""
        url = self.session.url(f"/v2/{self.ref.path}/referrers/{self.digest}")
        if self.artifact_type is not None:
            url = url.with_query(artifactType=self.artifact_type)
        seen: set[str] = set()
        entries: list[Descriptor] = []
        while True:
            seen.add(str(url))
            try:
                resp = await self.session.request(
                    self.scope,
                    "GET",
                    url,
                    accept=OCI_INDEX,
                    max_body=REFERRERS_PAGE_LIMIT,
                    what=f"referrers of {self.ref}",
                    kind="referrers",
                )
            except NotFound as exc:
                if len(seen) == 1:
                    self._unknown_name = any(e.code == "NAME_UNKNOWN" for e in exc.errors)
                    return None
                raise
            page = _page(resp)
            if self.artifact_type is not None and "artifactType" not in _filters_applied(resp):
                page = [d for d in page if d.artifact_type == self.artifact_type]
            entries.extend(page)
            next_url = parse_next_link(resp.headers.getall("Link", []), url)
            if next_url is None:
                break
            _check_advance(url, next_url, seen, what=f"referrers of {self.ref}")
            url = next_url
        return await self._classified(entries, "api")

    async def _tag_schema(self) -> list[Referrer]:
        tag = referrers_tag(self.digest)
        if tag not in await self.tags():
            return []  # no fallback index; the tag list is needed for cosign's tags anyway
        tag_ref = Reference(self.ref.repository, tag, None)
        try:
            index = await self.session.get_manifest(tag_ref, self.scope)
        except NotFound:
            return []
        if not isinstance(index, ImageIndex):
            raise InvalidContent(
                f"referrers tag {tag_ref} holds an image manifest, not the index of referrers"
            )
        entries = [
            d
            for d in index.manifests
            if self.artifact_type is None or d.artifact_type == self.artifact_type
        ]
        return await self._classified(entries, "tag-schema")

    async def _classified(
        self, entries: Sequence[Descriptor], source: ReferrerSource
    ) -> list[Referrer]:
        async def one(entry: Descriptor) -> Referrer:
            if entry.artifact_type and entry.artifact_type != EMPTY_MEDIA_TYPE:
                kind = referrer_kind(entry.artifact_type)
            else:
                kind = referrer_kind(*_media_types(await self._manifest(entry.digest)))
            return Referrer(
                entry.media_type,
                entry.digest,
                entry.size,
                entry.artifact_type,
                kind,
                source,
                entry.annotations,
            )

        return await _gather([partial(one, entry) for entry in entries])

    # -- cosign's legacy tags ---------------------------------------------------------------

    async def cosign_tagged(self) -> list[Referrer]:
        tagged = [
            (tag, kind)
            for tag in await self.tags()
            if (kind := cosign_tag_kind(tag, self.digest)) is not None
        ]
        results = await _gather([partial(self._cosign, tag, kind) for tag, kind in tagged])
        return [r for r in results if r is not None]

    async def _cosign(self, tag: str, kind: ReferrerKind) -> Referrer | None:
        """The referrer cosign tag ``tag`` names; None when it does not match the filter,
        or when it was deleted since the tag list was read."""
        try:
            return await self._cosign_tagged(tag, kind)
        except NotFound:
            return None

    async def _cosign_tagged(self, tag: str, kind: ReferrerKind) -> Referrer | None:
        tag_ref = Reference(self.ref.repository, tag, None)
        if self.artifact_type is not None:
            # Matching a filter needs the artifact type, which only the manifest says.
            fetched = await self.session.get_manifest(tag_ref, self.scope)
            artifact_type = _artifact_type(fetched)
            if artifact_type != self.artifact_type:
                return None
            return Referrer(
                fetched.media_type,
                fetched.digest,
                len(fetched.raw),
                artifact_type,
                kind,
                "cosign-tag",
                fetched.annotations,
                tag,
            )
        resp = await self.session.head_manifest(tag_ref, self.scope, what=f"cosign tag {tag_ref}")
        digest, media_type, size = _head_descriptor(resp)
        if digest is None or media_type is None or size is None:
            fetched = await self.session.get_manifest(tag_ref, self.scope)
            digest, media_type, size = fetched.digest, fetched.media_type, len(fetched.raw)
        return Referrer(media_type, digest, size, None, kind, "cosign-tag", {}, tag)

    # -- manifests read to classify ---------------------------------------------------------

    async def _manifest(self, digest: str) -> ImageManifest | ImageIndex:
        ref = Reference(self.ref.repository, None, parse_digest(digest))
        return await self.state.manifests.get(
            (self.session.host, self.ref.path, digest),
            lambda: self.session.get_manifest(ref, self.scope),
        )


def _media_types(fetched: ImageManifest | ImageIndex) -> list[str | None]:
    """A referrer manifest's telling media types: its artifactType, config and layers."""
    types: list[str | None] = [_declared_artifact_type(fetched)]
    if isinstance(fetched, ImageManifest):
        types.append(fetched.config.media_type)
        types.extend(layer.media_type for layer in fetched.layers)
    return types


def _declared_artifact_type(fetched: ImageManifest | ImageIndex) -> str | None:
    value = fetched.json().get("artifactType")
    return value if isinstance(value, str) and value else None


def _artifact_type(fetched: ImageManifest | ImageIndex) -> str | None:
    """The artifact type the referrers API would list: the manifest's own, else its
    config's media type."""
    declared = _declared_artifact_type(fetched)
    if declared is not None or isinstance(fetched, ImageIndex):
        return declared
    return fetched.config.media_type or None


def _head_descriptor(resp: Response) -> tuple[str | None, str | None, int | None]:
    """Digest, media type and size from a manifest ``HEAD``'s headers (None where missing)."""
    header = (resp.header("Docker-Content-Digest") or "").strip()
    try:
        digest = parse_digest(header) if header else None
    except UsageError:
        digest = None
    media_type = (resp.header("Content-Type") or "").partition(";")[0].strip() or None
    length = (resp.header("Content-Length") or "").strip()
    size = int(length) if length.isdigit() else None
    return digest, media_type, size


def _page(resp: Response) -> list[Descriptor]:
    where = f"{redact_url(resp.url)}: referrers"
    data = load_object(resp.body, where)
    manifests = data.get("manifests")
    if not isinstance(manifests, list):
        raise InvalidContent(f"{where} is not an image index (no manifests list)")
    return [Descriptor.from_json(entry, where=where) for entry in manifests]


def _filters_applied(resp: Response) -> set[str]:
    values = resp.headers.getall("OCI-Filters-Applied", [])
    return {name.strip() for value in values for name in value.split(",")}


def _check_advance(url: URL, next_url: URL, seen: set[str], *, what: str) -> None:
    if str(next_url) in seen:
        raise InvalidContent(
            f"{redact_url(url)}: pagination does not advance (next link {redact_url(next_url)})"
        )
    if len(seen) >= MAX_PAGES:
        raise InvalidContent(f"{what}: more than {MAX_PAGES} pages; giving up")


async def _gather(calls: Sequence[Callable[[], Awaitable[Referrer | None]]]) -> list[Referrer]:
    """Run ``calls`` at once; their results in the order of ``calls``."""
    if len(calls) < 2:  # the usual case in a scan: a task group would cost more than the call
        found = [await call() for call in calls]
        return [r for r in found if r is not None]
    results: list[Referrer | None] = [None] * len(calls)

    async def run(position: int, call: Callable[[], Awaitable[Referrer | None]]) -> None:
        results[position] = await call()

    async with anyio.create_task_group() as group:
        for position, call in enumerate(calls):
            group.start_soon(run, position, call)
    return [r for r in results if r is not None]
