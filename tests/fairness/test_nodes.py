"""With --nodes N each node admits its share, ceil(limit / N), of a cache's connections."""

from __future__ import annotations

from pathlib import Path

from conftest import RawConnection
from memcloud.testing import ServerProcess, ascii_login, wait_for
from server.helpers import create_cache

TOO_MANY = b"SERVER_ERROR Too many open connections\r\n"


def test_each_node_admits_its_share_of_the_limit(tmp_path: Path) -> None:
    args = ("--plans", "dev=25MB,small=1MB:connections=3")
    with ServerProcess(tmp_path / "data", *args, nodes=2) as server:
        tenant = create_cache(server, "split", plan="1MB")
        ports = [int(address.rpartition(":")[2]) for address in server.servers]
        assert len(ports) == 2
        login = ascii_login(tenant.username, tenant.password)

        def node_knows(port: int) -> bool:
            conn = RawConnection(port)
            try:
                return conn.request(login) == b"STORED\r\n"
            finally:
                conn.close()

        assert wait_for(lambda: node_knows(ports[1]), timeout=5, interval=0.3)
        held: list[RawConnection] = []
        try:
            for port in ports:
                replies = []
                for _ in range(3):  # ceil(3 / 2) = 2 on each node
                    conn = RawConnection(port)
                    replies.append(conn.request(login))
                    held.append(conn)
                assert replies == [b"STORED\r\n", b"STORED\r\n", TOO_MANY], port
        finally:
            for conn in held:
                conn.close()
