"""A node never outlives its supervisor: node 1 frozen (SIGSTOP) while node 0 is killed
with SIGKILL gets the supervisor's death signal on SIGCONT and stops within seconds. Its
heartbeat had met the stop and a timeout in one loop iteration, and Python 3.11's
asyncio.wait_for swallowed the cancellation: the node went on serving, an orphan."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not yet reaped by init) has exited too.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_frozen_node_whose_supervisor_died_stops_when_it_resumes(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", nodes=3).start()
    try:
        child = json.loads(node_info_path(server.data_dir, 1).read_text())["pid"]
        os.kill(child, signal.SIGSTOP)
        time.sleep(6)  # past its heartbeat's timeout: both are due when it resumes
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        time.sleep(1)
        os.kill(child, signal.SIGCONT)
        assert wait_for(lambda: not _alive(child), timeout=15), "node 1 serves on, orphaned"
    finally:
        server.stop()
