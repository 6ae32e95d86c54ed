"""emcache (asyncio, text protocol): its own login sends memcached's `-Y` form,
`set _ _ _ <n>` with "username password" as the value, on every new connection."""

from __future__ import annotations

import asyncio

import emcache
import pytest
from emcache.client_errors import AuthenticationError

from .conftest import Deployment

TIMEOUT = 20.0


async def _client(d: Deployment, username: str, password: str) -> emcache.Client:
    return await emcache.create_client(
        [emcache.MemcachedHostAddress("127.0.0.1", d.port)],
        username=username,
        password=password,
        timeout=5.0,
        connection_timeout=5.0,
    )


def test_basic_operations(deployment: Deployment) -> None:
    async def scenario() -> None:
        client = await _client(deployment, deployment.username, deployment.password)
        try:
            await client.set(b"em:key", b"hello")
            item = await client.get(b"em:key")
            assert item is not None and item.value == b"hello"
            await client.delete(b"em:key")
            assert await client.get(b"em:key") is None
            await client.set(b"em:n", b"5")
            assert await client.increment(b"em:n", 3) == 8
            assert await client.decrement(b"em:n", 10) == 0
            item = await client.gets(b"em:n", return_flags=False)
            assert item is not None and item.cas is not None
            await client.cas(b"em:n", b"7", item.cas)
            with pytest.raises(emcache.StorageCommandError):
                await client.cas(b"em:n", b"9", item.cas)
            await client.touch(b"em:n", 100)
            with pytest.raises(emcache.NotFoundCommandError):
                await client.touch(b"em:missing", 100)
            item = await client.get(b"em:n")
            assert item is not None and item.value == b"7"
            node = client.cluster_managment().nodes()[0]
            await client.flush_all(node)
            assert await client.get(b"em:n") is None
        finally:
            await client.close()

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))


def test_wrong_password_is_refused(deployment: Deployment) -> None:
    async def scenario() -> None:
        client = await _client(deployment, deployment.username, "not-the-password")
        try:
            # emcache cannot open an authenticated connection, so every command fails.
            with pytest.raises(AuthenticationError):
                await client.get(b"em:key")
        finally:
            await client.close()

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))


def test_read_only_credential_cannot_write(deployment: Deployment) -> None:
    async def scenario() -> None:
        writer = await _client(deployment, deployment.username, deployment.password)
        reader = await _client(deployment, deployment.ro_username, deployment.ro_password)
        try:
            await writer.set(b"em:ro", b"kept")
            item = await reader.get(b"em:ro")
            assert item is not None and item.value == b"kept"
            with pytest.raises(emcache.StorageCommandError):
                await reader.set(b"em:ro", b"changed")
            with pytest.raises(emcache.CommandError):
                await reader.delete(b"em:ro")
            item = await writer.get(b"em:ro")
            assert item is not None and item.value == b"kept"
        finally:
            await writer.close()
            await reader.close()

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
