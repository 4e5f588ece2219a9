#!/usr/bin/env bash
# Peer for issue #4: Debian's skopeo (1.9.x), one `skopeo inspect` process per tag.
#
#   benchmarks/peers/skopeo_loop.sh --registry HOST:PORT --repository NAME --ca-file PEM \
#       --platform linux/amd64 [--limit N]
#
# Needs skopeo on PATH: on Debian/Ubuntu `apt-get install -y skopeo` (this script never
# installs anything; it stops with a message if skopeo is missing). Also needs jq.
#
#   tags:    skopeo list-tags docker://HOST/REPO
#   per tag: skopeo inspect --override-os OS --override-arch ARCH [--override-variant V]
#                docker://HOST/REPO:TAG
# `inspect` is skopeo's own way to do the job: it fetches the tag's manifest, resolves the
# platform in a list/index, and reads the config blob (for Created, Env, Labels ...).
# We pass --no-tags: without it every inspect also lists ALL the repository's tags (for the
# RepoTags field, which we do not need since we listed them once), one more request per tag
# whose cost grows with the repository.
# TLS: --cert-dir DIR with the CA copied there as ca.crt, verification on. Anonymous access:
# --no-creds (no auth file is read).
#
# Fields: inspect's JSON (skopeo 1.9) has "Digest" (the digest of the manifest the tag points
# at, i.e. the index digest for a multi-arch tag) but neither the platform manifest's digest
# nor the config's digest, so manifest_digest and config_digest are null.
# Output: one JSON object per tag on stdout. A tag that fails is reported on stderr, the other
# tags are still done, and the exit status is 1.
set -euo pipefail

usage() {
    echo "usage: $0 --registry HOST:PORT --repository NAME --ca-file PEM" \
        "--platform OS/ARCH[/VARIANT] [--limit N]" >&2
    exit 2
}

registry="" repository="" ca_file="" platform="linux/amd64" limit=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --registry) registry="${2:?}"; shift 2 ;;
        --repository) repository="${2:?}"; shift 2 ;;
        --ca-file) ca_file="${2:?}"; shift 2 ;;
        --platform) platform="${2:?}"; shift 2 ;;
        --limit) limit="${2:?}"; shift 2 ;;
        *) usage ;;
    esac
done
[[ -n "$registry" && -n "$repository" && -n "$ca_file" ]] || usage
if ! command -v skopeo >/dev/null; then
    echo "skopeo_loop.sh: skopeo is not installed (Debian: apt-get install -y skopeo)" >&2
    exit 2
fi
command -v jq >/dev/null || { echo "skopeo_loop.sh: jq is required" >&2; exit 2; }
[[ -r "$ca_file" ]] || { echo "skopeo_loop.sh: cannot read CA file $ca_file" >&2; exit 2; }

IFS=/ read -r want_os want_arch want_variant <<<"$platform"
override=(--override-os "$want_os" --override-arch "$want_arch")
if [[ -n "${want_variant:-}" ]]; then
    override+=(--override-variant "$want_variant")
fi

cert_dir="$(mktemp -d)"
trap 'rm -rf "$cert_dir"' EXIT
cp "$ca_file" "$cert_dir/ca.crt"
common=(--cert-dir "$cert_dir" --no-creds)
image="docker://$registry/$repository"

listing="$(skopeo list-tags "${common[@]}" "$image")" || {
    echo "skopeo_loop.sh: listing the tags of $image failed" >&2
    exit 1
}
mapfile -t tags < <(jq -r '.Tags // [] | .[]' <<<"$listing" | LC_ALL=C sort)
if [[ -n "$limit" ]]; then
    tags=("${tags[@]:0:$limit}")
fi

failed=0
for tag in "${tags[@]}"; do
    if ! inspected="$(skopeo inspect "${common[@]}" --no-tags "${override[@]}" "$image:$tag")"; then
        echo "skopeo_loop.sh: inspect of $image:$tag failed" >&2
        failed=1
        continue
    fi
    jq -c --arg tag "$tag" \
        '{tag: $tag, digest: .Digest, manifest_digest: null, config_digest: null}' \
        <<<"$inspected"
done
exit "$failed"
