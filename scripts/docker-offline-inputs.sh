#!/usr/bin/env bash
# Prepare what `docker build` needs when no registry is reachable: a Debian base image made
# locally with debootstrap, and a wheelhouse of the Python dependencies in build/wheelhouse/.
# Idempotent: what already exists is kept (the base image, the wheelhouse for this pyproject.toml);
# the rootfs tarball and the wheels are also cached in $CACHE_DIR so a later run (or CI) can
# rebuild them without the network. Run with --help for the options.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

BASE_IMAGE="p2p-testnet-base:bookworm"
SUITE="bookworm"
MIRROR="http://deb.debian.org/debian"
WHEELHOUSE="$ROOT/build/wheelhouse"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/p2p-testnet"
IMAGE="p2p-testnet:latest"
BUILD=0
FORCE=0
# Debian packages of the base: Python 3.11 (bookworm's), venv with its bundled pip, useradd for the
# non-root user, iptables for network-level partitions.
PACKAGES="python3,python3-venv,passwd,iptables"

usage() {
  cat <<EOF
Usage: scripts/docker-offline-inputs.sh [options]

Prepares the inputs of an offline image build:
  1. base image $BASE_IMAGE: debootstrap --variant=minbase $SUITE ($PACKAGES), imported with
     'docker import' (needs root and the Debian mirror; cached as a tarball in \$CACHE_DIR)
  2. wheelhouse $WHEELHOUSE: the project's dependencies as CPython 3.11 manylinux wheels
     (needs the package index once; cached in \$CACHE_DIR)
Then builds the node image with:
  docker build --build-arg BASE_IMAGE=$BASE_IMAGE -t $IMAGE .

Options:
  --base-image NAME   name of the base image to create (default $BASE_IMAGE)
  --mirror URL        Debian mirror (default $MIRROR)
  --cache-dir DIR     where the rootfs tarball and wheels are cached (default $CACHE_DIR)
  --build             also build the node image ($IMAGE) from the prepared inputs
  --image NAME        tag of the node image for --build (default $IMAGE)
  --force             recreate the base image and the wheelhouse even if present
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) BASE_IMAGE="$2"; shift 2 ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    --cache-dir) CACHE_DIR="$2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --image) IMAGE="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "docker-offline-inputs: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "error: $1 is not installed ($2)"; exit 1; }; }

need docker "apt-get install docker.io"
docker info >/dev/null 2>&1 || { say "error: no Docker engine answers (start dockerd)"; exit 1; }
mkdir -p "$CACHE_DIR"

# ---- 1. the base image ---------------------------------------------------------------------------
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-$(echo "$PACKAGES" | sha256sum | cut -c1-12).tar"
if [ "$FORCE" = 0 ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base image $BASE_IMAGE exists"
else
  if [ "$FORCE" = 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
    need debootstrap "apt-get install debootstrap"
    [ "$(id -u)" = 0 ] || { say "error: debootstrap needs root (sudo $0)"; exit 1; }
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    say "debootstrap $SUITE into $rootfs (about a minute)"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  say "importing $ROOTFS_TAR as $BASE_IMAGE"
  docker import --change 'CMD ["/bin/bash"]' "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi

# ---- 2. the wheelhouse ---------------------------------------------------------------------------
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"  # has pip (bootstrap.sh)
else PY="$(command -v python3.11 || command -v python3)"; fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { say "error: needs Python >= 3.11 on the host to read pyproject.toml"; exit 1; }
# The requirements: the project's dependencies and its build backend (pip builds the project's own
# wheel inside the image, offline).
REQS="$("$PY" - "$ROOT/pyproject.toml" <<'EOF'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(data["project"]["dependencies"] + data["build-system"]["requires"] + ["wheel"]))
EOF
)"
ARCH="$(uname -m)"
STAMP=".stamp-$(printf '%s\n%s\n' "$REQS" "$ARCH" | sha256sum | cut -c1-16)"
CACHED_WHEELS="$CACHE_DIR/wheels-${STAMP#.stamp-}"
if [ "$FORCE" = 0 ] && [ -f "$WHEELHOUSE/$STAMP" ]; then
  say "wheelhouse $WHEELHOUSE is up to date"
else
  if [ "$FORCE" = 1 ] || [ ! -f "$CACHED_WHEELS/$STAMP" ]; then
    say "downloading CPython 3.11 $ARCH wheels into $CACHED_WHEELS"
    rm -rf "$CACHED_WHEELS" && mkdir -p "$CACHED_WHEELS"
    # Bookworm has glibc 2.36: every manylinux tag up to it fits (pip does not infer the older ones).
    platforms=(--platform "manylinux2014_$ARCH")
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_$ARCH"); done
    printf '%s\n' "$REQS" > "$CACHED_WHEELS/requirements.txt"
    "$PY" -m pip download --quiet --disable-pip-version-check --dest "$CACHED_WHEELS" \
      --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 \
      --abi none "${platforms[@]}" --platform any -r "$CACHED_WHEELS/requirements.txt" >&2
    touch "$CACHED_WHEELS/$STAMP"
  fi
  rm -rf "$WHEELHOUSE" && mkdir -p "$WHEELHOUSE"
  cp "$CACHED_WHEELS"/*.whl "$CACHED_WHEELS/requirements.txt" "$WHEELHOUSE/"
  touch "$WHEELHOUSE/$STAMP"
  say "wheelhouse ready: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels in $WHEELHOUSE"
fi

# ---- 3. optionally, the node image ---------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  say "building $IMAGE from $BASE_IMAGE and the wheelhouse"
  docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" "$ROOT" >&2
  say "built $IMAGE"
else
  say "build the node image with: docker build --build-arg BASE_IMAGE=$BASE_IMAGE -t $IMAGE $ROOT"
fi
