"""A cache deleted and another created within one poll of the control store (issue 9,
finding 1c): the node sees both changes at once, and the old cache's connections must not
reach the new cache's items, nor the new cache the old one's."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import RawConnection
from memcloud.auth import Directory
from memcloud.config import Settings
from memcloud.server.runner import Runtime
from memcloud.testing import InProcessServer, ServerProcess, ascii_login, wait_for


def _runtime(server: InProcessServer) -> Runtime:
    assert server.runtime is not None
    return server.runtime


def _create(server: InProcessServer, name: str) -> tuple[int, str, str]:
    runtime = _runtime(server)

    def create() -> tuple[int, str, str]:
        cache = runtime.store.create_cache(name, 1024 * 1024)
        credential = runtime.store.create_credential(cache.id)
        runtime.service.set_directory(Directory.load(runtime.store))
        return cache.id, credential.record.username, credential.password

    return server.call(create)


def _replace(server: InProcessServer, old_id: int, name: str) -> tuple[int, str, str]:
    """Delete `old_id` and create `name`, applied on the node as one snapshot (on the
    loop's thread, so no poll of the store runs in between)."""
    runtime = _runtime(server)

    def replace() -> tuple[int, str, str]:
        runtime.store.delete_cache(old_id)
        cache = runtime.store.create_cache(name, 1024 * 1024)
        credential = runtime.store.create_credential(cache.id)
        runtime.service.set_directory(Directory.load(runtime.store))
        return cache.id, credential.record.username, credential.password

    return server.call(replace)


def _login(port: int, username: str, password: str) -> RawConnection:
    conn = RawConnection(port)
    assert conn.request(ascii_login(username, password)) == b"STORED\r\n"
    return conn


def test_delete_and_create_in_one_poll_closes_the_old_connections(tmp_path: Path) -> None:
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as server:
        old_id, old_user, old_password = _create(server, "a")
        old = _login(server.port, old_user, old_password)
        assert old.request(b"set secret-a 0 0 1\r\nA\r\n") == b"STORED\r\n"

        new_id, new_user, new_password = _replace(server, old_id, "b")
        # The old connection is closed as memcached closes one: no reply, just EOF.
        assert old.is_closed()
        new = _login(server.port, new_user, new_password)
        # The new cache starts empty: none of the deleted cache's items.
        assert new.request(b"get secret-a\r\n") == b"END\r\n"
        assert new.request(b"set secret-b 0 0 1\r\nB\r\n") == b"STORED\r\n"
        assert new_id != old_id


def test_a_new_generation_under_the_same_id_is_a_new_cache(tmp_path: Path) -> None:
    """Even if an id were handed out again, the generation tells the caches apart: the
    registry swaps in a fresh cache and the old generation's connections close."""
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as server:
        cache_id, username, password = _create(server, "a")
        old = _login(server.port, username, password)
        assert old.request(b"set secret-a 0 0 1\r\nA\r\n") == b"STORED\r\n"
        runtime = _runtime(server)

        def same_id_new_generation() -> tuple[int, str, str]:
            snapshot = Directory.load(runtime.store)
            reborn = [
                dataclasses.replace(c, generation="f" * 32) if c.id == cache_id else c
                for c in snapshot.caches.values()
            ]
            directory = Directory(reborn, runtime.store.list_credentials(), snapshot.revision)
            runtime.service.set_directory(directory)
            cache = runtime.service.registry.get(cache_id)
            assert cache is not None
            return len(cache.items), cache.name, runtime.service.registry.generations[cache_id]

        assert server.call(same_id_new_generation) == (0, "a", "f" * 32)
        assert old.is_closed()
        # The credential still names the id, but its principal is made for the new
        # generation now: it logs in to the fresh (empty) cache, never the old items.
        again = _login(server.port, username, password)
        assert again.request(b"get secret-a\r\n") == b"END\r\n"


def _cli(data_dir: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    argv = [sys.executable, "-m", "memcloud.cli", *args, "--json", "--data-dir", str(data_dir)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True)
    result: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip() else {}
    return result


def test_cli_delete_then_create_against_a_running_server(tmp_path: Path) -> None:
    """The finding as an operator meets it: `memcloud cache delete a && memcloud cache
    create b` while a's client is connected to a running server."""
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir) as server:
        a = _cli(data_dir, "cache", "create", "a")
        [a_credential] = a["credentials"]
        assert wait_for(
            lambda: (
                RawConnection(server.port).request(
                    ascii_login(a_credential["sasl_username"], a_credential["sasl_password"])
                )
                == b"STORED\r\n"
            )
        )
        old = _login(server.port, a_credential["sasl_username"], a_credential["sasl_password"])
        assert old.request(b"set secret-a 0 0 1\r\nA\r\n") == b"STORED\r\n"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "memcloud.cli",
                "cache",
                "delete",
                "a",
                "--data-dir",
                str(data_dir),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        b = _cli(data_dir, "cache", "create", "b")
        [b_credential] = b["credentials"]
        assert b["id"] != a["id"] and b_credential["id"] != a_credential["id"]
        assert old.is_closed(timeout=10)
        assert wait_for(
            lambda: (
                RawConnection(server.port).request(
                    ascii_login(b_credential["sasl_username"], b_credential["sasl_password"])
                )
                == b"STORED\r\n"
            )
        )
        new = _login(server.port, b_credential["sasl_username"], b_credential["sasl_password"])
        assert new.request(b"get secret-a\r\n") == b"END\r\n"
