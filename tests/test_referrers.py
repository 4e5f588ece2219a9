"""Referrers (issue 13): the referrers API, its fallback tag, and cosign's legacy tags.

Distribution 2.8 has no referrers API, so the real registry (``registry_referrers``, filled
by ``support.referrers`` as oras and cosign leave it) shows the fallback index and cosign 2's
tags; an in-process server (`support.fakes.FakeServer`) speaks the API for the rest:
pagination, a filter the server applies and one it leaves to the client, a subject with no
referrers, and a 404 that sends the client to the fallback once and for all. Requests are
counted, by kind (``client.stats``) or by path (``fake.seen``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from support.content import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, sha
from support.fakes import FakeServer, Handler
from support.referrers import BUNDLE, DSSE, EMPTY, REPOSITORY, SPDX

from aioregistry import (
    InvalidContent,
    NotFound,
    Referrer,
    RegistryClient,
    UsageError,
    referrer_kind,
)
from aioregistry._artifacts import cosign_tag_kind, referrers_tag

pytestmark = pytest.mark.anyio

HEX = "0123456789abcdef" * 4
SUBJECT = f"sha256:{HEX}"


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient(plain_http=True, use_env_credentials=False) as c:
        yield c


def _delta(client: RegistryClient, before: dict[str, int]) -> dict[str, int]:
    after = client.stats.requests
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


# -- the spec's tag-name rule and the classification ---------------------------------------


def test_referrers_tag_of_sha256_is_alg_dash_hex():
    assert referrers_tag(SUBJECT) == f"sha256-{HEX}"


def test_referrers_tag_cuts_the_encoded_part_to_64():
    encoded = HEX * 2  # sha512: 128 hex characters
    assert referrers_tag(f"sha512:{encoded}") == f"sha512-{HEX}"


def test_referrers_tag_cuts_the_algorithm_to_32():
    algorithm = "a" * 40
    assert referrers_tag(f"{algorithm}:abc") == f"{'a' * 32}-abc"


def test_referrers_tag_replaces_what_a_tag_cannot_hold():
    assert referrers_tag("multihash+base58:QmRZ=x/y") == "multihash-base58-QmRZ-x-y"
    # cut first, then replaced: a "+" past character 32 is cut away, not replaced
    algorithm = "b" * 31 + "+" + "c" * 5
    assert referrers_tag(f"{algorithm}:e") == f"{'b' * 31}--e"


def test_referrers_tag_refuses_what_is_not_a_digest():
    with pytest.raises(ValueError, match="not a digest"):
        referrers_tag("sha256")


@pytest.mark.parametrize(
    ("media_types", "kind"),
    [
        (("application/vnd.dev.cosign.simplesigning.v1+json",), "signature"),
        (("application/vnd.dev.sigstore.bundle.v0.3+json",), "signature"),
        (("application/vnd.dev.sigstore.bundle.v0.2+json",), "signature"),
        (("application/vnd.cncf.notary.signature",), "signature"),
        (("application/spdx+json",), "sbom"),
        (("text/spdx; charset=utf-8",), "sbom"),
        (("application/vnd.cyclonedx+json",), "sbom"),
        (("application/vnd.cyclonedx+xml",), "sbom"),
        (("application/vnd.in-toto+json",), "attestation"),
        (("APPLICATION/VND.DSSE.ENVELOPE.V1+JSON",), "attestation"),
        (("application/vnd.example.thing",), "other"),
        ((None, EMPTY, DSSE), "attestation"),  # the empty type says nothing; a layer tells
        ((), "other"),
    ],
)
def test_referrer_kind(media_types, kind):
    assert referrer_kind(*media_types) == kind


def test_cosign_tag_kind_knows_only_the_digests_own_tags():
    assert cosign_tag_kind(f"sha256-{HEX}.sig", SUBJECT) == "signature"
    assert cosign_tag_kind(f"sha256-{HEX}.att", SUBJECT) == "attestation"
    assert cosign_tag_kind(f"sha256-{HEX}.sbom", SUBJECT) == "sbom"
    assert cosign_tag_kind(f"sha256-{HEX}", SUBJECT) is None  # the fallback index
    assert cosign_tag_kind(f"sha256-{HEX}.txt", SUBJECT) is None
    assert cosign_tag_kind(f"sha256-{'f' * 64}.sig", SUBJECT) is None  # another digest


# -- the real registry: no API, the fallback index and cosign 2's tags ----------------------


@pytest.fixture
def refs(registry_referrers):
    return registry_referrers


def _by_digest(referrers: list[Referrer]) -> dict[str, Referrer]:
    assert len({r.digest for r in referrers}) == len(referrers)
    return {r.digest: r for r in referrers}


async def test_signed_image_on_a_registry_without_the_api(client, refs):
    registry, content = refs
    before = client.stats.requests
    found = _by_digest(await client.list_referrers(f"{registry.host}/{REPOSITORY}:signed"))
    signed = content.images["signed"]
    sig = content.cosign[f"{signed.digest.replace(':', '-')}.sig"]
    att = content.cosign[f"{signed.digest.replace(':', '-')}.att"]
    assert set(found) == {
        content.sbom.digest,
        content.bundle.digest,
        content.attestation.digest,
        sig.digest,
        att.digest,
    }
    sbom = found[content.sbom.digest]
    assert (sbom.kind, sbom.source, sbom.artifact_type) == ("sbom", "tag-schema", SPDX)
    assert (sbom.media_type, sbom.size) == (OCI_MANIFEST, content.sbom.size)
    assert sbom.annotations == content.sbom.annotations
    # Listed with the empty type (GHCR) and with none: their manifests tell.
    bundle = found[content.bundle.digest]
    assert (bundle.kind, bundle.artifact_type) == ("signature", EMPTY)
    attestation = found[content.attestation.digest]
    assert (attestation.kind, attestation.artifact_type) == ("attestation", None)
    assert (found[sig.digest].kind, found[sig.digest].source) == ("signature", "cosign-tag")
    assert found[sig.digest].tag == f"{signed.digest.replace(':', '-')}.sig"
    assert (found[sig.digest].size, found[sig.digest].media_type) == (sig.size, OCI_MANIFEST)
    assert found[att.digest].kind == "attestation"
    # One HEAD for the tag, one referrers probe (404), one tag list, the fallback index and
    # the two manifests that classify, one HEAD per cosign tag.
    assert _delta(client, before) == {
        "ping": 1,
        "manifest-head": 3,
        "referrers": 1,
        "tags": 1,
        "manifest": 3,
    }
    # Again: the registry is known to have no API, and the classifying manifests are kept.
    before = client.stats.requests
    again = await client.list_referrers(f"{registry.host}/{REPOSITORY}@{signed.digest}")
    assert _by_digest(again) == found
    assert _delta(client, before) == {"manifest-head": 2, "tags": 1, "manifest": 1}


async def test_cosign_legacy_tags_only(client, refs):
    registry, content = refs
    legacy = content.images["legacy"]
    stem = legacy.digest.replace(":", "-")
    found = _by_digest(await client.list_referrers(f"{registry.host}/{REPOSITORY}:legacy"))
    expected = {content.cosign[f"{stem}.sig"].digest: "signature"}
    expected[content.cosign[f"{stem}.sbom"].digest] = "sbom"
    assert {d: r.kind for d, r in found.items()} == expected
    assert all(r.source == "cosign-tag" and r.artifact_type is None for r in found.values())


async def test_an_image_with_none(client, refs):
    registry, _ = refs
    before = client.stats.requests
    assert await client.list_referrers(f"{registry.host}/{REPOSITORY}:plain") == []
    # No fallback tag in the tag list: no GET for it.
    assert "manifest" not in _delta(client, before)


async def test_artifact_type_filter_on_the_fallback_index(client, refs):
    registry, content = refs
    found = await client.list_referrers(f"{registry.host}/{REPOSITORY}:signed", artifact_type=SPDX)
    assert [r.digest for r in found] == [content.sbom.digest]
    # cosign's tags are matched by their manifest's type (an image config here).
    found = await client.list_referrers(
        f"{registry.host}/{REPOSITORY}:signed", artifact_type=OCI_CONFIG
    )
    assert {r.tag for r in found} == {
        f"{content.images['signed'].digest.replace(':', '-')}.{s}" for s in ("sig", "att")
    }
    assert all(r.artifact_type == OCI_CONFIG for r in found)


async def test_a_token_registry_without_the_api(registry_token, fresh_issuer):
    # Under bearer auth the probe carries the pull token; its 404 is "no API", not an error.
    async with RegistryClient(use_env_credentials=False) as client:
        assert await client.list_referrers(f"{registry_token.host}/test/multi:oci") == []
        assert await client.list_referrers(f"{registry_token.host}/test/single:v1") == []
        assert client.stats.requests["referrers"] == 1
        assert client.stats.tokens_fetched == 2  # one per repository, none for the probe


async def test_a_bad_artifact_type_is_a_usage_error(client, refs):
    registry, _ = refs
    with pytest.raises(UsageError, match="invalid artifact type 'spdx'"):
        await client.list_referrers(f"{registry.host}/{REPOSITORY}:signed", artifact_type="spdx")


# -- a registry that speaks the referrers API ---------------------------------------------


def _entry(number: int, artifact_type: str | None) -> dict[str, object]:
    entry: dict[str, object] = {
        "mediaType": OCI_MANIFEST,
        "digest": f"sha256:{number:064x}",
        "size": 100 + number,
        "annotations": {"n": str(number)},
    }
    if artifact_type is not None:
        entry["artifactType"] = artifact_type
    return entry


class ReferrersAPI:
    """``GET /v2/app/referrers/<digest>``: ``entries`` of the subject, ``page`` a page,
    filtering by ``artifactType`` (and saying so) when ``filters``."""

    def __init__(self, entries: list[dict[str, object]], *, page: int = 100, filters: bool) -> None:
        self.entries = entries
        self.page = page
        self.filters = filters

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        entries = self.entries if request.path.endswith(SUBJECT) else []
        headers = {"Content-Type": OCI_INDEX}
        wanted = request.query.get("artifactType")
        if wanted is not None and self.filters:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        start = int(request.query.get("start", "0"))
        chunk = entries[start : start + self.page]
        if start + self.page < len(entries):
            query = f"start={start + self.page}" + (f"&artifactType={wanted}" if wanted else "")
            headers["Link"] = f'<{request.path}?{query}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": chunk}
        return web.Response(body=json.dumps(body).encode(), headers=headers)


def _fake_with(api: Handler | None, tags: list[str] | None = None) -> FakeServer:
    fake = FakeServer()
    if api is not None:
        fake.route("GET", "/v2/app/referrers/*")(api)

    @fake.route("GET", "/v2/app/tags/list")
    async def tag_list(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": "app", "tags": tags or []})

    return fake


def _referrers_requests(fake: FakeServer) -> list[web.Request]:
    return [r for r in fake.seen if r.path.startswith("/v2/app/referrers/")]


async def test_every_page_of_the_api(client):
    entries = [_entry(n, SPDX if n % 2 else BUNDLE) for n in range(1, 6)]
    async with _fake_with(ReferrersAPI(entries, page=2, filters=True)) as fake:
        found = await client.list_referrers(f"{fake.host}/app@{SUBJECT}")
    assert [r.digest for r in found] == [e["digest"] for e in entries]
    assert [r.kind for r in found] == ["sbom", "signature", "sbom", "signature", "sbom"]
    assert {r.source for r in found} == {"api"}
    assert found[0].annotations == {"n": "1"}
    assert found[0].size == 101
    assert len(_referrers_requests(fake)) == 3


async def test_a_filter_the_server_applies(client):
    entries = [_entry(n, SPDX if n % 2 else BUNDLE) for n in range(1, 6)]
    async with _fake_with(ReferrersAPI(entries, page=2, filters=True)) as fake:
        found = await client.list_referrers(f"{fake.host}/app@{SUBJECT}", artifact_type=BUNDLE)
    assert [r.digest for r in found] == [entries[1]["digest"], entries[3]["digest"]]
    requests = _referrers_requests(fake)
    assert [r.query.get("artifactType") for r in requests] == [BUNDLE]  # one page: filtered


async def test_a_filter_left_to_the_client(client):
    entries = [_entry(n, SPDX if n % 2 else BUNDLE) for n in range(1, 6)]
    async with _fake_with(ReferrersAPI(entries, page=2, filters=False)) as fake:
        found = await client.list_referrers(f"{fake.host}/app@{SUBJECT}", artifact_type=BUNDLE)
    assert [r.digest for r in found] == [entries[1]["digest"], entries[3]["digest"]]
    assert len(_referrers_requests(fake)) == 3  # the server sent everything, page by page


async def test_what_the_server_says_it_filtered_is_not_filtered_again(client):
    """With ``OCI-Filters-Applied: artifactType`` the server's answer is the filtered list:
    an entry it lists without its artifact type (the type is in its manifest) is kept, where
    filtering again by the descriptor would drop it."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": {"mediaType": EMPTY, "digest": sha(b"{}"), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 100},
        }
    ).encode()
    entry = {"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest)}

    async def api(request: web.Request) -> web.StreamResponse:
        assert request.query.get("artifactType") == BUNDLE
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        headers = {"Content-Type": OCI_INDEX, "OCI-Filters-Applied": "artifactType"}
        return web.Response(body=json.dumps(body).encode(), headers=headers)

    async with _fake_with(api) as fake:

        @fake.route("GET", f"/v2/app/manifests/{sha(manifest)}")
        async def get_manifest(_: web.Request) -> web.StreamResponse:
            return web.Response(body=manifest, content_type=OCI_MANIFEST)

        found = await client.list_referrers(f"{fake.host}/app@{SUBJECT}", artifact_type=BUNDLE)
    assert [r.digest for r in found] == [sha(manifest)]
    assert found[0].kind == "signature"


async def test_a_subject_with_no_referrers_is_an_empty_index(client):
    async with _fake_with(ReferrersAPI([_entry(1, SPDX)], filters=True)) as fake:
        other = "sha256:" + "e" * 64
        assert await client.list_referrers(f"{fake.host}/app@{other}") == []
        assert await client.list_referrers(f"{fake.host}/app@{other}") == []
    # The API was asked both times, and no fallback tag was looked for.
    assert len(_referrers_requests(fake)) == 2
    assert not [r for r in fake.seen if "/manifests/" in r.path]


async def test_an_entry_without_a_type_is_classified_by_its_manifest_once(client):
    config = b"{}"
    payload = b'{"payloadType":"x"}'
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": EMPTY, "digest": sha(config), "size": 2},
            "layers": [{"mediaType": DSSE, "digest": sha(payload), "size": len(payload)}],
        }
    ).encode()
    entry = {"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest)}
    entry["artifactType"] = EMPTY
    async with _fake_with(ReferrersAPI([entry], filters=True)) as fake:

        @fake.route("GET", f"/v2/app/manifests/{sha(manifest)}")
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.Response(body=manifest, headers={"Content-Type": OCI_MANIFEST})

        for _ in range(2):
            (found,) = await client.list_referrers(f"{fake.host}/app@{SUBJECT}")
            assert (found.kind, found.artifact_type) == ("attestation", EMPTY)
    assert len(fake.requests_to(f"/v2/app/manifests/{sha(manifest)}")) == 1


async def test_a_registry_without_the_api_is_asked_once(client):
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [_entry(7, SPDX)]}
    ).encode()
    fallback = referrers_tag(SUBJECT)
    async with _fake_with(None, tags=[fallback]) as fake:  # referrers: the default 404

        @fake.route("GET", f"/v2/app/manifests/{fallback}")
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.Response(body=index, headers={"Content-Type": OCI_INDEX})

        for _ in range(3):
            (found,) = await client.list_referrers(f"{fake.host}/app@{SUBJECT}")
            assert (found.digest, found.kind, found.source) == (
                f"sha256:{7:064x}",
                "sbom",
                "tag-schema",
            )
    assert len(_referrers_requests(fake)) == 1
    assert len(fake.requests_to(f"/v2/app/manifests/{fallback}")) == 3


async def test_concurrent_first_calls_probe_the_api_once(client):
    probes = 0

    async def slow_404(request: web.Request) -> web.StreamResponse:
        nonlocal probes
        probes += 1
        await asyncio.sleep(0.05)  # the other calls arrive while this probe is out
        raise web.HTTPNotFound(text="404 page not found")

    async with _fake_with(slow_404) as fake, anyio.create_task_group() as group:
        for n in range(4):
            digest = f"sha256:{n:064x}"
            group.start_soon(client.list_referrers, f"{fake.host}/app@{digest}")
    assert probes == 1


async def test_cosign_tags_beside_the_api(client):
    sig_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(b"c"), "size": 1},
            "layers": [],
        }
    ).encode()
    tag = f"sha256-{HEX}.sig"
    async with _fake_with(ReferrersAPI([_entry(1, SPDX)], filters=True), tags=[tag]) as fake:

        @fake.route("GET", f"/v2/app/manifests/{tag}")
        async def serve(request: web.Request) -> web.StreamResponse:
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha(sig_manifest)}
            return web.Response(body=sig_manifest, headers=headers)

        found = await client.list_referrers(f"{fake.host}/app@{SUBJECT}")
    assert [(r.source, r.kind) for r in found] == [("api", "sbom"), ("cosign-tag", "signature")]
    assert found[1].digest == sha(sig_manifest)
    assert found[1].size == len(sig_manifest)
    assert [r.method for r in fake.requests_to(f"/v2/app/manifests/{tag}")] == ["HEAD"]


async def test_a_page_loop_is_refused(client):
    async def loop(request: web.Request) -> web.StreamResponse:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [_entry(1, SPDX)]}
        headers = {"Content-Type": OCI_INDEX, "Link": f'<{request.path}>; rel="next"'}
        return web.Response(body=json.dumps(body).encode(), headers=headers)

    async with _fake_with(loop) as fake:
        with pytest.raises(InvalidContent, match="pagination does not advance"):
            await client.list_referrers(f"{fake.host}/app@{SUBJECT}")


async def test_a_known_tag_list_is_not_fetched_again(client):
    # What a scan does: it has the tag list, and passes it (the operation, not the client).
    from aioregistry import _referrers  # noqa: PLC0415
    from aioregistry._references import parse_reference  # noqa: PLC0415

    tag = f"sha256-{HEX}.sig"
    async with _fake_with(None) as fake:

        @fake.route("GET", f"/v2/app/manifests/{tag}")
        async def serve(request: web.Request) -> web.StreamResponse:
            body = b'{"schemaVersion":2}'
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha(body)}
            return web.Response(body=body, headers=headers)

        ref = parse_reference(f"{fake.host}/app@{SUBJECT}")
        session, scope = await client._sessions.pull(ref.repository, "image")
        state = _referrers.ReferrersState()
        gone = f"sha256-{HEX}.att"  # deleted since the list was read: left out, no error
        found = await _referrers.list_referrers(
            session, ref, scope, state=state, tags=["v1", tag, gone, "latest"]
        )
    assert [(r.kind, r.tag) for r in found] == [("signature", tag)]
    assert not fake.requests_to("/v2/app/tags/list")
    # No fallback tag in the list given: it is not asked for either.
    assert not fake.requests_to(f"/v2/app/manifests/{referrers_tag(SUBJECT)}")
    assert state.api == {fake.host: False}


async def test_a_404_about_the_repository_teaches_nothing_about_the_api(client):
    # A registry with the API answers NAME_UNKNOWN for a repository it does not hold; that
    # must not make the client treat the host as one without the API from then on.
    async def api(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/v2/gone/"):
            body = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
            return web.json_response(body, status=404)
        return await ReferrersAPI([_entry(1, SPDX)], filters=True)(request)

    async with _fake_with(api) as fake:
        fake.route("GET", "/v2/gone/referrers/*")(api)

        @fake.route("GET", "/v2/gone/tags/list")
        async def gone(request: web.Request) -> web.StreamResponse:
            body = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
            return web.json_response(body, status=404)

        with pytest.raises(NotFound):
            await client.list_referrers(f"{fake.host}/gone@{SUBJECT}")
        (found,) = await client.list_referrers(f"{fake.host}/app@{SUBJECT}")
    assert (found.source, found.kind) == ("api", "sbom")
