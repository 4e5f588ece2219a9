"""The big public registries' known behaviours, against the simulator of ``support.fakeregistry``.

The client is the real one, over TLS, using the real host names (``registry-1.docker.io``,
``auth.docker.io``, ``ghcr.io``, an ECR host, ``quay.io``): a resolver maps exactly those
names to the simulator on 127.0.0.1 and the client trusts the tests' CA, so reference
normalisation, realm handling and host checks all run as they would on the internet, and
nothing can leave the machine. Each test asserts on the simulator's request log.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator

import pytest
from support.fakeregistry import (
    DOCKER_HUB_SOURCE,
    ECR_HOST,
    FakeRegistry,
    LoopbackResolver,
    Repo,
    docker_hub,
    ecr,
    ghcr,
    image_tags,
    many_tags,
    quay,
)

from aioregistry import (
    ConnectError,
    ImageIndex,
    RateLimit,
    RegistryClient,
    Unauthorized,
    UsageError,
)

pytestmark = pytest.mark.anyio

HUB = "registry-1.docker.io"
ECR_PASSWORD = "ecr-password-from-get-login"  # what `aws ecr get-login-password` prints
GHCR_TOKEN = "ghp_simulatedpersonalaccesstoken"
UBUNTU_TAGS = {"latest": "noble", "24.04": "noble", "noble": "noble", "22.04": "jammy"}
ECR_TAGS = [f"build-{i:04d}" for i in range(2500)]
# Quay lists in its own order (not sorted): the client must keep it.
QUAY_TAGS = [f"v{(i * 37) % 130:03d}" for i in range(130)]


@pytest.fixture
async def sim(sim_cert) -> AsyncIterator[FakeRegistry]:
    async with FakeRegistry(*sim_cert) as fake:
        fake.add(
            *docker_hub(
                {
                    "library/ubuntu": Repo(image_tags("library/ubuntu", UBUNTU_TAGS)),
                    "x/y": Repo(image_tags("x/y", {"1.0": "one"})),
                }
            )
        )
        fake.add(
            *ghcr(
                {
                    "owner/public": Repo(image_tags("owner/public", {"v1": "pub"})),
                    "owner/private": Repo(
                        image_tags("owner/private", {"v1": "priv"}), private=True
                    ),
                },
                users={"me": GHCR_TOKEN},
            )
        )
        fake.add(ecr({"team/app": Repo(many_tags(ECR_TAGS, "team/app"))}, ECR_PASSWORD))
        fake.add(*quay({"org/app": Repo(many_tags(QUAY_TAGS, "org/app"))}))
        yield fake


@pytest.fixture
async def anonymous(sim, registry_certs) -> AsyncIterator[tuple[RegistryClient, LoopbackResolver]]:
    async with sim.client(registry_certs.ca_file) as pair:
        yield pair


def hosts_looked_up(resolver: LoopbackResolver) -> set[str]:
    return {host for host, _ in resolver.lookups}


# -- the simulation itself -------------------------------------------------------------------


async def test_only_simulated_names_resolve(anonymous):
    client, resolver = anonymous
    with pytest.raises(ConnectError):
        await client.list_tags("registry.example.com/some/repo")
    assert ("registry.example.com", 443) in resolver.lookups


# -- Docker Hub ------------------------------------------------------------------------------


async def test_docker_hub_short_name_anonymous_token_and_rate_limit(sim, anonymous):
    client, resolver = anonymous
    index = sim.registries[HUB].repos["library/ubuntu"].tags["latest"]

    fetched = await client.fetch_manifest("ubuntu")
    assert isinstance(fetched, ImageIndex)
    assert fetched.digest == index.digest
    assert sorted(await client.list_tags("ubuntu")) == sorted(UBUNTU_TAGS)
    assert await client.get_rate_limit("ubuntu") == RateLimit(100, 75, 21600, DOCKER_HUB_SOURCE)

    (token_request,) = sim.requests(host="auth.docker.io")
    assert (token_request.method, token_request.path) == ("GET", "/token")
    assert token_request.param("service") == "registry.docker.io"
    assert token_request.params("scope") == ["repository:library/ubuntu:pull"]
    assert token_request.authorization is None  # anonymous
    registry_requests = sim.requests(host=HUB)
    assert [(s.method, s.path) for s in registry_requests] == [
        ("GET", "/v2/"),
        ("GET", "/v2/library/ubuntu/manifests/latest"),
        ("GET", "/v2/library/ubuntu/tags/list"),
        ("HEAD", "/v2/library/ubuntu/manifests/latest"),
    ]
    assert all(s.auth_scheme == "bearer" for s in registry_requests[1:])
    assert hosts_looked_up(resolver) == {HUB, "auth.docker.io"}


async def test_docker_hub_names_land_on_one_host(sim, anonymous):
    client, resolver = anonymous
    for name in ("docker.io/x/y", "index.docker.io/x/y", "registry-1.docker.io/x/y", "x/y"):
        assert await client.list_tags(name) == ["1.0"], name
    assert hosts_looked_up(resolver) == {HUB, "auth.docker.io"}
    assert {s.host for s in sim.log} == {HUB, "auth.docker.io"}
    assert len(sim.requests(host=HUB, path="/v2/")) == 1  # one registry, pinged once
    assert len(sim.requests(host="auth.docker.io")) == 1  # one scope, one token
    assert len(sim.requests(host=HUB, path="/v2/x/y/tags/list")) == 4


async def test_docker_hub_scan_heads_every_tag_and_gets_each_digest_once(sim, anonymous):
    client, _ = anonymous
    hub = sim.registries[HUB]
    pulls_before = hub.rate_limit.remaining
    results = [r async for r in client.scan("ubuntu", what="config")]

    assert sorted(r.tag for r in results) == sorted(UBUNTU_TAGS)
    assert all(r.error is None for r in results), [r.error for r in results]
    indexes = {item.digest: item for item in hub.repos["library/ubuntu"].tags.values()}
    assert {r.digest for r in results} == set(indexes)
    manifests = sim.requests(host=HUB, path="/v2/library/ubuntu/manifests/*")
    heads = sorted(s.path.rsplit("/", 1)[1] for s in manifests if s.method == "HEAD")
    gets = [s.path.rsplit("/", 1)[1] for s in manifests if s.method == "GET"]
    assert heads == sorted(UBUNTU_TAGS)  # a HEAD per tag: free under the pull limit
    assert all(g.startswith("sha256:") for g in gets)  # never a GET by tag
    children = {idx.child("linux/amd64").digest for idx in indexes.values()}
    assert sorted(gets) == sorted(set(indexes) | children)  # each digest once
    blobs = sim.requests(host=HUB, path="/v2/library/ubuntu/blobs/*")
    assert len(blobs) == len(children)
    assert pulls_before - hub.rate_limit.remaining == len(gets)


async def test_docker_hub_unknown_or_private_repository_is_a_bounded_unauthorized(sim, anonymous):
    # Docker Hub grants a token without the access it cannot give: the registry then answers
    # 401 insufficient_scope. One renewal, then a clear error; never a loop.
    client, _ = anonymous
    with pytest.raises(Unauthorized, match="anonymously"):
        await client.get_digest("someone/secret:1")
    assert len(sim.requests(host="auth.docker.io")) == 2
    manifests = sim.requests(host=HUB, path="/v2/someone/secret/*")
    assert [(s.method, s.status) for s in manifests] == [("HEAD", 401), ("HEAD", 401)]


# -- GHCR ----------------------------------------------------------------------------------------


async def test_ghcr_public_package_works_anonymously(sim, anonymous):
    client, _ = anonymous
    pushed = sim.registries["ghcr.io"].repos["owner/public"].tags["v1"]
    assert await client.get_digest("ghcr.io/owner/public:v1") == pushed.digest
    manifest = await client.get_manifest("ghcr.io/owner/public:v1")
    assert manifest.digest == pushed.child("linux/amd64").digest
    (token_request,) = sim.requests(path="/token")
    assert token_request.host == "ghcr.io"
    assert token_request.param("service") == "ghcr.io"
    assert token_request.params("scope") == ["repository:owner/public:pull"]
    assert token_request.authorization is None


async def test_ghcr_private_package_anonymous_is_unauthorized_without_a_storm(sim, anonymous):
    client, _ = anonymous
    for attempt in (1, 2):
        with pytest.raises(Unauthorized) as caught:
            await client.get_digest("ghcr.io/owner/private:v1")
        assert "anonymous" in str(caught.value)
        assert caught.value.status == 401
        # Each call: one token request, refused, and nothing else (the ping was the first's).
        assert len(sim.requests(path="/token")) == attempt
        assert [s.status for s in sim.requests(path="/token")] == [401] * attempt
    assert [(s.method, s.path) for s in sim.requests(host="ghcr.io", path="/v2/*")] == [
        ("GET", "/v2/")
    ]
    assert client.stats.retries == 0


async def test_ghcr_private_anonymous_message_suggests_logging_in(anonymous):
    client, _ = anonymous
    with pytest.raises(Unauthorized) as caught:
        await client.get_digest("ghcr.io/owner/private:v1")
    assert "log in" in str(caught.value) or "DOCKER_USER" in str(caught.value)


async def test_ghcr_private_package_with_a_token_as_password(sim, registry_certs):
    pushed = sim.registries["ghcr.io"].repos["owner/private"].tags["v1"]
    credentials = {"ghcr.io": ("me", GHCR_TOKEN)}
    async with sim.client(registry_certs.ca_file, credentials) as (client, _):
        assert await client.get_digest("ghcr.io/owner/private:v1") == pushed.digest
    (token_request,) = sim.requests(path="/token")
    assert token_request.status == 200
    assert token_request.auth_scheme == "basic"


# -- ECR -----------------------------------------------------------------------------------------


@pytest.fixture
async def ecr_client(sim, registry_certs) -> AsyncIterator[RegistryClient]:
    credentials = {ECR_HOST: ("AWS", ECR_PASSWORD)}
    async with sim.client(registry_certs.ca_file, credentials) as (client, _):
        yield client


def ecr_pages(sim: FakeRegistry) -> list[tuple[str | None, str | None, int]]:
    return [
        (s.param("n"), s.param("last"), s.status)
        for s in sim.requests(host=ECR_HOST, path="/v2/team/app/tags/list")
    ]


async def test_ecr_basic_challenge_with_user_aws(sim, ecr_client):
    pushed = sim.registries[ECR_HOST].repos["team/app"].tags[ECR_TAGS[0]]
    manifest = await ecr_client.get_manifest(f"{ECR_HOST}/team/app:{ECR_TAGS[0]}")
    assert manifest.digest == pushed.digest
    config = await ecr_client.get_config(f"{ECR_HOST}/team/app:{ECR_TAGS[1]}")
    assert config.digest == pushed.config_digest
    ping, *rest = sim.requests(host=ECR_HOST)
    assert (ping.path, ping.status, ping.authorization) == ("/v2/", 401, None)
    assert rest
    assert all(s.auth_scheme == "basic" and s.status == 200 for s in rest)
    assert not sim.requests(path="/token")
    assert ecr_client.stats.tokens_fetched == 0


async def test_ecr_without_credentials_is_one_clear_unauthorized(sim, anonymous):
    client, _ = anonymous
    with pytest.raises(Unauthorized, match="anonymously"):
        await client.get_digest(f"{ECR_HOST}/team/app:{ECR_TAGS[0]}")
    assert [(s.path, s.status) for s in sim.requests(host=ECR_HOST)] == [
        ("/v2/", 401),
        (f"/v2/team/app/manifests/{ECR_TAGS[0]}", 401),
    ]


async def test_ecr_refuses_n_above_1000(sim, registry_certs):
    # The simulator is faithful: a larger page size is a 400, so the clamp below matters.
    auth = "Basic " + base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode()
    async with sim.session() as session:
        url = f"https://{ECR_HOST}/v2/team/app/tags/list?n=1001"
        ssl_context = ssl.create_default_context(cafile=str(registry_certs.ca_file))
        async with session.get(url, headers={"Authorization": auth}, ssl=ssl_context) as resp:
            assert resp.status == 400
            assert "PAGINATION_NUMBER_INVALID" in await resp.text()


async def test_ecr_large_page_size_is_clamped_to_1000(sim, ecr_client):
    tags = await ecr_client.list_tags(f"{ECR_HOST}/team/app", page_size=5000)
    assert tags == ECR_TAGS
    assert ecr_pages(sim) == [
        ("1000", None, 200),
        ("1000", ECR_TAGS[999], 200),
        ("1000", ECR_TAGS[1999], 200),
    ]


async def test_ecr_link_pagination_with_small_pages(sim, ecr_client):
    tags = await ecr_client.list_tags(f"{ECR_HOST}/team/app", page_size=700)
    assert tags == ECR_TAGS
    assert [(n, status) for n, _, status in ecr_pages(sim)] == [("700", 200)] * 4


async def test_ecr_default_pages(sim, ecr_client):
    assert await ecr_client.list_tags(f"{ECR_HOST}/team/app") == ECR_TAGS
    assert [n for n, _, _ in ecr_pages(sim)] == [None, "1000", "1000"]


async def test_page_size_must_be_positive(sim, ecr_client):
    for bad in (0, -5):
        with pytest.raises(UsageError, match="page_size"):
            await ecr_client.list_tags(f"{ECR_HOST}/team/app", page_size=bad)
    assert not sim.requests(path="/v2/team/app/tags/list")


# -- Quay ----------------------------------------------------------------------------------------


def quay_pages(sim: FakeRegistry) -> list[tuple[str | None, str | None, int]]:
    return [
        (s.param("n"), s.param("last"), s.status)
        for s in sim.requests(host="quay.io", path="/v2/org/app/tags/list")
    ]


async def test_quay_small_pages_every_tag_once_in_order(sim, anonymous):
    client, _ = anonymous
    tags = await client.list_tags("quay.io/org/app")
    assert tags == QUAY_TAGS
    assert len(set(tags)) == 130
    assert quay_pages(sim) == [
        (None, None, 200),
        ("50", QUAY_TAGS[49], 200),
        ("50", QUAY_TAGS[99], 200),
    ]
    (token_request,) = sim.requests(host="quay.io", path="/v2/auth")
    assert token_request.param("service") == "quay.io"


async def test_quay_too_large_page_size_falls_back_to_its_own(sim, anonymous):
    client, _ = anonymous
    assert await client.list_tags("quay.io/org/app", page_size=500) == QUAY_TAGS
    assert quay_pages(sim) == [
        ("500", None, 413),  # refused once, then the registry's own page size
        (None, None, 200),
        ("50", QUAY_TAGS[49], 200),
        ("50", QUAY_TAGS[99], 200),
    ]


async def test_quay_page_size_within_its_limit(sim, anonymous):
    client, _ = anonymous
    assert await client.list_tags("quay.io/org/app", page_size=100) == QUAY_TAGS
    assert quay_pages(sim) == [("100", None, 200), ("100", QUAY_TAGS[99], 200)]
