"""The node registry, as an operator reads it with `memcloud nodes`: every node of
`memcloud serve --nodes 2` registers itself, a frozen node is marked down within five
seconds and comes back up when it resumes, and a clean stop leaves the registry."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for


def _nodes(server: ServerProcess) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = server.cli_json("nodes")
    return nodes


def _states(server: ServerProcess) -> dict[str, str]:
    return {node["address"]: node["state"] for node in _nodes(server)}


def test_every_node_registers_is_marked_down_when_frozen_and_leaves_at_stop(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, "--nodes", "2") as server:
        assert wait_for(lambda: len(_nodes(server)) == 2, timeout=5)
        nodes = _nodes(server)
        assert sorted(n["address"] for n in nodes) == sorted(server.servers)
        assert {(n["cluster"], n["machine"], n["state"]) for n in nodes} == {
            ("default", socket.gethostname(), "up")
        }
        child = json.loads(node_info_path(data, 1).read_text())
        frozen = server.servers[1]
        os.kill(child["pid"], signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            assert wait_for(lambda: _states(server)[frozen] == "down", timeout=6)
            assert time.monotonic() - stopped < 5.5
            assert _states(server)[server.servers[0]] == "up"
        finally:
            os.kill(child["pid"], signal.SIGCONT)
        assert wait_for(lambda: _states(server)[frozen] == "up", timeout=5)
    # A clean stop says goodbye: nothing stays registered (checked through the store).
    listed = ServerProcess(data).cli_json("nodes")
    assert listed == []


def test_cluster_and_machine_are_registered_as_given(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--cluster", "eu-1", "--machine", "rack7") as server:
        assert wait_for(lambda: len(_nodes(server)) == 1, timeout=5)
        [node] = _nodes(server)
        assert (node["address"], node["cluster"], node["machine"], node["state"]) == (
            server.servers[0],
            "eu-1",
            "rack7",
            "up",
        )
        text = server.cli("nodes").stdout
        assert text.splitlines()[0].split() == [
            "id", "address", "cluster", "machine", "state", "heartbeat"
        ]  # fmt: skip
        assert f"{server.servers[0]}  eu-1     rack7    up" in text
