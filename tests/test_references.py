"""Parsing and normalising image references, repository names and digests."""

from __future__ import annotations

import dataclasses
import re

import pytest

from aioregistry._exceptions import InvalidReference, UsageError
from aioregistry._references import (
    DEFAULT_TAG,
    DOCKER_HUB_REGISTRY,
    Reference,
    Repository,
    is_loopback_host,
    parse_digest,
    parse_reference,
    parse_repository,
    split_digest,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA256_OTHER = "sha256:" + "f" * 64
SHA512 = "sha512:" + "0123456789abcdef" * 8


# --- normalisation ----------------------------------------------------------------------------

# Each row: the input, then the registry, path, tag and digest it must give.
NORMALISATION = [
    ("ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("ubuntu:22.04", DOCKER_HUB_REGISTRY, "library/ubuntu", "22.04", None),
    ("docker.io/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("docker.io/library/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("index.docker.io/library/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("index.docker.io/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("registry-1.docker.io/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("Docker.IO/ubuntu", DOCKER_HUB_REGISTRY, "library/ubuntu", "latest", None),
    ("docker.io/x/y", DOCKER_HUB_REGISTRY, "x/y", "latest", None),
    ("org/team/app", DOCKER_HUB_REGISTRY, "org/team/app", "latest", None),
    ("x/y:v1", DOCKER_HUB_REGISTRY, "x/y", "v1", None),
    ("localhost/x", "localhost", "x", "latest", None),
    ("localhost:5000/x", "localhost:5000", "x", "latest", None),
    ("localhost:5000/x:tag", "localhost:5000", "x", "tag", None),
    ("127.0.0.1:5000/ubuntu", "127.0.0.1:5000", "ubuntu", "latest", None),
    ("127.0.0.1:5000/x/y:tag", "127.0.0.1:5000", "x/y", "tag", None),
    ("example.com/a/b/c@" + SHA256, "example.com", "a/b/c", None, SHA256),
    ("example.com/a:t@" + SHA256, "example.com", "a", "t", SHA256),
    ("ubuntu@" + SHA256, DOCKER_HUB_REGISTRY, "library/ubuntu", None, SHA256),
    ("ubuntu:22.04@" + SHA512, DOCKER_HUB_REGISTRY, "library/ubuntu", "22.04", SHA512),
    ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
    ("[::1]/x", "[::1]", "x", "latest", None),
    ("[FE80::1]:5000/x", "[fe80::1]:5000", "x", "latest", None),
    ("Example.COM/a", "example.com", "a", "latest", None),
    (
        "REGISTRY.Example.com:8443/team/app:V1.0",
        "registry.example.com:8443",
        "team/app",
        "V1.0",
        None,
    ),
    ("my-host.local:1/a.b_c__d-e---f/g", "my-host.local:1", "a.b_c__d-e---f/g", "latest", None),
    ("host:65535/x", "host:65535", "x", "latest", None),
    # without a '.', ':' or 'localhost' the first component is a path, not a host
    ("myhost/x", DOCKER_HUB_REGISTRY, "myhost/x", "latest", None),
    ("localhostx/y", DOCKER_HUB_REGISTRY, "localhostx/y", "latest", None),
    # with no '/', a ':' is a tag: this is Docker Hub's library/localhost, tag 5000
    ("localhost:5000", DOCKER_HUB_REGISTRY, "library/localhost", "5000", None),
    ("x:_under", DOCKER_HUB_REGISTRY, "library/x", "_under", None),
    ("x:" + "a" * 128, DOCKER_HUB_REGISTRY, "library/x", "a" * 128, None),
    ("x:A.b-C_9", DOCKER_HUB_REGISTRY, "library/x", "A.b-C_9", None),
    ("a/" + "b" * 243, DOCKER_HUB_REGISTRY, "a/" + "b" * 243, "latest", None),
    ("b" * 237, DOCKER_HUB_REGISTRY, "library/" + "b" * 237, "latest", None),
    ("example.com/" + "a" * 243, "example.com", "a" * 243, "latest", None),
    # the limit is on the path, after normalisation; the host does not count
    ("b" * 247, DOCKER_HUB_REGISTRY, "library/" + "b" * 247, "latest", None),
    ("a/" + "b" * 253, DOCKER_HUB_REGISTRY, "a/" + "b" * 253, "latest", None),
    ("example.com/" + "a" * 255, "example.com", "a" * 255, "latest", None),
    ("example.com:5000/a/" + "b" * 253, "example.com:5000", "a/" + "b" * 253, "latest", None),
    # the long form of Docker Hub does not count against the limit
    ("registry-1.docker.io/a/" + "b" * 243, DOCKER_HUB_REGISTRY, "a/" + "b" * 243, "latest", None),
]


@pytest.mark.parametrize(("text", "registry", "path", "tag", "digest"), NORMALISATION)
def test_parse_reference_normalises(text, registry, path, tag, digest):
    ref = parse_reference(text)
    assert ref.repository == Repository(registry, path)
    assert (ref.registry, ref.path, ref.tag, ref.digest) == (registry, path, tag, digest)


@pytest.mark.parametrize(("text", "registry", "path", "tag", "digest"), NORMALISATION)
def test_str_round_trips(text, registry, path, tag, digest):
    ref = parse_reference(text)
    expected = f"{registry}/{path}"
    if tag is not None:
        expected += f":{tag}"
    if digest is not None:
        expected += f"@{digest}"
    assert str(ref) == expected
    assert parse_reference(str(ref)) == ref
    assert str(ref.repository) == f"{registry}/{path}"


def test_ubuntu_full_form():
    assert str(parse_reference("ubuntu")) == "registry-1.docker.io/library/ubuntu:latest"
    assert DEFAULT_TAG == "latest"
    assert DOCKER_HUB_REGISTRY == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", "registry-1.docker.io/library/ubuntu"),
        ("docker.io/x/y", "registry-1.docker.io/x/y"),
        ("index.docker.io/library/ubuntu", "registry-1.docker.io/library/ubuntu"),
        ("127.0.0.1:5000/ubuntu", "127.0.0.1:5000/ubuntu"),
        ("[::1]:5000/a/b", "[::1]:5000/a/b"),
        ("Example.com/a", "example.com/a"),
    ],
)
def test_parse_repository(text, expected):
    repository = parse_repository(text)
    assert str(repository) == expected
    assert isinstance(repository, Repository)


# --- identifier and with_digest ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("ubuntu", "latest"),
        ("ubuntu:22.04", "22.04"),
        ("ubuntu@" + SHA256, SHA256),
        ("ubuntu:22.04@" + SHA256, SHA256),
    ],
)
def test_identifier_prefers_digest(text, identifier):
    assert parse_reference(text).identifier == identifier


def test_with_digest_keeps_tag_and_replaces_digest():
    ref = parse_reference("example.com/a:v1")
    pinned = ref.with_digest(SHA256)
    assert pinned.repository == ref.repository
    assert pinned.tag == "v1"
    assert pinned.digest == SHA256
    assert pinned.identifier == SHA256
    assert str(pinned) == f"example.com/a:v1@{SHA256}"
    repinned = pinned.with_digest(SHA256_OTHER)
    assert repinned.digest == SHA256_OTHER
    assert repinned.tag == "v1"
    assert ref.digest is None  # frozen: the original is unchanged


def test_with_digest_on_digest_only_reference():
    ref = parse_reference("ubuntu@" + SHA256)
    assert ref.with_digest(SHA512) == Reference(ref.repository, None, SHA512)


def test_with_digest_validates():
    ref = parse_reference("ubuntu")
    with pytest.raises(InvalidReference, match=r'invalid digest "sha256:abc": sha256 needs 64'):
        ref.with_digest("sha256:abc")


def test_references_are_frozen_hashable_values():
    a = parse_reference("docker.io/ubuntu")
    b = parse_reference("ubuntu:latest")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tag = "other"  # type: ignore[misc]
    assert not hasattr(a, "__dict__")  # slots


def test_invalid_reference_is_a_usage_and_value_error():
    with pytest.raises(ValueError, match="empty reference"):
        parse_reference("")
    assert issubclass(InvalidReference, UsageError)


# --- errors --------------------------------------------------------------------------------------

# Each row: the input, then what the message must say after quoting it.
REFERENCE_ERRORS = [
    ("Foo/bar", 'repository path component "Foo" must be lower case'),
    ("UBUNTU", 'repository path component "UBUNTU" must be lower case'),
    ("example.com/Team/app", 'repository path component "Team" must be lower case'),
    ("LOCALHOST/x", 'repository path component "LOCALHOST" must be lower case'),
    ("x:bad tag!", 'tag "bad tag!" may hold only letters'),
    ("x:t@g", 'digest "g": a digest is algorithm:encoded'),
    ("x:-a", 'tag "-a" must not start with "-"'),
    ("x:.a", 'tag ".a" must not start with "."'),
    ("x:" + "a" * 129, 'tag "' + "a" * 129 + '" is too long (129 characters, at most 128)'),
    ("ubuntu:", "empty tag after ':'"),
    ("ubuntu@", "empty digest after '@'"),
    ("x@sha256:abc", 'digest "sha256:abc": sha256 needs 64 hex characters, got 3'),
    ("x@sha256:" + "A" * 64, "sha256 needs 64 hex characters in lower case"),
    ("x@sha512:" + "a" * 64, "sha512 needs 128 hex characters, got 64"),
    ("x@sha256", 'digest "sha256": a digest is algorithm:encoded'),
    ("x@SHA256:" + "a" * 64, 'algorithm "SHA256" must be lower-case'),
    ("x@" + SHA256 + "@" + SHA256, "sha256 needs 64 hex characters, got 136"),
    ("a//b", 'repository path "a//b" has an empty component'),
    ("/ubuntu", 'repository path "/ubuntu" has an empty component'),
    ("a/", 'repository path "a/" has an empty component'),
    ("example.com/", "empty repository path"),
    ("example.com//a", 'repository path "/a" has an empty component'),
    (":tag", "empty repository name"),
    ("@" + SHA256, "empty repository name"),
    ("a___b", 'repository path component "a___b" is invalid'),
    ("a/-b", 'repository path component "-b" is invalid'),
    ("a/b.", 'repository path component "b." is invalid'),
    ("ubu ntu", 'repository path component "ubu ntu" is invalid'),
    (" ubuntu", "leading or trailing whitespace"),
    ("ubuntu\n", "leading or trailing whitespace"),
    ("host:99999/x", "registry port 99999 is out of range (1-65535)"),
    ("host:0/x", "registry port 0 is out of range"),
    ("host:abc/x", 'registry port "abc" is not a number'),
    ("host:/x", 'registry port "" is not a number'),
    ("[::1]:x/y", 'registry port "x" is not a number'),
    ("ex_ample.com/x", 'registry host "ex_ample.com": domain component "ex_ample"'),
    ("-bad.com/x", 'domain component "-bad"'),
    ("a..b/c", 'registry host "a..b" has an empty domain component'),
    (".com/x", 'registry host ".com" has an empty domain component'),
    (":5000/x", 'registry host ":5000" has an empty host name'),
    ("[::1/x", "registry host \"[::1\" has no closing ']'"),
    ("[zz]/x", 'registry host "[zz]": "zz" is not an IPv6 address'),
    ("[::1%lo]/x", 'registry host "[::1%lo]": "::1%lo" is not an IPv6 address'),
    ("[::1]5000/x", 'registry host "[::1]5000" has "5000" after the IPv6 address'),
    ("[::1]:5000", 'registry host "[::1]:5000" is not followed by a repository path'),
    ("[::1]", 'registry host "[::1]" is not followed by a repository path'),
    ("a" * 600, "is too long (608 characters, at most 255)"),
    ("example.com/" + "a" * 256, "is too long (256 characters, at most 255)"),
    # counted as distribution/reference v0.6.0 does: the path after normalisation, no host
    ("b" * 248, 'repository path "library/..."'),
    ("b" * 248, "is too long (256 characters, at most 255)"),
    ("a/" + "b" * 254, 'repository path "a/bbbbbb..."'),
    ("registry-1.docker.io/a/" + "b" * 254, "is too long (256 characters, at most 255)"),
    ("a" * 256 + ".com/x", "registry host is too long (260 characters, at most 255)"),
    # an image ID is not a repository (docker.io/<hex> is, see the peer tables)
    ("0123456789abcdef" * 4, "64 hex digits are an image ID, not a repository name"),
    ("[::ffff:127.0.0.1]:5000/x", "an IPv6 address with an embedded IPv4 part"),
]


@pytest.mark.parametrize(("text", "problem"), REFERENCE_ERRORS)
def test_parse_reference_errors_name_input_and_part(text, problem):
    quoted = re.escape(_go_quote(text))
    with pytest.raises(
        InvalidReference, match=f"^invalid reference {quoted}: .*{re.escape(problem)}"
    ):
        parse_reference(text)


@pytest.mark.parametrize(("text", "problem"), REFERENCE_ERRORS)
def test_parse_repository_rejects_the_same_names(text, problem):
    with pytest.raises(InvalidReference, match=re.escape(problem)):
        parse_repository(text)


def test_empty_reference():
    with pytest.raises(InvalidReference, match=r"^empty reference$"):
        parse_reference("")
    with pytest.raises(InvalidReference, match=r"^empty reference$"):
        parse_repository("")


def test_long_input_is_shortened_in_the_message():
    text = "a" * 1000
    with pytest.raises(InvalidReference, match="is too long") as info:
        parse_reference(text)
    assert len(str(info.value)) < 400
    assert '..."' in str(info.value)


def test_control_characters_are_escaped_in_the_message():
    with pytest.raises(InvalidReference, match=r'^invalid reference "a\\tb": ') as info:
        parse_reference("a\tb")
    assert "\t" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ubuntu:22.04", 'repository name must not carry a tag (found "22.04")'),
        ("ubuntu@" + SHA256, f'repository name must not carry a digest (found "{SHA256}")'),
        ("example.com:5000/a:b", 'must not carry a tag (found "b")'),
        ("a:t@" + SHA256, "must not carry a digest"),
    ],
)
def test_parse_repository_rejects_tag_and_digest(text, problem):
    with pytest.raises(
        InvalidReference, match=f"^invalid reference {re.escape(_go_quote(text))}: "
    ):
        parse_repository(text)
    with pytest.raises(InvalidReference, match=re.escape(problem)):
        parse_repository(text)


def test_constructor_checks_reference():
    repository = Repository("example.com", "a")
    with pytest.raises(InvalidReference, match="needs a tag or a digest"):
        Reference(repository, None, None)
    with pytest.raises(InvalidReference, match='tag "bad tag"'):
        Reference(repository, "bad tag", None)
    with pytest.raises(InvalidReference, match="sha256 needs 64 hex characters"):
        Reference(repository, None, "sha256:abc")
    assert Reference(repository, "v1", None).identifier == "v1"


@pytest.mark.parametrize(
    ("registry", "path", "problem"),
    [
        ("Example.com", "a", 'registry host "Example.com" must be lower case'),
        ("example.com", "A", 'repository path component "A" must be lower case'),
        ("example.com", "", 'repository path "" has an empty component'),
        ("example.com:x", "a", 'registry port "x" is not a number'),
        ("", "a", 'registry host "" has an empty host name'),
    ],
)
def test_constructor_checks_repository(registry, path, problem):
    with pytest.raises(InvalidReference, match=f"^invalid repository .*{re.escape(problem)}"):
        Repository(registry, path)


# --- digests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "algorithm", "encoded"),
    [
        (SHA256, "sha256", SHA256.partition(":")[2]),
        (SHA512, "sha512", SHA512.partition(":")[2]),
        (
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            "multihash+base58",
            "QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        ),
        (
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
            "sha256+b64u",
            "LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        ),
        ("blake3:abc=", "blake3", "abc="),
        ("a.b-c_d:x", "a.b-c_d", "x"),
    ],
)
def test_valid_digests(digest, algorithm, encoded):
    assert parse_digest(digest) == digest
    assert split_digest(digest) == (algorithm, encoded)


@pytest.mark.parametrize(
    ("digest", "problem"),
    [
        ("sha256:abc", "sha256 needs 64 hex characters, got 3"),
        ("sha256:" + "a" * 65, "sha256 needs 64 hex characters, got 65"),
        ("sha256:" + "g" * 64, "sha256 needs 64 hex characters in lower case"),
        ("sha256:" + "A" * 64, "sha256 needs 64 hex characters in lower case"),
        ("sha512:" + "a" * 64, "sha512 needs 128 hex characters, got 64"),
        ("sha512:" + "B" * 128, "sha512 needs 128 hex characters in lower case"),
        ("sha256:", "sha256 needs 64 hex characters, got 0"),
        ("", "a digest is algorithm:encoded"),
        ("abc", "a digest is algorithm:encoded"),
        (":abc", "empty algorithm before ':'"),
        ("SHA256:" + "a" * 64, 'algorithm "SHA256" must be lower-case'),
        ("sha-:abc", 'algorithm "sha-" must be lower-case'),
        ("a++b:abc", 'algorithm "a++b"'),
        ("blake3:", 'empty encoded part after "blake3:"'),
        ("blake3:a b", 'encoded part "a b" may hold only'),
        ("blake3:a:b", 'encoded part "a:b" may hold only'),
        (" " + SHA256, 'algorithm " sha256"'),
    ],
)
def test_invalid_digests(digest, problem):
    prefix = f"^invalid digest {re.escape(_go_quote(digest))}: "
    with pytest.raises(InvalidReference, match=prefix + re.escape(problem)):
        parse_digest(digest)
    with pytest.raises(InvalidReference, match=re.escape(problem)):
        split_digest(digest)


# --- loopback ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.0.0.2:443", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("[0:0:0:0:0:0:0:1]:80", True),
        ("[::ffff:127.0.0.1]:5000", True),
        ("example.com", False),
        ("example.com:5000", False),
        ("10.0.0.1", False),
        ("192.168.1.1:5000", False),
        ("128.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a host string, nothing binds here
        ("::", False),
        ("[::2]:5000", False),
        ("[::ffff:10.0.0.1]", False),
        ("localhost.example.com", False),
        ("foo.localhost", False),
        ("", False),
        ("localhost:", False),
        ("localhost:abc", False),
        ("[::1", False),
        ("[::1]x", False),
        ("[::1]:", False),
    ],
)
def test_is_loopback_host(host, expected):
    assert is_loopback_host(host) is expected


# --- helpers -------------------------------------------------------------------------------------


def _go_quote(text: str) -> str:
    """How the messages quote an input: double quotes, escapes, cut after 300 characters."""
    cut = len(text) > 300
    escaped = text[:300].replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}..."' if cut else f'"{escaped}"'
