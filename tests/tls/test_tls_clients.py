"""Real clients over TLS, with the credentials the first start printed: pymemcache (text
`set` login), python-binary-memcached (binary, SASL PLAIN), emcache (text login), Ruby's
Dalli (binary, SASL PLAIN, `ssl_context`) and `openssl s_client`."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import bmemcached
import emcache
from pymemcache.client.base import Client

from conftest import require_tool
from memcloud.testing import ServerProcess, ascii_login, read_env_file

from .conftest import Certs

DALLI_SCRIPT = Path(__file__).parent / "dalli_tls.rb"


def test_env_file_lists_the_tls_servers_beside_the_plain_ones(tls_server: ServerProcess) -> None:
    env = read_env_file(tls_server.data_dir)
    assert env["MEMCACHIER_SERVERS"] == f"127.0.0.1:{tls_server.port}"
    assert env["MEMCLOUD_TLS_SERVERS"] == f"127.0.0.1:{tls_server.tls_port}"


def test_pymemcache_reads_and_writes_over_tls(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.tls_port is not None
    client = Client(
        ("127.0.0.1", tls_server.tls_port),
        tls_context=certs.client_context(),
        default_noreply=False,
        connect_timeout=5,
        timeout=5,
    )
    try:
        assert client.set(tls_server.username, tls_server.password) is True  # the text login
        assert client.set("tls:key", b"over tls") is True
        assert client.get("tls:key") == b"over tls"
        big = os.urandom(200_000)  # many TLS records each way
        assert client.set("tls:big", big) is True
        assert client.get("tls:big") == big
        assert client.incr("tls:n", 1) is None
        assert client.delete("tls:key") is True
        assert client.get("tls:key") is None
    finally:
        client.close()


def test_plain_and_tls_ports_serve_the_same_cache(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.tls_port is not None
    plain = Client(("127.0.0.1", tls_server.port), default_noreply=False, timeout=5)
    tls = Client(("127.0.0.1", tls_server.tls_port), tls_context=certs.client_context(), timeout=5)
    try:
        assert plain.set(tls_server.username, tls_server.password) is True
        assert tls.set(tls_server.username, tls_server.password) is True
        assert plain.set("both:key", b"plain wrote") is True
        assert tls.get("both:key") == b"plain wrote"
    finally:
        plain.close()
        tls.close()


def test_binary_sasl_over_tls(tls_server: ServerProcess, certs: Certs) -> None:
    client = bmemcached.Client(
        [f"127.0.0.1:{tls_server.tls_port}"],
        tls_server.username,
        tls_server.password,
        socket_timeout=5,
        tls_context=certs.client_context(),
    )
    try:
        assert client.set("bin:key", "binary over tls") is True
        assert client.get("bin:key") == "binary over tls"
        assert client.delete("bin:key") is True
    finally:
        client.disconnect_all()


def test_emcache_over_tls(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.tls_port is not None
    port = tls_server.tls_port

    async def scenario() -> bytes | None:
        client = await emcache.create_client(
            [emcache.MemcachedHostAddress("127.0.0.1", port)],
            username=tls_server.username,
            password=tls_server.password,
            ssl=True,
            ssl_verify=True,
            ssl_extra_ca=str(certs.ca),
            timeout=5.0,
            connection_timeout=5.0,
        )
        try:
            await client.set(b"em:tls", b"emcache over tls")
            item = await client.get(b"em:tls")
            return None if item is None else item.value
        finally:
            await client.close()

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == b"emcache over tls"


def test_dalli_over_tls(tls_server: ServerProcess, certs: Certs) -> None:
    ruby = require_tool("ruby")
    env = {
        **os.environ,
        "MEMCLOUD_SERVER": f"127.0.0.1:{tls_server.tls_port}",
        "MEMCLOUD_USERNAME": tls_server.username,
        "MEMCLOUD_PASSWORD": tls_server.password,
        "MEMCLOUD_CA": str(certs.ca),
    }
    result = subprocess.run(
        [ruby, str(DALLI_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    if "cannot load such file -- dalli" in result.stderr and not os.environ.get(
        "MEMCLOUD_REQUIRE_ALL_TOOLS"
    ):
        import pytest

        pytest.skip("ruby-dalli is not installed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["ok", "tls", "ok", "verify"]


def _s_client(port: int, ca: Path, data: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    openssl = require_tool("openssl")
    return subprocess.run(
        [openssl, "s_client", "-quiet", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca),
         "-verify_return_error", *extra],
        input=data,
        capture_output=True,
        timeout=30,
    )  # fmt: skip


def test_openssl_s_client(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.tls_port is not None
    login = ascii_login(tls_server.username, tls_server.password)
    result = _s_client(tls_server.tls_port, certs.ca, login + b"version\r\nquit\r\n")
    assert result.stdout.startswith(b"STORED\r\nVERSION "), result.stdout + result.stderr
    assert result.stdout.endswith(b"\r\n") and result.stdout.count(b"\r\n") == 2


def test_tls_1_1_is_refused(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.tls_port is not None
    result = _s_client(tls_server.tls_port, certs.ca, b"version\r\n", "-tls1_1")
    assert result.returncode != 0
    assert result.stdout == b""
