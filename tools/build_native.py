"""Compile the data plane's hot modules with mypyc (`memcloud.native.COMPILED_MODULES`).

    python tools/build_native.py             # build if needed; without a compiler, say so
    python tools/build_native.py --required  # fail when it cannot build (CI, make bench)
    python tools/build_native.py --clean     # remove the compiled modules
    python tools/build_native.py --check     # exit 0 only when the build is current

The extension modules land beside their sources in src/ (git-ignored); the C files and
objects under build/native/. Nothing is rebuilt while the build is newer than every source.
Without a C compiler or Python's headers the service runs its pure Python sources.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path

from memcloud import native

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build" / "native"


def missing_toolchain() -> str | None:
    """What stops a build on this machine, if anything."""
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers})"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed (pip install -e '.[native]')"
    return None


def clean(root: Path) -> None:
    for module in native.COMPILED_MODULES:
        for path in native.compiled_files(module, root):
            path.unlink()
    # The runtime library mypyc shares between the modules it compiled together.
    for path in root.glob("*__mypyc*"):
        path.unlink()


def build(root: Path) -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    # setuptools reads pyproject.toml from the working directory and calls its own table beta.
    warnings.filterwarnings("ignore", message=".*is still \\*beta\\*")
    clean(root)
    sources = [
        str(native.source_file(module, root).relative_to(ROOT))
        for module in native.COMPILED_MODULES
    ]
    os.chdir(ROOT)
    extensions = mypycify(sources, opt_level="3", target_dir=str(BUILD_DIR / "c"))
    setup(
        name="memcloud-native",
        ext_modules=extensions,
        package_dir={"": str(root.relative_to(ROOT))},
        script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(BUILD_DIR / "obj")],
    )
    # build_ext copies a module it did not need to relink with its old time; the build's
    # time is what `native.build_state` compares with the sources.
    for module in native.COMPILED_MODULES:
        for path in native.compiled_files(module, root):
            path.touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--required", action="store_true", help="fail when it cannot build")
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument(
        "--check", action="store_true", help="only answer: 0 when the build is current"
    )
    options = parser.parse_args()
    root = native.SOURCE_ROOT
    if options.clean:
        clean(root)
        return 0
    state = native.build_state()
    if options.check:
        return 0 if state == "compiled" else 1
    if state == "compiled":
        return 0
    obstacle = missing_toolchain()
    if obstacle is not None:
        print(f"memcloud: not compiling the data plane: {obstacle}; it runs as pure Python")
        return 1 if options.required else 0
    print(f"memcloud: compiling the data plane with mypyc ({state}) ...", flush=True)
    try:
        build(root)
    except (Exception, SystemExit) as error:
        clean(root)
        print(f"memcloud: the mypyc build failed ({error}); the data plane runs as pure Python")
        return 1 if options.required else 0
    state = native.build_state()
    print(f"memcloud: data plane {state}")
    return 0 if state == "compiled" or not options.required else 1


if __name__ == "__main__":
    sys.exit(main())
