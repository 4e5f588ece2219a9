"""``aioregistry referrers`` end to end: ``python -m aioregistry`` against a real registry.

The registry (``registry_referrers``, distribution 2.8: no referrers API) holds
``support.referrers``' content: a fallback index and cosign 2 tags. The output is an OCI
image index, so the README's jq recipes for the API work on it; one is run here when jq is
installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from support.referrers import EMPTY, REPOSITORY, SPDX

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aioregistry", *args],
        capture_output=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def index_of(*args: str) -> dict[str, object]:
    result = run("referrers", *args)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    index = json.loads(result.stdout)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    return index


def test_referrers_of_a_signed_image(registry_referrers):
    registry, content = registry_referrers
    index = index_of("-i", f"{registry.host}/{REPOSITORY}:signed")
    entries = {entry["digest"]: entry for entry in index["manifests"]}
    stem = content.images["signed"].digest.replace(":", "-")
    sig = content.cosign[f"{stem}.sig"]
    assert set(entries) == {
        content.sbom.digest,
        content.bundle.digest,
        content.attestation.digest,
        sig.digest,
        content.cosign[f"{stem}.att"].digest,
    }
    assert entries[content.sbom.digest] == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": content.sbom.digest,
        "size": content.sbom.size,
        "artifactType": SPDX,
        "annotations": content.sbom.annotations,
        "kind": "sbom",
    }
    assert entries[content.bundle.digest]["artifactType"] == EMPTY
    assert entries[content.bundle.digest]["kind"] == "signature"
    assert entries[content.attestation.digest]["artifactType"] is None
    assert entries[content.attestation.digest]["kind"] == "attestation"
    assert entries[sig.digest]["kind"] == "signature"
    assert entries[sig.digest]["size"] == sig.size


def test_artifact_type_filter(registry_referrers):
    registry, content = registry_referrers
    index = index_of("-i", f"{registry.host}/{REPOSITORY}:signed", "--artifact-type", SPDX)
    assert [entry["digest"] for entry in index["manifests"]] == [content.sbom.digest]


def test_an_image_with_none_is_an_empty_index(registry_referrers):
    registry, _ = registry_referrers
    assert index_of("-i", f"{registry.host}/{REPOSITORY}:plain")["manifests"] == []


def test_a_bad_artifact_type_is_one_line(registry_referrers):
    registry, _ = registry_referrers
    result = run("referrers", "-i", f"{registry.host}/{REPOSITORY}:plain", "--artifact-type", "x")
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.startswith("aioregistry: error: invalid artifact type 'x'")
    assert err.count("\n") == 1


def test_an_unknown_image_is_one_line(registry_referrers):
    registry, _ = registry_referrers
    result = run("referrers", "-i", f"{registry.host}/{REPOSITORY}:missing")
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().startswith("aioregistry: error: ")
    assert result.stderr.count(b"\n") == 1


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_readme_recipe_is_it_signed(registry_referrers):
    registry, _ = registry_referrers
    recipe = '[.manifests[] | select(.kind == "signature")] | length > 0'
    answers = {}
    for tag in ("signed", "plain"):
        out = run("referrers", "-i", f"{registry.host}/{REPOSITORY}:{tag}").stdout
        jq = subprocess.run(["jq", recipe], input=out, capture_output=True, check=True)
        answers[tag] = jq.stdout.strip()
    assert answers == {"signed": b"true", "plain": b"false"}
