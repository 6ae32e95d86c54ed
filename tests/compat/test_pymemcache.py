"""pymemcache: text protocol, logged in with the hosted service's ASCII `set` (username as
the key, password as the value) as the first command of the connection."""

from __future__ import annotations

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from .conftest import Deployment


def _client(d: Deployment, username: str, password: str) -> tuple[Client, bool]:
    client = Client(("127.0.0.1", d.port), default_noreply=False, connect_timeout=5, timeout=5)
    try:
        logged_in = bool(client.set(username, password))
    except MemcacheClientError:
        logged_in = False
    return client, logged_in


def test_basic_operations(deployment: Deployment) -> None:
    client, logged_in = _client(deployment, deployment.username, deployment.password)
    try:
        assert logged_in
        assert client.set("pm:key", b"hello") is True
        assert client.get("pm:key") == b"hello"
        assert client.delete("pm:key") is True
        assert client.get("pm:key") is None
        assert client.set("pm:n", b"5") is True
        assert client.incr("pm:n", 3) == 8
        assert client.decr("pm:n", 10) == 0
        value, cas = client.gets("pm:n")
        assert value == b"0" and cas
        assert client.cas("pm:n", b"7", cas) is True
        assert client.cas("pm:n", b"9", cas) is False
        assert client.get("pm:n") == b"7"
        assert client.touch("pm:n", 100) is True
        assert client.touch("pm:missing", 100) is False
        assert client.flush_all() is True
        assert client.get("pm:n") is None
    finally:
        client.close()


def test_wrong_password_is_refused(deployment: Deployment) -> None:
    client, logged_in = _client(deployment, deployment.username, "not-the-password")
    try:
        assert not logged_in
        with pytest.raises(MemcacheClientError):
            client.get("pm:key")
    finally:
        client.close()


def test_read_only_credential_cannot_write(deployment: Deployment) -> None:
    writer, _ = _client(deployment, deployment.username, deployment.password)
    reader, logged_in = _client(deployment, deployment.ro_username, deployment.ro_password)
    try:
        assert logged_in
        assert writer.set("pm:ro", b"kept") is True
        assert reader.get("pm:ro") == b"kept"
        assert reader.set("pm:ro", b"changed") is False  # NOT_STORED
        with pytest.raises(MemcacheClientError):
            reader.delete("pm:ro")
        with pytest.raises(MemcacheClientError):
            reader.flush_all()
        assert writer.get("pm:ro") == b"kept"
    finally:
        writer.close()
        reader.close()
