"""Compile the data plane's hot modules with mypyc (`memcloud.native.COMPILED_MODULES`).

    python tools/build_native.py             # build if needed; without a compiler, say so
    python tools/build_native.py --required  # fail when it cannot build (CI, make bench)
    python tools/build_native.py --clean     # remove the compiled modules
    python tools/build_native.py --check     # exit 0 only when the build is current

The extension modules land beside their sources in src/ (git-ignored); the C files and
objects under build/native/. Nothing is rebuilt while the build is newer than every source.
Without a C compiler or Python's headers the service runs its pure Python sources.

A build says first what it does and about how long it takes (the last build's time, kept in
build/native/last-build-seconds), then one line per step: mypyc's C generation, each
extension module as the C compiler builds it, and a note every few seconds while one step
(the shared library, which holds every module's code) is still running.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import sys
import sysconfig
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memcloud import native

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build" / "native"
# What a first build of the 46 modules took on the 2-core machines this is developed on
# (140-230 s), before one ran here.
TYPICAL_SECONDS = 180
# A step still running after this many seconds says so (and again as often).
STILL_RUNNING_SECONDS = 5.0
LAST_BUILD = "last-build-seconds"


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


def clean(root: Path, modules: Sequence[str] = native.COMPILED_MODULES) -> None:
    for module in modules:
        for path in native.compiled_files(module, root):
            path.unlink()
    # The runtime library mypyc shares between the modules it compiled together.
    for path in root.glob("*__mypyc*"):
        path.unlink()


def say(text: str) -> None:
    print(f"memcloud: {text}", flush=True)


@contextmanager
def still_running(what: str, started: float) -> Iterator[None]:
    """While the body runs, every STILL_RUNNING_SECONDS a line that it still does."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(STILL_RUNNING_SECONDS):
            say(f"  ... still {what} ({time.monotonic() - started:.0f} s so far)")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def _progress_build_ext(started: float) -> type[Any]:
    """setuptools' build_ext, naming each extension module as it builds it."""
    from setuptools.command.build_ext import build_ext

    class ProgressBuildExt(build_ext):  # type: ignore[misc]
        built = 0

        def build_extension(self, ext: Any) -> None:
            type(self).built += 1
            total = len(self.extensions)
            shared = "__mypyc" in ext.name
            label = "shared library (every module's code; the long step)" if shared else ext.name
            say(f"  [{type(self).built}/{total}] compiling {label}")
            what = f"compiling {'the shared library' if shared else ext.name}"
            with still_running(what, started):
                super().build_extension(ext)

    return ProgressBuildExt


def build(
    root: Path,
    modules: Sequence[str] = native.COMPILED_MODULES,
    project: Path = ROOT,
    build_dir: Path = BUILD_DIR,
) -> float:
    """Compile `modules` (found under `root`, inside `project`); answers the seconds taken."""
    from mypyc.build import mypycify
    from setuptools import setup

    started = time.monotonic()
    # setuptools reads pyproject.toml from the working directory and calls its own table beta.
    warnings.filterwarnings("ignore", message=".*is still \\*beta\\*")
    clean(root, modules)
    sources = [str(native.source_file(module, root).relative_to(project)) for module in modules]
    os.chdir(project)
    say(f"  [mypyc] type-checking {len(modules)} modules and writing their C code")
    with still_running("generating C", started):
        extensions = mypycify(sources, opt_level="3", target_dir=str(build_dir / "c"))
    setup(
        name="memcloud-native",
        ext_modules=extensions,
        package_dir={"": str(root.relative_to(project))},
        cmdclass={"build_ext": _progress_build_ext(started)},
        script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(build_dir / "obj")],
    )
    # build_ext copies a module it did not need to relink with its old time; the build's
    # time is what `native.build_state` compares with the sources.
    for module in modules:
        for path in native.compiled_files(module, root):
            path.touch()
    seconds = time.monotonic() - started
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / LAST_BUILD).write_text(f"{seconds:.0f}\n")
    return seconds


def expected_seconds(build_dir: Path = BUILD_DIR) -> tuple[int, str]:
    """About how long a build takes here, and where the figure comes from."""
    try:
        return int((build_dir / LAST_BUILD).read_text().strip()), "the last build here"
    except (OSError, ValueError):
        return TYPICAL_SECONDS, "on 2 cores"


def announce(state: str, build_dir: Path = BUILD_DIR) -> str:
    """The line that opens a build: what and why, and about how long, in words that do not
    read like a failure."""
    seconds, basis = expected_seconds(build_dir)
    if state == "not built":
        why = "once, for speed (the first start after install)"
    elif state.startswith("stale build: "):
        why = "again: " + state.removeprefix("stale build: ")
    else:
        why = "again: " + state.removeprefix("incomplete build: ")
    return f"compiling the data plane with mypyc {why}; this takes about {seconds} s ({basis})"


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
    say(announce(state))
    try:
        seconds = build(root)
    except (Exception, SystemExit) as error:
        clean(root)
        say(f"the mypyc build failed ({error}); the data plane runs as pure Python")
        return 1 if options.required else 0
    state = native.build_state()
    if state == "compiled":
        say(f"data plane compiled with mypyc in {seconds:.0f} s")
        return 0
    say(f"data plane not usable after the build ({state}); it runs as pure Python")
    return 1 if options.required else 0


if __name__ == "__main__":
    sys.exit(main())
