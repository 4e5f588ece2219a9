"""Peer for issue #4: the PyPI package named ``aioregistry``, version 0.7.3 (msg555/aioregistry).

That package is an unrelated project which happens to use our import name. It runs only from its
own venv (``python3 benchmarks/peers/venvs.py`` creates it), never from the project's ``.venv``::

    .bench/venvs/aioregistry073/bin/python benchmarks/peers/aioregistry073_scan.py \
        --registry HOST:PORT --repository NAME --ca-file PEM --platform linux/amd64 [--limit N]

Run as a script, ``sys.path[0]`` is this directory (which holds no ``aioregistry``), so
``import aioregistry`` finds the venv's 0.7.3; :func:`_assert_peer_package` stops the scan
if it ever found anything else (e.g. this project's package through ``PYTHONPATH`` or the wrong
interpreter).

Its natural async API, every tag at once with ``asyncio.gather`` (as its own ``copy_refs``
does; aiohttp's default connector allows 100 connections):

* ``parse_image_name("https://HOST:PORT/REPO")``: the scheme is given because 0.7.3 defaults
  127.0.0.1 and localhost to plain http;
* ``registry_repo_tags(registry, repo)`` lists the tags (one request; it does not follow
  ``Link`` pages);
* per tag ``manifest_download(ref)``: one GET. The returned model keeps the body as its
  canonical text, so ``manifest.digest`` is the sha256 of the bytes served: the tag's digest;
* for a ``ManifestListV2S2`` (Docker list or OCI index): the entry whose platform matches
  (``unknown`` never matches), then ``manifest_download`` of that digest;
* ``ref_content_stream(RegistryBlobRef(..., config digest))`` reads the config, hashed here.

TLS: ``AsyncRegistryClient(ssl_context=ssl.create_default_context(cafile=CA))``. 0.7.3 passes
``ssl=self.ssl_context or False`` to aiohttp, so WITHOUT an explicit context it does not verify
certificates at all, and ``SSL_CERT_FILE`` would change nothing: the context is required.

Auth: anonymous (the library's default ``DictCredentialStore({})``). On a 401 it fetches a
token from the challenge's realm and caches it under (host, the first four segments of the
path), i.e. ``/v2/test/many`` for a two-segment name. The tag listing goes first, so there the
manifests and blobs reuse its token: one token per run. For a one-segment name the keys are
``/v2/NAME/tags``, ``/v2/NAME/manifests`` and ``/v2/NAME/blobs``, and every request already in
flight before a key has its token fetches its own: measured, 22 tokens and 22 extra 401s for 20
tags of a repository ``solo``, all manifests going out at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.metadata
import json
import ssl
import sys
from pathlib import Path

PEER_VERSION = "0.7.3"
WRONG_IMPORT = (
    "aioregistry073_scan.py: expected the PyPI aioregistry {version} inside {venv}, got {got}; "
    "run it with .bench/venvs/aioregistry073/bin/python (see benchmarks/peers/venvs.py)"
)

try:
    import aiohttp

    import aioregistry
    from aioregistry import (
        AsyncRegistryClient,
        ManifestListV2S2,
        ManifestV2S2,
        RegistryBlobRef,
        RegistryException,
        RegistryManifestRef,
        parse_image_name,
    )
except ImportError as exc:  # e.g. this project's aioregistry, or no venv at all
    raise SystemExit(
        WRONG_IMPORT.format(version=PEER_VERSION, venv=sys.prefix, got=f"ImportError: {exc}")
    ) from exc


def _assert_peer_package() -> None:
    """Stop unless ``aioregistry`` is the venv's PyPI 0.7.3 (never this project's package)."""
    where = Path(aioregistry.__file__).resolve()
    venv = Path(sys.prefix).resolve()
    version = importlib.metadata.version("aioregistry")
    if not where.is_relative_to(venv) or version != PEER_VERSION:
        got = f"aioregistry {version} from {where}"
        raise SystemExit(WRONG_IMPORT.format(version=PEER_VERSION, venv=venv, got=got))


_assert_peer_package()  # at import time, before anything can use a wrong package


def _matches(entry: ManifestListV2S2.ManifestListItem, platform: str) -> bool:
    want_os, want_arch, *rest = platform.split("/")
    data = entry.platform
    if data is None or data.os != want_os or data.architecture != want_arch:
        return False
    return not rest or data.variant == rest[0]


async def scan_tag(
    client: AsyncRegistryClient, base: RegistryManifestRef, tag: str, platform: str
) -> dict[str, str]:
    ref = RegistryManifestRef(registry=base.registry, repo=base.repo, ref=tag)
    manifest = await client.manifest_download(ref)
    digest = manifest.digest
    if isinstance(manifest, ManifestListV2S2):
        entry = next((e for e in manifest.manifests if _matches(e, platform)), None)
        if entry is None:
            raise RegistryException(f"{tag}: no {platform} in the index")
        child = RegistryManifestRef(registry=base.registry, repo=base.repo, ref=entry.digest)
        manifest = await client.manifest_download(child)
        if manifest.digest != entry.digest:
            raise RegistryException(f"{tag}: {entry.digest} hashes to {manifest.digest}")
    if not isinstance(manifest, ManifestV2S2):
        raise RegistryException(f"{tag}: unsupported manifest {manifest.get_media_type()}")
    blob = RegistryBlobRef(registry=base.registry, repo=base.repo, ref=manifest.config.digest)
    _descriptor, chunks = await client.ref_content_stream(blob)
    hasher = hashlib.sha256()
    async for chunk in chunks:
        hasher.update(chunk)
    config_digest = "sha256:" + hasher.hexdigest()
    if config_digest != manifest.config.digest:
        raise RegistryException(f"{tag}: config hashes to {config_digest}")
    return {
        "tag": tag,
        "digest": digest,
        "manifest_digest": manifest.digest,
        "config_digest": config_digest,
    }


async def scan(args: argparse.Namespace) -> int:
    base = parse_image_name(f"https://{args.registry}/{args.repository}")
    context = ssl.create_default_context(cafile=args.ca_file)
    async with AsyncRegistryClient(ssl_context=context) as client:
        try:
            tags = sorted(await client.registry_repo_tags(base.registry, base.repo))
        except (RegistryException, aiohttp.ClientError, KeyError, TypeError, ValueError) as exc:
            print(
                f"aioregistry073_scan.py: listing tags: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return 1
        if args.limit is not None:
            tags = tags[: args.limit]
        results = await asyncio.gather(
            *(scan_tag(client, base, tag, args.platform) for tag in tags),
            return_exceptions=True,
        )
    failed = 0
    for tag, result in zip(tags, results, strict=True):
        if isinstance(result, dict):
            print(json.dumps(result))
            continue
        if not isinstance(result, (RegistryException, aiohttp.ClientError, ValueError)):
            raise result
        failed += 1
        print(f"aioregistry073_scan.py: {tag}: {type(result).__name__}: {result}", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT")
    parser.add_argument("--repository", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--platform", default="linux/amd64")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    return asyncio.run(scan(args))


if __name__ == "__main__":
    sys.exit(main())
