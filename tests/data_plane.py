"""Which data plane a process must run, stated by the tests themselves: from the source tree,
the extension files beside it and MEMCLOUD_PURE_PYTHON, never from `memcloud.native`'s own
answers (it is the code under test).

The data plane is what one request passes through (DESIGN: the per-command path): every module
of `memcloud.protocol` and `memcloud.storage`, the two protocol sessions and the seam they
share, the gate every command passes, the login throttle and admission they consult, the
connection, and forwarding: the routing, the node-to-node channel's framing, server and
client, and the owner's side of a forwarded command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = [
    "COMPILED",
    "PURE_ENV",
    "PURE_REASON",
    "SRC",
    "assert_runs_expected",
    "build_files",
    "data_plane_modules",
    "pure_requested",
    "source_of",
    "stale_or_missing",
]

PURE_ENV = "MEMCLOUD_PURE_PYTHON"
COMPILED = "compiled with mypyc"
PURE_REASON = f"pure Python ({PURE_ENV} is set)"
# The directory holding the `memcloud` package (src/ of this checkout).
SRC = Path(__file__).resolve().parent.parent / "src"
_NAMED = (
    "memcloud.text_login",
    "memcloud.text_forwarding",
    "memcloud.text_admin",
    "memcloud.text_session",
    "memcloud.binary_forwarding",
    "memcloud.meta_session",
    "memcloud.binary_session",
    "memcloud.routing",
    "memcloud.forwarded",
    "memcloud.cluster.wire",
    "memcloud.cluster.channel",
    "memcloud.cluster.link",
    "memcloud.placement",
    "memcloud.service",
    "memcloud.unowned",
    "memcloud.gate",
    "memcloud.auth_throttle",
    "memcloud.admission",
    "memcloud.server.connection",
)


def data_plane_modules() -> set[str]:
    found = set(_NAMED)
    for package in ("protocol", "storage"):
        for source in (SRC / "memcloud" / package).glob("*.py"):
            if source.name != "__init__.py":
                found.add(f"memcloud.{package}.{source.stem}")
    return found


def source_of(module: str) -> Path:
    return SRC.joinpath(*module.split(".")).with_suffix(".py")


def build_files(module: str) -> list[Path]:
    """The extension modules built beside `module`'s source (any of this Python's suffixes)."""
    stem = source_of(module).with_suffix("")
    candidates = (Path(f"{stem}{suffix}") for suffix in EXTENSION_SUFFIXES)
    return [path for path in candidates if path.exists()]


def pure_requested(env: Mapping[str, str] = os.environ) -> bool:
    return env.get(PURE_ENV, "") not in ("", "0")


def stale_or_missing() -> set[str]:
    """The data-plane modules without a build, or whose source is newer than their build."""
    found = set()
    for module in data_plane_modules():
        files = build_files(module)
        if not files or min(f.stat().st_mtime for f in files) < source_of(module).stat().st_mtime:
            found.add(module)
    return found


def assert_runs_expected(reported: str, pure: bool) -> None:
    """`reported` (a process's "data plane: ..." answer) is what a process started with
    (`pure`) or without MEMCLOUD_PURE_PYTHON must run with the files as they are."""
    if pure:
        assert reported == PURE_REASON, reported
        return
    unfit = stale_or_missing()
    if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
        assert not unfit, f"CI builds the data plane (tools/build_native.py --required): {unfit}"
    if not any(build_files(module) for module in data_plane_modules()):
        assert reported == "pure Python (not built)", reported
    elif not unfit:
        assert reported == COMPILED, reported
    else:
        # A partial build, or a source edited since: the sources, naming one such module.
        named = reported.removeprefix("pure Python (incomplete build: ")
        named = named.removeprefix("pure Python (stale build: ")
        module = named.split(" ", 1)[0]
        assert module in unfit and reported.endswith(
            ("is not compiled)", "changed since it was compiled)")
        ), reported
