#!/usr/bin/env bash
# The container image's base images, from Debian's packages alone (no registry is reachable):
# a `debootstrap --variant=minbase` root file system with Python (the runtime base) and the
# same plus a C compiler and Python's headers (the build base, where mypyc compiles the data
# plane). Both are kept as tarballs under ~/.cache/memcloud/base/ (XDG_CACHE_HOME honoured),
# named by the Debian release and a hash of the package lists and recipe, so they are made once per machine;
# each run `docker import`s them into the engine that lacks them.
#
#   packaging/build-base.sh              # prints the two image names: runtime, then build
#
# Needs root (debootstrap, chroot), debootstrap, and Debian's apt mirror
# (MEMCLOUD_DEBIAN_MIRROR, default http://deb.debian.org/debian). DOCKER_HOST is honoured.
set -euo pipefail

release=${MEMCLOUD_DEBIAN_RELEASE:-bookworm}
mirror=${MEMCLOUD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
runtime_packages=python3,python3-venv,ca-certificates
build_packages=(gcc libc6-dev python3-dev)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/memcloud/base
# Raise when the steps below change: a new recipe or package list makes new tarballs rather
# than reusing old ones.
recipe=2
key=$release-$(echo "$recipe $runtime_packages ${build_packages[*]}" | sha256sum | cut -c1-12)
runtime_tar=$cache/runtime-$key.tar
build_tar=$cache/build-$key.tar

say() { echo "memcloud image: $*" >&2; }

make_tarballs() {
  local root
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  # Whatever happens, the half-made root file system does not stay (its /proc is unmounted).
  trap 'umount "$root/proc" 2>/dev/null || true; rm -rf --one-file-system "$root"' RETURN
  local started=$SECONDS
  say "debootstrap --variant=minbase $release (once per machine; about 2 minutes)"
  debootstrap --variant=minbase --include="$runtime_packages" "$release" "$root" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; return 1; }
  # mktemp made the directory 0700: as the image's / it would shut out every user but root.
  chmod 0755 "$root"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar --numeric-owner -C "$root" -cf "$runtime_tar.tmp" .
  say "adding ${build_packages[*]} for the build base"
  mount -t proc proc "$root/proc"
  chroot "$root" apt-get update -qq >>"$cache/debootstrap.log" 2>&1
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    "${build_packages[@]}" >>"$cache/debootstrap.log" 2>&1
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
  umount "$root/proc"
  tar --numeric-owner -C "$root" -cf "$build_tar.tmp" .
  mv "$runtime_tar.tmp" "$runtime_tar"
  mv "$build_tar.tmp" "$build_tar"
  say "base tarballs made in $((SECONDS - started)) s under $cache"
}

mkdir -p "$cache"
(
  # Two builds at once (two test runs) make the tarballs once.
  flock 9
  if [ ! -s "$runtime_tar" ] || [ ! -s "$build_tar" ]; then
    make_tarballs
  fi
) 9>"$cache/.lock"

for kind in runtime build; do
  image=memcloud-base:$kind-$key
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    say "docker import $kind base as $image"
    docker import "$cache/$kind-$key.tar" "$image" >/dev/null
  fi
  echo "$image"
done
