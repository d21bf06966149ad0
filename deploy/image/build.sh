#!/bin/sh
# Build Racetrack's own image from this checkout. It needs no registry, but it does reach the
# package index (Racetrack's Python dependencies) and the Debian mirror the base image's apt
# sources name (git, and Debian's docker.io package for the docker CLI).
#
#   deploy/image/build.sh [TAG]        (default: racetrack/racetrack:<version>)
#
# It starts FROM the base image `racetrack images bootstrap` makes (no registry is needed),
# builds Racetrack's wheel, and installs it with the pinned versions of constraints.txt.
# Environment (all optional):
#   DOCKER                         a docker CLI with BuildKit [default /usr/bin/docker]
#   PYTHON                         a Python with hatchling, to build the wheel without
#                                  fetching it [default: `uv build` fetches hatchling]
#   RACETRACK_IMAGE_BASE           the base image [default racetrack/python3-base:bookworm]
#   RACETRACK_IMAGE_CA_BUNDLE      PEM file of CAs the build trusts [default $PIP_CERT]
#   RACETRACK_IMAGE_PACKAGE_INDEX  the package index URL [default: $PIP_INDEX_URL, else pip's
#                                  configured global.index-url, else pip's default]
#   RACETRACK_IMAGE_LABELS         extra labels, "key=value" separated by spaces
# The CA bundle and the index URL (which may hold credentials) reach the build as BuildKit
# secrets: no layer, history entry or label of the image keeps them.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
docker=${DOCKER:-/usr/bin/docker}
base=${RACETRACK_IMAGE_BASE:-racetrack/python3-base:bookworm}
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/racetrack_core/__init__.py")
tag=${1:-racetrack/racetrack:$version}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/context" "$work/secrets"
chmod 700 "$work/secrets"

echo "building Racetrack's wheel" >&2
if [ -n "${PYTHON:-}" ]; then
  (cd "$repo" && "$PYTHON" -m hatchling build --target wheel --directory "$work/context/wheels" >&2)
else
  uv build --quiet --wheel --build-constraint "$repo/constraints.txt" \
    --out-dir "$work/context/wheels" "$repo" >&2
fi
cp "$repo/constraints.txt" "$work/context/constraints.txt"

set -- --progress plain --network host --tag "$tag" --file "$repo/deploy/image/Dockerfile"
set -- "$@" --build-arg "BASE_IMAGE=$base" --label "org.opencontainers.image.version=$version"
for label in ${RACETRACK_IMAGE_LABELS:-}; do
  set -- "$@" --label "$label"
done
ca_bundle=${RACETRACK_IMAGE_CA_BUNDLE:-${PIP_CERT:-}}
if [ -n "$ca_bundle" ]; then
  [ -f "$ca_bundle" ] || { echo "RACETRACK_IMAGE_CA_BUNDLE: no file $ca_bundle" >&2; exit 2; }
  set -- "$@" --secret "id=ca_bundle,src=$ca_bundle"
fi
index=${RACETRACK_IMAGE_PACKAGE_INDEX:-${PIP_INDEX_URL:-}}
if [ -z "$index" ] && command -v pip3 >/dev/null 2>&1; then
  index=$(pip3 config get global.index-url 2>/dev/null || true)
fi
if [ -n "$index" ]; then
  (umask 077 && printf '%s' "$index" > "$work/secrets/package_index")
  set -- "$@" --secret "id=package_index,src=$work/secrets/package_index"
fi

echo "building $tag from $base" >&2
DOCKER_BUILDKIT=1 "$docker" build "$@" "$work/context" >&2
echo "$tag"
