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

from data_plane import (
    COMPILED,
    PURE_ENV,
    SRC,
    assert_runs_expected,
    build_files,
    data_plane_modules,
    pure_requested,
    source_of,
    stale_or_missing,
)
from memcloud import native
from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

# How this test process was started (`make test` sets it for the run on the sources).
PURE = pure_requested()


def test_the_compiled_modules_are_the_whole_data_plane() -> None:
    assert set(native.COMPILED_MODULES) == data_plane_modules()
    assert len(native.COMPILED_MODULES) == len(data_plane_modules())  # no module twice
    assert (native.PURE_ENV, native.SOURCE_ROOT) == (PURE_ENV, SRC)


def test_this_process_runs_the_expected_data_plane() -> None:
    assert_runs_expected(native.in_use(), PURE)


def test_every_data_plane_module_comes_from_the_file_it_must() -> None:
    # The build is used only whole and current, and never under MEMCLOUD_PURE_PYTHON.
    compiled = not PURE and not stale_or_missing()
    assert (native.in_use() == COMPILED) == compiled
    for name in sorted(data_plane_modules()):
        loaded = importlib.import_module(name).__file__
        assert loaded is not None
        if compiled:
            assert Path(loaded) in build_files(name), f"{name} loaded from {loaded}"
        else:
            assert Path(loaded) == source_of(name), f"{name} loaded from {loaded}"


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
    env = {PURE_ENV: "1" if pure else ""}
    args = ("--nodes", "2", "--anonymous-cache", "anon")
    with ServerProcess(tmp_path / "data", *args, env=env) as server:
        assert_runs_expected(server.data_plane, pure)
        node = node_info_path(server.data_dir, 1)
        assert wait_for(node.exists, timeout=10)
        assert json.loads(node.read_text())["data_plane"] == server.data_plane
        # And the data plane it runs answers.
        host, port = server.servers[1].rsplit(":", 1)
        client = Client((host, int(port)))
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
