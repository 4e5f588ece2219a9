"""Peer for issue #4: python-dxf (PyPI ``python-dxf``), one tag after the other.

Runs from its own venv (``python3 benchmarks/peers/venvs.py`` creates it)::

    .bench/venvs/dxf/bin/python benchmarks/peers/dxf_scan.py --registry HOST:PORT \
        --repository NAME --ca-file PEM --platform linux/amd64 [--limit N]

python-dxf is synchronous (``requests``). The scan uses its public API:

* ``DXF(host, repo, auth=..., tlsverify=CA_FILE)`` used as a context manager, which is how
  python-dxf shares one ``requests.Session`` (kept-alive connections) between calls; without
  it every call opens a new connection and TLS handshake;
* ``list_aliases()`` for the tags (it follows ``Link`` pages);
* ``get_manifest_and_response(tag)``: the tag's manifest and its ``Docker-Content-Digest``
  (checked against the bytes, as python-dxf's own ``_get_alias`` does);
* for a manifest list / OCI index: the child for the platform, named ``os/arch[/variant]``
  exactly as python-dxf names index entries, fetched with ``get_manifest(child_digest)`` (which
  verifies the digest);
* ``pull_blob(config_digest)`` for the config (python-dxf checks the sha256 of what it read).

``get_digest(tag, platform=...)`` would give the config digest in one call, but neither the tag's
digest nor the platform manifest's, and asking for those separately costs one more request per
tag; the calls above are python-dxf's building blocks for the same work without repeats.

Auth: python-dxf calls ``auth(dxf, response)`` on a 401 and keeps the token it gets for all
later requests; the natural callback is ``dxf.authenticate(response=response)`` (anonymous).
That method rewrites the realm's scheme to https (``url_parts[0] = 'https'``), so it cannot
reach a token realm served over plain http, such as the test token issuer's. For such a realm
the callback asks the realm as advertised (same query: service and the challenge's scope) and
hands the token to python-dxf through its public ``token`` setter; an https realm goes through
``authenticate`` unchanged. Either way: one token request per run while the token lasts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import dxf
import requests
import www_authenticate
from dxf import DXF, DXFBase, hash_bytes
from dxf.exceptions import DXFDigestMismatchError, DXFError, DXFPlatformDataNotFound

INDEX_TYPES = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
}


def _assert_own_venv() -> None:
    where = Path(dxf.__file__).resolve()
    if not where.is_relative_to(Path(sys.prefix).resolve()):
        raise SystemExit(f"dxf_scan.py: dxf imported from {where}, not from this venv")


def make_auth(ca_file: str):
    def auth(client: DXFBase, response: requests.Response) -> None:
        challenge = www_authenticate.parse(response.headers["www-authenticate"])
        bearer = challenge.get("bearer") or {}
        realm = bearer.get("realm", "")
        if not realm.startswith("http://"):
            client.authenticate(response=response)
            return
        query = [("service", bearer["service"])] if "service" in bearer else []
        query += [("scope", scope) for scope in bearer.get("scope", "").split()]
        token_response = requests.get(f"{realm}?{urlencode(query)}", verify=ca_file, timeout=60)
        token_response.raise_for_status()
        body = token_response.json()
        client.token = body.get("access_token") or body["token"]

    return auth


def platform_name(platform: dict[str, str]) -> str:
    """``os/arch[/variant]``, as python-dxf names the entries of a manifest list."""
    name = platform["os"] + "/" + platform["architecture"]
    if "variant" in platform:
        name += "/" + platform["variant"]
    return name


def scan_tag(client: DXF, tag: str, platform: str) -> dict[str, str]:
    text, response = client.get_manifest_and_response(tag)
    digest = response.headers.get("Docker-Content-Digest") or hash_bytes(response.content)
    if hash_bytes(response.content) != digest:
        raise DXFDigestMismatchError(hash_bytes(response.content), digest)
    manifest = json.loads(text)
    manifest_digest = digest
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        children = [
            entry["digest"]
            for entry in manifest["manifests"]
            if "platform" in entry and platform_name(entry["platform"]) == platform
        ]
        if not children:
            raise DXFPlatformDataNotFound(platform)
        text = client.get_manifest(children[0])
        if not isinstance(text, str):
            raise TypeError(f"{tag}: the {platform} entry is itself an index")
        manifest = json.loads(text)
        manifest_digest = hash_bytes(text.encode("utf-8"))
    config_digest = manifest["config"]["digest"]
    hasher = hashlib.sha256()
    for chunk in client.pull_blob(config_digest):
        hasher.update(chunk)
    return {
        "tag": tag,
        "digest": digest,
        "manifest_digest": manifest_digest,
        "config_digest": "sha256:" + hasher.hexdigest(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT")
    parser.add_argument("--repository", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--platform", default="linux/amd64")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    _assert_own_venv()

    failed = 0
    with DXF(
        args.registry, args.repository, auth=make_auth(args.ca_file), tlsverify=args.ca_file
    ) as client:
        try:
            tags = sorted(client.list_aliases())
        except (requests.RequestException, DXFError, KeyError, ValueError) as exc:
            print(f"dxf_scan.py: listing tags: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if args.limit is not None:
            tags = tags[: args.limit]
        for tag in tags:
            try:
                row = scan_tag(client, tag, args.platform)
            except (requests.RequestException, DXFError, KeyError, ValueError, TypeError) as exc:
                print(f"dxf_scan.py: {tag}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
