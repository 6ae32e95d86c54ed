"""python-binary-memcached (bmemcached): binary protocol with SASL PLAIN, as hosted users
configure it from MEMCACHIER_SERVERS / MEMCACHIER_USERNAME / MEMCACHIER_PASSWORD."""

from __future__ import annotations

import struct
from collections.abc import Callable

import bmemcached
import pytest
from bmemcached.exceptions import MemcachedException

from memcloud.protocol.binary import Opcode, Status, request
from memcloud.testing import read_env_file

from .conftest import Deployment


def _client(d: Deployment, username: str, password: str) -> bmemcached.Client:
    return bmemcached.Client([d.address], username, password, socket_timeout=5)


def _touch(client: bmemcached.Client, key: bytes, exptime: int) -> int:
    """bmemcached has no touch(); send one on its own authenticated connection."""
    server = next(iter(client.servers))
    server._send(request(Opcode.TOUCH, key=key, extras=struct.pack(">I", exptime)))
    status: int = server._get_response()[5]
    return status


def test_basic_operations(deployment: Deployment) -> None:
    client = _client(deployment, deployment.username, deployment.password)
    try:
        assert client.set("bm:key", "hello") is True
        assert client.get("bm:key") == "hello"
        assert client.delete("bm:key") is True
        assert client.get("bm:key") is None
        assert client.set("bm:n", 5) is True
        assert client.incr("bm:n", 3) == 8
        assert client.decr("bm:n", 10) == 0
        assert client.incr("bm:fresh", 1, default=41) == 41  # created with the initial value
        value, cas = client.gets("bm:n")
        assert value == 0 and cas
        assert client.cas("bm:n", 7, cas) is True
        assert client.cas("bm:n", 9, cas) is False  # stale CAS
        assert client.get("bm:n") == 7
        assert _touch(client, b"bm:n", 100) == Status.SUCCESS
        assert _touch(client, b"bm:missing", 100) == Status.KEY_ENOENT
        assert client.add("bm:n", 1) is False
        assert client.replace("bm:n", 2) is True
        assert client.flush_all(0) is True
        assert client.get("bm:n") is None
        stats = client.stats()[deployment.address]
        assert int(stats["auth_cmds"]) >= 1 and int(stats["cmd_flush"]) >= 1
    finally:
        client.disconnect_all()


def test_wrong_password_is_refused(deployment: Deployment) -> None:
    client = _client(deployment, deployment.username, "not-the-password")
    try:
        with pytest.raises(MemcachedException) as info:
            client.set("bm:x", "1")
        assert info.value.code == Status.AUTH_ERROR
    finally:
        client.disconnect_all()


def test_read_only_credential_cannot_write(deployment: Deployment) -> None:
    writer = _client(deployment, deployment.username, deployment.password)
    reader = _client(deployment, deployment.ro_username, deployment.ro_password)
    try:
        assert writer.set("bm:ro", "kept") is True
        assert reader.get("bm:ro") == "kept"
        # bmemcached raises on 0x05 (not stored) rather than returning False.
        writes: list[Callable[[], object]] = [
            lambda: reader.set("bm:ro", "changed"),
            lambda: reader.add("bm:ro2", "new"),
            lambda: reader.delete("bm:ro"),
            lambda: reader.incr("bm:ro", 1),
        ]
        for write in writes:
            with pytest.raises(MemcachedException) as info:
                write()
            assert info.value.code == Status.NOT_STORED
        with pytest.raises(MemcachedException) as info:
            reader.flush_all(0)
        assert info.value.code == Status.AUTH_ERROR
        assert writer.get("bm:ro") == "kept"
    finally:
        writer.disconnect_all()
        reader.disconnect_all()


def test_hosted_user_quick_start(deployment: Deployment) -> None:
    """What a hosted user does with the MEMCACHIER_* values `memcloud serve` prints."""
    env = read_env_file(deployment.server.data_dir)
    servers = env["MEMCACHIER_SERVERS"].split(",")
    client = bmemcached.Client(
        servers, env["MEMCACHIER_USERNAME"], env["MEMCACHIER_PASSWORD"], socket_timeout=5
    )
    try:
        assert client.set("bm:quick", {"a": 1}) is True
        assert client.get("bm:quick") == {"a": 1}
    finally:
        client.disconnect_all()
