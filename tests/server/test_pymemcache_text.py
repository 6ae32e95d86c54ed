"""pymemcache, a stock ASCII client, authenticating with the hosted `set` scheme."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError

from memcloud.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("pymemcache") / "data"
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    client = Client(("127.0.0.1", server.port), connect_timeout=5, timeout=5)
    assert client.set(server.username, server.password, noreply=False) is True
    client.flush_all(noreply=False)
    yield client
    client.close()


def test_set_get_delete(client: Client) -> None:
    assert client.set("k", b"value", noreply=False) is True
    assert client.get("k") == b"value"
    assert client.get_many(["k", "missing"]) == {"k": b"value"}
    assert client.delete("k", noreply=False) is True
    assert client.delete("k", noreply=False) is False
    assert client.get("k") is None


def test_add_replace_append_prepend(client: Client) -> None:
    assert client.add("k", b"b", noreply=False) is True
    assert client.add("k", b"x", noreply=False) is False
    assert client.replace("k", b"b", noreply=False) is True
    assert client.replace("nothing", b"x", noreply=False) is False
    assert client.append("k", b"c", noreply=False) is True
    assert client.prepend("k", b"a", noreply=False) is True
    assert client.get("k") == b"abc"


def test_incr_decr(client: Client) -> None:
    assert client.incr("n", 1, noreply=False) is None
    client.set("n", b"10", noreply=False)
    assert client.incr("n", 5, noreply=False) == 15
    assert client.decr("n", 100, noreply=False) == 0
    client.set("n", b"18446744073709551615", noreply=False)
    assert client.incr("n", 1, noreply=False) == 0
    client.set("s", b"text", noreply=False)
    with pytest.raises(Exception, match="non-numeric"):
        client.incr("s", 1, noreply=False)


def test_gets_cas(client: Client) -> None:
    client.set("k", b"v1", noreply=False)
    value, token = client.gets("k")
    assert value == b"v1"
    assert client.cas("k", b"v2", token, noreply=False) is True
    assert client.cas("k", b"v3", token, noreply=False) is False
    assert client.cas("missing", b"v", token, noreply=False) is None
    assert client.get("k") == b"v2"


def test_touch(client: Client) -> None:
    client.set("k", b"v", noreply=False)
    assert client.touch("k", 100, noreply=False) is True
    assert client.touch("missing", 100, noreply=False) is False
    assert client.get("k") == b"v"


def test_flush_all_and_noreply(client: Client) -> None:
    client.set_many({"a": b"1", "b": b"2"})  # noreply by default
    assert client.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}
    assert client.flush_all(noreply=False) is True
    assert client.get_many(["a", "b"]) == {}


def test_too_large_and_stats(client: Client, server: ServerProcess) -> None:
    with pytest.raises(MemcacheServerError, match="object too large"):
        client.set("big", b"x" * (2 * 1024 * 1024), noreply=False)
    # pymemcache drops the connection on a server error; the new one must log in again
    assert client.set(server.username, server.password, noreply=False) is True
    assert client.set("after", b"ok", noreply=False) is True
    stats = client.stats()
    assert stats[b"limit_maxbytes"] == 25 * 1024 * 1024
    assert stats[b"curr_items"] == 1
    assert client.version().startswith(b"1.")


def test_unauthenticated_client_is_refused(server: ServerProcess) -> None:
    client = Client(("127.0.0.1", server.port), connect_timeout=5, timeout=5)
    with pytest.raises(Exception, match="unauthenticated"):
        client.get("k")
    client.close()
