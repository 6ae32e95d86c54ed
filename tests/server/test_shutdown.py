"""SIGTERM and SIGINT stop `memcloud serve` cleanly: exit 0, clients closed, files removed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_gracefully(tmp_path: Path, signum: signal.Signals) -> None:
    proc = ServerProcess(tmp_path / "data", "--nodes", "2").start()
    assert proc.process is not None
    conn = RawConnection(proc.port)
    assert conn.request(ascii_login(proc.username, proc.password)) == b"STORED\r\n"
    assert conn.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    proc.process.send_signal(signum)
    assert proc.process.wait(timeout=15) == 0
    assert conn.is_closed()
    assert not (proc.data_dir / "server.json").exists()
    assert not (proc.data_dir / "node-1.json").exists()  # the node process stopped too
    assert proc.stop() == 0
    assert "Traceback" not in proc.stderr
