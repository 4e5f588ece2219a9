"""The tags that are referrer bookkeeping (issue #13): `is_referrer_tag`, pinned by a table."""

from __future__ import annotations

import pytest

from aioregistry._digest_tags import is_referrer_tag

HEX = "0123456789abcdef" * 4  # 64 lower-case hex digits


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
