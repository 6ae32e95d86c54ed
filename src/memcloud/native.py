"""The compiled hot path: which modules mypyc compiles, and whether this process uses them.

`tools/build_native.py` (run by `make serve`, `make test` and `make bench`) compiles the data
plane's modules with mypyc into extension modules beside their sources; Python imports an
extension module in preference to the `.py` of the same name. The sources stay the reference
and the fallback, and are used instead when:

* `MEMCLOUD_PURE_PYTHON=1` is set (for this process and the node processes it starts);
* the build is missing or incomplete (no C compiler: the data plane simply runs slower);
* any source is newer than the build, which would otherwise run old code silently.

The choice is all or nothing: compiled modules call each other's classes directly, so a mix
of compiled and source modules would hold two different `Cache` classes.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = [
    "COMPILED_MODULES",
    "PURE_ENV",
    "SOURCE_ROOT",
    "build_state",
    "compiled_files",
    "in_use",
    "select",
    "source_file",
]

PURE_ENV = "MEMCLOUD_PURE_PYTHON"

# What one request passes through, from the socket to the cache and back.
COMPILED_MODULES = (
    "memcloud.protocol.limits",
    "memcloud.protocol.prefix",
    "memcloud.protocol.commands",
    "memcloud.protocol.replies",
    "memcloud.protocol.numbers",
    "memcloud.protocol.guards",
    "memcloud.protocol.plain",
    "memcloud.protocol.meta",
    "memcloud.protocol.text",
    "memcloud.protocol.binary",
    "memcloud.protocol.sasl",
    "memcloud.protocol.specs",
    "memcloud.storage.results",
    "memcloud.storage.stats",
    "memcloud.storage.counter",
    "memcloud.storage.item",
    "memcloud.storage.detail",
    "memcloud.storage.insight",
    "memcloud.storage.prefix_flush",
    "memcloud.storage.uniques",
    "memcloud.storage.lru",
    "memcloud.storage.keyspace",
    "memcloud.storage.cache",
    "memcloud.storage.meta",
    "memcloud.storage.registry",
    "memcloud.storage.snapshot",
    "memcloud.auth_throttle",
    "memcloud.admission",
    "memcloud.gate",
    "memcloud.placement",
    "memcloud.cluster.wire",
    "memcloud.cluster.channel",
    "memcloud.cluster.link",
    "memcloud.routing",
    "memcloud.protocol.forms",
    "memcloud.unowned",
    "memcloud.service",
    "memcloud.text_login",
    "memcloud.text_forwarding",
    "memcloud.text_admin",
    "memcloud.meta_session",
    "memcloud.text_session",
    "memcloud.binary_forwarding",
    "memcloud.binary_session",
    "memcloud.forwarded",
    "memcloud.server.connection",
)

# The directory that holds the `memcloud` package (src/ in a checkout).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def source_file(module: str, root: Path = SOURCE_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def compiled_files(module: str, root: Path = SOURCE_ROOT) -> list[Path]:
    """The extension modules built for `module` (by this interpreter's naming)."""
    stem = source_file(module, root).with_suffix("")
    candidates = (Path(f"{stem}{suffix}") for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    return [path for path in candidates if path.exists()]


def build_state(modules: Sequence[str] = COMPILED_MODULES, root: Path = SOURCE_ROOT) -> str:
    """ "compiled" when every module has a build newer than its source; otherwise why not:
    "not built", "incomplete build: M" or "stale build: M changed since it was compiled"."""
    built = {module: compiled_files(module, root) for module in modules}
    if not any(built.values()):
        return "not built"
    for module, files in built.items():
        if not files:
            return f"incomplete build: {module} is not compiled"
        if min(f.stat().st_mtime for f in files) < source_file(module, root).stat().st_mtime:
            return f"stale build: {module} changed since it was compiled"
    return "compiled"


class _SourcesFirst:
    """A meta-path finder that loads the compiled modules' `.py` sources."""

    def __init__(self, modules: Sequence[str], root: Path) -> None:
        self.sources = {module: source_file(module, root) for module in modules}

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self.sources.get(name)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(name, source)


_reason = "not selected yet"


def select() -> str:
    """Decide, before any data-plane module is imported, between the compiled modules and
    their sources; answers what this process runs (also `in_use()`)."""
    global _reason
    state = build_state()
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _reason = f"pure Python ({PURE_ENV} is set)"
    elif state != "compiled":
        _reason = f"pure Python ({state})"
    else:
        _reason = "compiled with mypyc"
        return _reason
    if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst(COMPILED_MODULES, SOURCE_ROOT))
    return _reason


def in_use() -> str:
    """What this process's data plane runs: "compiled with mypyc" or "pure Python (why)"."""
    return _reason
