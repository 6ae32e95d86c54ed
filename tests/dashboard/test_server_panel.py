"""The operator view's server panel in headless Chromium against `memcloud serve --nodes 2
--memory 64MB`: both nodes with health, uptime and connections, the memory budget against
the plans, each cache's cluster, the overcommit warning once the plans exceed the memory,
and a frozen node shown down."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

from .conftest import admin_token, base_url, screenshot


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[ServerProcess]:
    args = ("--nodes", "2", "--memory", "64MB", "--max-connections", "300")
    with ServerProcess(tmp_path / "data", *args) as server:
        assert wait_for(lambda: len(server.cli_json("nodes")) == 2, timeout=5)
        yield server


def _connections(server: ServerProcess) -> int:
    [cluster] = server.cli_json("server")["clusters"]
    return int(cluster["connections"])


def _operator(page: Any, server: ServerProcess) -> None:
    page.goto(f"{base_url(server)}/dashboard/admin/login")
    page.fill("input[name=token]", admin_token(server))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/admin$"))


def test_the_server_panel_shows_nodes_budget_and_warnings(
    two_nodes: ServerProcess, page: Any, tmp_path: Path
) -> None:
    server = two_nodes
    held = socket.create_connection(server.address, timeout=5)
    try:
        # The connection is counted by node 0's next heartbeat.
        assert wait_for(lambda: _connections(server) == 1, timeout=10)
        _operator(page, server)
        panel = page.locator("#servers .cluster-panel[data-cluster=default]")
        assert "2 of 2 node(s) up" in panel.inner_text()
        for address in server.servers:
            row = panel.locator(f"tr[data-node='{address}']")
            assert row.locator("td.state").inner_text().strip() == "up"
            assert "/ 300" in row.inner_text()
            assert "32.0 MB" in row.inner_text()  # --memory 64MB over two node processes
        first = panel.locator(f"tr[data-node='{server.servers[0]}']").inner_text()
        assert "1 / 300" in first and re.search(r"\b\d+s\b", first)
        assert panel.locator(".plans").inner_text() == "25.0 MB"
        assert panel.locator(".memory").inner_text() == "64.0 MB"
        assert panel.locator(".connections").inner_text() == "1"
        assert page.locator(".overcommit").count() == 0
        assert page.inner_text("tr[data-cache=default] td.cluster") == "default"
    finally:
        held.close()

    # 25 MB + 100 MB of plans on 64 MB: the page warns, above everything else.
    page.fill("input[name=name]", "big")
    page.fill("form[action$='/admin/caches'] input[name=plan]", "100MB")
    page.click("text=Create cache")
    assert "MEMCACHIER_SERVERS=" + ",".join(server.servers) in page.inner_text("#new-cache")
    warning = page.inner_text(".overcommit")
    assert "plans on cluster default (125 MB) exceed the memory of its live nodes (64.0 MB)" in (
        warning
    )
    assert page.locator(".cluster-panel .badge.bad", has_text="overcommitted").count() == 1
    screenshot(page, "operator-servers", tmp_path)

    # A frozen node: down on the next page, its heartbeat's age beside it.
    child = json.loads(node_info_path(server.data_dir, 1).read_text())
    os.kill(child["pid"], signal.SIGSTOP)
    try:
        frozen = server.servers[1]
        assert wait_for(
            lambda: {n["address"]: n["state"] for n in server.cli_json("nodes")}[frozen] == "down",
            timeout=10,
        )
        page.goto(f"{base_url(server)}/dashboard/admin")
        row = page.locator(f"tr[data-node='{frozen}'] td.state")
        assert row.inner_text().startswith("down")
        assert "since its heartbeat" in row.inner_text()
        assert "1 of 2 node(s) up" in page.inner_text(".cluster-panel[data-cluster=default]")

        # Until the survivor takes the frozen node's keys over, the cache's stats cannot be
        # complete and read unknown ("—", never a made-up zero); within the takeover (5 s)
        # the survivor answers for the whole cache and its numbers are shown again.
        def whole_again() -> bool:
            page.goto(f"{base_url(server)}/dashboard/admin")
            return bool(page.locator("tr[data-cache=default] td", has_text="—").count() == 0)

        assert wait_for(whole_again, timeout=15, interval=0.5)
        assert "1 of 2 node(s) up" in page.inner_text(".cluster-panel[data-cluster=default]")
    finally:
        os.kill(child["pid"], signal.SIGCONT)
