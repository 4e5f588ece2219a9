#!/usr/bin/env bash
# Peer for issue #4: the method of the old "Docker Registry API Bash Functions" (curl + jq).
#
#   benchmarks/peers/old_bash.sh --registry HOST:PORT --repository NAME --ca-file PEM \
#       --platform linux/amd64 [--limit N]
#
# One call at a time and a NEW token for every call, as those functions did:
#   GET /v2/ once (no token) to read realm and service from WWW-Authenticate;
#   tags:    get_token, GET tags/list (get_token again for every Link page);
#   per tag: get_token, HEAD manifest (Docker-Content-Digest = "digest");
#            get_token, GET manifest; if it is a list/index: get_token, GET the platform's child
#            by digest (picked with jq, "unknown" platforms skipped);
#            get_token, GET the config blob (-L follows storage redirects).
# manifest_digest and config_digest are the sha256 of the bytes received (sha256sum).
# Output: one JSON object per tag on stdout. Any failure stops the script with a message on
# stderr and a non-zero status. Needs bash, curl, jq and sha256sum.
set -Eeuo pipefail
shopt -s inherit_errexit

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
for tool in curl jq sha256sum; do
    command -v "$tool" >/dev/null || { echo "old_bash.sh: $tool is required" >&2; exit 2; }
done

IFS=/ read -r want_os want_arch want_variant <<<"$platform"
want_variant="${want_variant:-}"

base="https://$registry/v2"
accept_types=(
    "application/vnd.docker.distribution.manifest.v2+json"
    "application/vnd.docker.distribution.manifest.list.v2+json"
    "application/vnd.oci.image.manifest.v1+json"
    "application/vnd.oci.image.index.v1+json"
)
accept_args=()
for type in "${accept_types[@]}"; do
    accept_args+=(-H "Accept: $type")
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
current="(tag listing)"
# -E carries the trap into functions and subshells: report once, from the main shell.
trap '(( BASH_SUBSHELL )) || echo "old_bash.sh: failed on $current (line $LINENO)" >&2' ERR

# -- the functions ---------------------------------------------------------------------

# realm and service, from the challenge of GET /v2/ (401 expected: no --fail here).
discover_auth() {
    local challenge
    challenge="$(curl -sS --cacert "$ca_file" -o /dev/null -D - "$base/" \
        | tr -d '\r' | grep -i '^www-authenticate:' || true)"
    realm="$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")"
    service="$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")"
    if [[ -z "$realm" ]]; then
        echo "old_bash.sh: no Bearer realm in the challenge of $base/: $challenge" >&2
        return 1
    fi
}

# A fresh anonymous pull token for the repository (one token request per call).
get_token() {
    curl -sS --fail --cacert "$ca_file" -G "$realm" \
        --data-urlencode "service=$service" \
        --data-urlencode "scope=repository:$repository:pull" \
        | jq -er '.token // .access_token'
}

list_tags() {
    local path="/v2/$repository/tags/list" token next
    while [[ -n "$path" ]]; do
        token="$(get_token)"
        curl -sS --fail --cacert "$ca_file" -H "Authorization: Bearer $token" \
            -D "$work/tags.headers" -o "$work/tags.json" "https://$registry$path"
        jq -r '.tags // [] | .[]' "$work/tags.json"
        next="$(tr -d '\r' <"$work/tags.headers" \
            | sed -n 's/^[Ll]ink: *<\([^>]*\)>.*rel="\{0,1\}next"\{0,1\}.*/\1/p')"
        path="$next"
    done
}

# HEAD the manifest and print its Docker-Content-Digest.
head_digest() {
    local token
    token="$(get_token)"
    curl -sS --fail --cacert "$ca_file" -I -H "Authorization: Bearer $token" \
        "${accept_args[@]}" "$base/$repository/manifests/$1" \
        | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

# GET the manifest REF into FILE.
get_manifest() {
    local token
    token="$(get_token)"
    curl -sS --fail --cacert "$ca_file" -H "Authorization: Bearer $token" \
        "${accept_args[@]}" -o "$2" "$base/$repository/manifests/$1"
}

# GET the blob DIGEST into FILE (following redirects to the storage backend).
get_blob() {
    local token
    token="$(get_token)"
    curl -sS --fail --cacert "$ca_file" -L -H "Authorization: Bearer $token" \
        -o "$2" "$base/$repository/blobs/$1"
}

sha256_of() {
    local sum
    sum="$(sha256sum "$1")"
    echo "sha256:${sum%% *}"
}

# -- the job ---------------------------------------------------------------------------

discover_auth
tag_lines="$(list_tags)"
mapfile -t tags < <(LC_ALL=C sort <<<"$tag_lines" | sed '/^$/d')
if [[ -n "$limit" ]]; then
    tags=("${tags[@]:0:$limit}")
fi

for tag in "${tags[@]}"; do
    current="tag $tag"
    digest="$(head_digest "$tag")"
    [[ -n "$digest" ]] || { echo "old_bash.sh: no Docker-Content-Digest for $tag" >&2; exit 1; }

    get_manifest "$tag" "$work/manifest.json"
    if jq -e 'has("manifests")' "$work/manifest.json" >/dev/null; then
        child="$(jq -r --arg os "$want_os" --arg arch "$want_arch" --arg variant "$want_variant" '
            [.manifests[]
             | select(.platform != null)
             | select(.platform.os != "unknown" and .platform.architecture != "unknown")
             | select(.platform.os == $os and .platform.architecture == $arch)
             | select($variant == "" or .platform.variant == $variant)
            ][0].digest // empty' "$work/manifest.json")"
        [[ -n "$child" ]] || { echo "old_bash.sh: no $platform in $tag" >&2; exit 1; }
        get_manifest "$child" "$work/manifest.json"
    fi
    manifest_digest="$(sha256_of "$work/manifest.json")"

    config="$(jq -er '.config.digest' "$work/manifest.json")"
    get_blob "$config" "$work/config.json"
    config_digest="$(sha256_of "$work/config.json")"
    if [[ "$config_digest" != "$config" ]]; then
        echo "old_bash.sh: config of $tag hashes to $config_digest, not $config" >&2
        exit 1
    fi

    jq -nc --arg tag "$tag" --arg digest "$digest" --arg manifest_digest "$manifest_digest" \
        --arg config_digest "$config_digest" \
        '{tag: $tag, digest: $digest, manifest_digest: $manifest_digest,
          config_digest: $config_digest}'
done
