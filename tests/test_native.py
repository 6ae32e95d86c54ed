"""The compiled hot path (memcloud.native): the data plane runs either every compiled module
or every source, never a stale build, and `MEMCLOUD_PURE_PYTHON=1` chooses the sources for a
server and its node processes.

`make test` runs the data-plane tests twice: once on the sources (MEMCLOUD_PURE_PYTHON=1),
once on the compiled modules; in CI (MEMCLOUD_REQUIRE_ALL_TOOLS=1) the build must exist.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from memcloud import native
from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

PURE = os.environ.get(native.PURE_ENV, "") not in ("", "0")
COMPILED = "compiled with mypyc"


def expected_data_plane() -> str:
    if PURE:
        return f"pure Python ({native.PURE_ENV} is set)"
    if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
        return COMPILED  # CI builds it (tools/build_native.py --required)
    state = native.build_state()
    return COMPILED if state == "compiled" else f"pure Python ({state})"


def test_this_process_runs_the_expected_data_plane() -> None:
    assert native.in_use() == expected_data_plane()


def test_every_data_plane_module_comes_from_the_same_kind_of_file() -> None:
    compiled = native.in_use() == COMPILED
    for name in native.COMPILED_MODULES:
        path = importlib.import_module(name).__file__
        assert path is not None
        is_extension = path.endswith(tuple(EXTENSION_SUFFIXES))
        assert is_extension == compiled, f"{name} loaded from {path}"


def _fake_package(root: Path, modules: tuple[str, ...], built: tuple[str, ...]) -> None:
    for name in modules:
        source = native.source_file(name, root)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
        os.utime(source, (1_000, 1_000))
    for name in built:
        stem = native.source_file(name, root).with_suffix("")
        Path(f"{stem}{EXTENSION_SUFFIXES[0]}").write_bytes(b"")


def test_build_state_tells_complete_incomplete_and_stale_builds(tmp_path: Path) -> None:
    modules = ("pkg.a", "pkg.sub.b")
    _fake_package(tmp_path, modules, built=())
    assert native.build_state(modules, tmp_path) == "not built"
    _fake_package(tmp_path, modules, built=("pkg.a",))
    assert native.build_state(modules, tmp_path) == "incomplete build: pkg.sub.b is not compiled"
    _fake_package(tmp_path, modules, built=modules)
    assert native.build_state(modules, tmp_path) == "compiled"
    later = time.time() + 10
    os.utime(native.source_file("pkg.sub.b", tmp_path), (later, later))
    assert native.build_state(modules, tmp_path) == (
        "stale build: pkg.sub.b changed since it was compiled"
    )


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "default"])
def test_a_server_and_its_nodes_report_what_they_run(tmp_path: Path, pure: bool) -> None:
    env = {native.PURE_ENV: "1" if pure else ""}
    args = ("--nodes", "2", "--anonymous-cache", "anon")
    with ServerProcess(tmp_path / "data", *args, env=env) as server:
        if pure:
            expected = f"pure Python ({native.PURE_ENV} is set)"
        else:
            expected = COMPILED if native.build_state() == "compiled" else server.data_plane
            if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
                assert expected == COMPILED
        assert server.data_plane == expected
        node = node_info_path(server.data_dir, 1)
        assert wait_for(node.exists, timeout=10)
        assert json.loads(node.read_text())["data_plane"] == expected
        # And the data plane it runs answers.
        host, port = server.servers[1].rsplit(":", 1)
        client = Client((host, int(port)))
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
