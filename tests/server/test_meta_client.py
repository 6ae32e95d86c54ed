"""The PyPI client `meta-memcache` (it speaks only the meta protocol) against memcloud: set,
get, touch, delta, delete and stale-while-revalidate, on a credentialled cache and on an
anonymous one; and a meta client of one cache never sees another cache's keys.

meta-memcache has no login of its own; its documented hook for authentication is the
socket factory of its connection pool (configuration.socket_factory_builder), so the
credentialled client's factory sends memcloud's text login (`set <username> ...`) on each
new socket before meta-memcache uses it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from meta_memcache.cache_client import CacheClient
from meta_memcache.configuration import ServerAddress, StalePolicy
from meta_memcache.connection.pool import ConnectionPool
from meta_memcache.interfaces.cache_api import CacheApi
from meta_memcache.protocol import Key

from memcloud.testing import ServerProcess, ascii_login
from server.helpers import create_cache


def _socket_factory(port: int, login: bytes | None) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if login is not None:
            sock.sendall(login)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(64)
                assert chunk, reply
                reply += chunk
            assert reply == b"STORED\r\n", reply
        return sock

    return connect


def client(port: int, login: bytes | None) -> CacheApi:
    address = ServerAddress("127.0.0.1", port)

    def pool(server: ServerAddress) -> ConnectionPool:
        return ConnectionPool(
            server=str(server),
            socket_factory_fn=_socket_factory(port, login),
            initial_pool_size=1,
            max_pool_size=2,
            mark_down_period_s=0.1,
            read_buffer_size=4096,
        )

    return CacheClient.cache_client_from_servers(servers=[address], connection_pool_factory_fn=pool)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    base: Path = tmp_path_factory.mktemp("meta-client")
    with (
        ServerProcess(base / "credentialled") as credentialled,
        ServerProcess(base / "anonymous", "--anonymous-cache", "meta-anon") as anonymous,
    ):
        yield {"credentialled": credentialled, "anonymous": anonymous}


def _login_of(server: ServerProcess, kind: str) -> bytes | None:
    return ascii_login(server.username, server.password) if kind == "credentialled" else None


@pytest.mark.parametrize("kind", ["credentialled", "anonymous"])
def test_meta_memcache_commands(servers: dict[str, ServerProcess], kind: str) -> None:
    server = servers[kind]
    cache = client(server.port, _login_of(server, kind))
    assert cache.set(Key(f"{kind}-k"), "value", ttl=100)
    assert cache.get(Key(f"{kind}-k")) == "value"
    assert cache.set(Key(f"{kind}-obj"), {"a": [1, 2]}, ttl=100)
    assert cache.get(Key(f"{kind}-obj")) == {"a": [1, 2]}
    assert cache.get(Key(f"{kind}-missing")) is None
    # touch: the remaining TTL changes (read back through a raw meta get)
    assert cache.touch(Key(f"{kind}-k"), ttl=5000)
    assert not cache.touch(Key(f"{kind}-missing"), ttl=10)
    # delta: increments and decrements a counter, created on first use
    assert cache.delta_initialize(Key(f"{kind}-n"), delta=1, initial_value=10, initial_ttl=100)
    assert cache.delta_and_get(Key(f"{kind}-n"), delta=5) == 15
    assert cache.delta_and_get(Key(f"{kind}-n"), delta=-3) == 12
    assert cache.delta(Key(f"{kind}-missing-n"), delta=1) is False
    # delete
    assert cache.delete(Key(f"{kind}-k"))
    assert not cache.delete(Key(f"{kind}-k"))
    assert cache.get(Key(f"{kind}-k")) is None
    # a binary-unsafe key: meta-memcache sends it base64-encoded (`b`)
    odd = Key(f"{kind} key with spaces and ü")
    assert cache.set(odd, b"\x00bytes", ttl=100)
    assert cache.get(odd) == b"\x00bytes"


@pytest.mark.parametrize("kind", ["credentialled", "anonymous"])
def test_meta_memcache_stale_while_revalidate(servers: dict[str, ServerProcess], kind: str) -> None:
    server = servers[kind]
    first = client(server.port, _login_of(server, kind))
    second = client(server.port, _login_of(server, kind))
    policy = StalePolicy(mark_stale_on_deletion_ttl=30, mark_stale_on_cas_mismatch=True)
    key = Key(f"{kind}-swr")
    assert first.set(key, "v1", ttl=100)
    value, cas = first.get_cas(key)
    assert value == "v1" and cas is not None
    # An invalidation marks the item stale instead of removing it ...
    assert first.delete(key, stale_policy=policy)
    # ... the first reader after it wins the recache (a miss for it), the others keep
    # the stale value while it recaches
    assert first.get(key) is None
    assert second.get(key) == "v1"
    assert second.get(key) == "v1"
    # a write with the pre-invalidation CAS is stored, as stale, not refused
    assert second.set(key, "late", ttl=100, cas_token=cas, stale_policy=policy)
    # the winner's fresh value ends the stale period for everyone
    assert first.set(key, "v2", ttl=100)
    assert second.get(key) == "v2"
    assert first.get(key) == "v2"


def test_meta_clients_of_two_caches_see_only_their_own_keys(
    servers: dict[str, ServerProcess],
) -> None:
    server = servers["credentialled"]
    other = create_cache(server, "other-meta")
    login_b = ascii_login(other.username, other.password)
    a = client(server.port, ascii_login(server.username, server.password))
    b = client(server.port, login_b)
    assert a.set(Key("shared-name"), "a's", ttl=100)
    assert b.get(Key("shared-name")) is None
    assert b.set(Key("shared-name"), "b's", ttl=100)
    assert a.get(Key("shared-name")) == "a's"
    assert b.get(Key("shared-name")) == "b's"
    assert b.delete(Key("shared-name"))
    assert a.get(Key("shared-name")) == "a's"
    raw_b = _socket_factory(server.port, login_b)()
    raw_b.sendall(b"me shared-name\r\nmg shared-name v\r\nma shared-name\r\nmn\r\n")
    reply = b""
    while not reply.endswith(b"MN\r\n"):
        reply += raw_b.recv(4096)
    raw_b.close()
    assert reply == b"EN\r\nEN\r\nNF\r\nMN\r\n"
