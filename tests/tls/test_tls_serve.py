"""`memcloud serve`'s TLS options over real sockets: files that cannot be used, client
certificates, `--tls-only`, TLS ports of node processes, HTTPS for the API and dashboard, and
the handshake deadline."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, ascii_login, read_env_file

from .conftest import Certs


def _serve(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `memcloud serve` that is expected to stop at once."""
    return subprocess.run(
        [sys.executable, "-m", "memcloud.cli", "serve", "--port", "0", "--api-port", "0",
         "--tls-port", "0", "--nodes", "1", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_certificate_stops_the_start_with_one_line(tmp_path: Path, certs: Certs) -> None:
    missing = tmp_path / "nowhere" / "cert.pem"
    result = _serve(tmp_path / "data", "--tls-cert", str(missing), "--tls-key", str(certs.key))
    line = _one_error_line(result)
    assert line.endswith(f"cannot start: TLS certificate {missing}: No such file or directory")
    # Nothing was made for a server that did not start.
    assert not (tmp_path / "data" / ".env").exists()


def test_a_key_of_another_certificate_is_named(tmp_path: Path, certs: Certs) -> None:
    other = tmp_path / "other-key.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    result = _serve(tmp_path / "data", "--tls-cert", str(certs.cert), "--tls-key", str(other))
    line = _one_error_line(result)
    assert line.endswith(f"cannot start: TLS key {other} does not match certificate {certs.cert}")


def test_an_encrypted_key_is_refused_without_a_prompt(tmp_path: Path, certs: Certs) -> None:
    key = serialization.load_pem_private_key(certs.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    result = _serve(tmp_path / "data", "--tls-cert", str(certs.cert), "--tls-key", str(encrypted))
    assert _one_error_line(result).endswith(
        f"cannot start: TLS key {encrypted} is encrypted with a pass phrase;"
        " give an unencrypted key"
    )


def test_a_file_that_is_no_certificate_is_named(tmp_path: Path, certs: Certs) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = _serve(tmp_path / "data", "--tls-cert", str(junk), "--tls-key", str(certs.key))
    assert _one_error_line(result).endswith(f"TLS certificate {junk}: no PEM certificate in it")
    result = _serve(tmp_path / "data", "--tls-cert", str(certs.cert), "--tls-key", str(junk))
    assert _one_error_line(result).endswith(f"TLS key {junk}: no PEM private key in it")
    result = _serve(
        tmp_path / "data", *certs.tls_args(), "--tls-client-ca", str(tmp_path / "no-ca.pem")
    )
    assert _one_error_line(result).endswith(
        f"TLS client CA {tmp_path / 'no-ca.pem'}: No such file or directory"
    )


def test_tls_options_without_a_certificate_are_usage_errors(tmp_path: Path) -> None:
    for args, message in (
        (("--tls-only",), "--tls-only needs --tls-cert"),
        (("--tls-key", "k.pem"), "--tls-key needs --tls-cert"),
        (("--tls-client-ca", "ca.pem"), "--tls-client-ca needs --tls-cert"),
    ):
        result = _serve(tmp_path / "data", *args)
        assert result.returncode == 2
        assert result.stderr == f"memcloud: error: {message}\n"


def _tls_exchange(port: int, context: ssl.SSLContext, data: bytes) -> bytes:
    """Send `data` over TLS, answer what comes back until the server stops talking."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(data)
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def test_client_certificates_are_required_with_a_client_ca(tmp_path: Path, certs: Certs) -> None:
    args = (*certs.tls_args(), "--tls-client-ca", str(certs.client_ca))
    with ServerProcess(tmp_path / "data", *args) as server:
        assert server.tls_port is not None
        request = ascii_login(server.username, server.password) + b"get nothing\r\n"
        served = _tls_exchange(server.tls_port, certs.client_context(certs.client_cert), request)
        assert served == b"STORED\r\nEND\r\n"
        # TLS 1.3 clients learn of the refusal after their handshake: nothing is served.
        for refused in (certs.client_context(), certs.client_context(certs.stranger_cert)):
            try:
                reply = _tls_exchange(server.tls_port, refused, request)
            except (ssl.SSLError, ConnectionResetError):
                reply = b""
            assert reply == b""
        # The plain port is not affected: it has no certificates to check.
        with contextlib.closing(Client(("127.0.0.1", server.port), timeout=5)) as plain:
            assert plain.set(server.username, server.password) is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_tls_only_closes_the_plain_port_and_lists_tls_servers(tmp_path: Path, certs: Certs) -> None:
    plain = _free_port()
    env = {"MEMCLOUD_TLS_CERT": str(certs.cert), "MEMCLOUD_TLS_KEY": str(certs.key)}
    args = ("--port", str(plain), "--tls-port", "0", "--tls-only")
    with ServerProcess(tmp_path / "data", *args, env=env) as server:
        assert server.tls_port is not None and server.tls_port != plain
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", plain), timeout=5).close()
        address = f"127.0.0.1:{server.tls_port}"
        env_file = read_env_file(server.data_dir)
        assert env_file["MEMCACHIER_SERVERS"] == address
        assert env_file["MEMCLOUD_TLS_SERVERS"] == address
        assert server.servers == [address]
        base = f"https://127.0.0.1:{server.api_port}"
        with httpx.Client(verify=certs.client_context(), timeout=10) as http:
            auth = (server.username, server.password)
            cache_id = http.get(f"{base}/api/v1/login", auth=auth).json()["cache_id"]
            info = http.get(f"{base}/api/v2/caches/{cache_id}/info", auth=auth).json()
        assert info["servers"] == [address]
        tls = Client(("127.0.0.1", server.tls_port), tls_context=certs.client_context())
        with contextlib.closing(tls) as c:
            assert c.set(server.username, server.password) is True
            assert c.set("only:key", b"tls") is True and c.get("only:key") == b"tls"
    assert f"MEMCACHIER_SERVERS={address}\n" in server.stdout


def test_each_node_serves_tls_on_the_next_port(tmp_path: Path, certs: Certs) -> None:
    with ServerProcess(tmp_path / "data", *certs.tls_args(), nodes=2) as server:
        tls_servers = read_env_file(server.data_dir)["MEMCLOUD_TLS_SERVERS"].split(",")
        first = server.tls_port
        assert tls_servers == [f"127.0.0.1:{first}", f"127.0.0.1:{first + 1 if first else 0}"]
        assert len(server.servers) == 2  # the plain ports, as without TLS
        for address in tls_servers:
            port = int(address.rpartition(":")[2])
            node = Client(("127.0.0.1", port), tls_context=certs.client_context(), timeout=5)
            with contextlib.closing(node) as c:
                assert c.set(server.username, server.password) is True
                assert c.set(f"node:{port}", b"x") is True
                assert c.get(f"node:{port}") == b"x"


def test_api_and_dashboard_over_https(tls_server: ServerProcess, certs: Certs) -> None:
    base = f"https://127.0.0.1:{tls_server.api_port}"
    auth = (tls_server.username, tls_server.password)
    with httpx.Client(verify=certs.client_context(), timeout=10) as http:
        login = http.get(f"{base}/api/v1/login", auth=auth)
        assert login.status_code == 200
        assert login.json()["cache_id"] >= 1
        form = http.get(f"{base}/dashboard/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = http.post(
            f"{base}/dashboard/login",
            data={"csrf": csrf[1], "username": auth[0], "password": auth[1]},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        cookies = signed_in.headers.get_list("set-cookie")
        assert cookies and all("; secure" in cookie.lower() for cookie in cookies)
    # Plain HTTP to the HTTPS port gets no API answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.api_port}/api/v1/login", auth=auth, timeout=5)


def test_a_client_that_never_finishes_the_handshake_is_closed(tmp_path: Path, certs: Certs) -> None:
    with ServerProcess(tmp_path / "data", *certs.tls_args(), "--auth-timeout", "1") as server:
        assert server.tls_port is not None
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(1) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < 5
