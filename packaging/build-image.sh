#!/usr/bin/env bash
# Build the memcloud container image from this checkout (`make image`), offline but for
# Debian's apt mirror:
#
#   1. the base images from Debian's packages (packaging/build-base.sh; cached tarballs);
#   2. every Python dependency as a wheel, fetched by this machine's pip (its index, its
#      PIP_FIND_LINKS) into build/container/wheels: the image build itself has no network
#      (`--network none`) and installs with `pip --no-index`;
#   3. `docker build` of the Containerfile: a build stage compiles the data plane with mypyc
#      on Debian's Python, the runtime stage copies the venv and the tree.
#
#   packaging/build-image.sh [TAG]      # default memcloud:VERSION, also tagged memcloud:latest
#
# PYTHON (default .venv/bin/python, else python3) must be a CPython 3.11 (the wheels are
# those of bookworm's python3.11). DOCKER_HOST is honoured. Prints the image's tag last.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "memcloud image: $python is not Python 3.11, the version of Debian bookworm's python3;" \
    "its wheels would not fit the image (set PYTHON=)" >&2
  exit 1
fi
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
tag=${1:-memcloud:$version}

say() { echo "memcloud image: $*" >&2; }
started=$SECONDS

mapfile -t bases < <(packaging/build-base.sh)
runtime_base=${bases[0]} build_base=${bases[1]}

wheels=build/container/wheels
rm -rf "$wheels" && mkdir -p "$wheels"  # no wheel of an older build is installed
# The runtime dependencies and the native extra (mypyc, setuptools for the editable
# install), as pyproject.toml declares them; the image installs exactly these.
"$python" - >"$wheels/requirements.txt" <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join([*project["dependencies"], *project["optional-dependencies"]["native"], "wheel"]))
PY
say "collecting wheels for $(wc -l <"$wheels/requirements.txt") requirements into $wheels"
"$python" -m pip wheel --quiet --wheel-dir "$wheels" -r "$wheels/requirements.txt" \
  2>build/container/pip.log || { cat build/container/pip.log >&2; exit 1; }

say "docker build $tag (the build stage compiles the data plane: a few minutes)"
# The classic builder: Debian's docker.io ships no buildx; `--network none` proves the build
# needs nothing beyond the files given to it.
DOCKER_BUILDKIT=0 docker build --quiet --network none --file Containerfile \
  --build-arg "BUILD_BASE=$build_base" --build-arg "RUNTIME_BASE=$runtime_base" \
  --label "org.opencontainers.image.version=$version" \
  --tag "$tag" --tag memcloud:latest . >&2
say "built $tag in $((SECONDS - started)) s"
echo "$tag"
