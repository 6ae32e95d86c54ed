"""pylibmc (libmemcached): binary protocol with SASL, as MemCachier's Python docs configure it.

The PyPI wheel's libsasl2 looks for its PLAIN plugin in SASL_PATH; Debian installs it with
libsasl2-modules. Without it libmemcached fails with "no mechanism available" (the error
section 8 of the reference quotes), so the path is set before pylibmc initialises SASL.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Deployment


def _sasl_plugin_dir() -> str | None:
    for path in sorted(glob.glob("/usr/lib/*/sasl2/libplain.so*")) + sorted(
        glob.glob("/usr/lib/sasl2/libplain.so*")
    ):
        return os.path.dirname(path)
    return None


@pytest.fixture(scope="module")
def pylibmc() -> Iterator[Any]:
    plugins = _sasl_plugin_dir()
    if plugins is None:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail("libsasl2-modules (SASL PLAIN plugin) is required in CI")
        pytest.skip("libsasl2-modules is not installed")
    os.environ.setdefault("SASL_PATH", plugins)
    import pylibmc as module

    yield module


def _client(pylibmc: Any, d: Deployment, username: str, password: str) -> Any:
    return pylibmc.Client(
        [d.address],
        binary=True,
        username=username,
        password=password,
        behaviors={"cas": True, "connect_timeout": 5000, "receive_timeout": 5_000_000},
    )


def test_basic_operations(pylibmc: Any, deployment: Deployment) -> None:
    client = _client(pylibmc, deployment, deployment.username, deployment.password)
    try:
        assert client.set("lm:key", "hello") is True
        assert client.get("lm:key") == "hello"
        assert client.delete("lm:key") is True
        assert client.get("lm:key") is None
        assert client.set("lm:n", "5") is True
        assert client.incr("lm:n", 3) == 8
        assert client.decr("lm:n", 10) == 0
        value, cas = client.gets("lm:n")
        assert value == "0" and cas
        assert client.cas("lm:n", "7", cas) is True
        assert client.cas("lm:n", "9", cas) is False
        assert client.get("lm:n") == "7"
        # libmemcached waits 5 s after a successful binary touch, against memcached too
        # (it expects more bytes than memcached's 4-byte answer); the answer is still right.
        assert client.touch("lm:n", 100) is True
        assert client.touch("lm:missing", 100) is False
        assert client.add("lm:n", "1") is False
        assert client.set_multi({"lm:a": "1", "lm:b": "2"}) == []
        assert client.get_multi(["lm:a", "lm:b", "lm:c"]) == {"lm:a": "1", "lm:b": "2"}
        assert client.flush_all() is True
        assert client.get("lm:n") is None
        stats = dict(client.get_stats())
        # libmemcached parses only the stat names it knows (not auth_cmds)
        assert all(int(s["cmd_get"]) >= 1 for s in stats.values())
    finally:
        client.disconnect_all()


def test_wrong_password_is_refused(pylibmc: Any, deployment: Deployment) -> None:
    client = _client(pylibmc, deployment, deployment.username, "not-the-password")
    try:
        with pytest.raises(pylibmc.Error):
            client.set("lm:x", "1")
    finally:
        client.disconnect_all()


def test_read_only_credential_cannot_write(pylibmc: Any, deployment: Deployment) -> None:
    writer = _client(pylibmc, deployment, deployment.username, deployment.password)
    reader = _client(pylibmc, deployment, deployment.ro_username, deployment.ro_password)
    try:
        assert writer.set("lm:ro", "kept") is True
        assert reader.get("lm:ro") == "kept"
        # "value not set", as MemCachier describes pylibmc without the write capability
        assert reader.set("lm:ro", "changed") is False
        assert writer.get("lm:ro") == "kept"
        # No flush capability: the server refuses (0x20); libmemcached's binary flush
        # does not report a server's refusal, so what shows is that nothing was flushed.
        reader.flush_all()
        assert writer.get("lm:ro") == "kept"
    finally:
        writer.disconnect_all()
        reader.disconnect_all()
