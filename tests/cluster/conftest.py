"""Helpers of the channel tests: identities from secrets, a server on 127.0.0.1 with an
OS-chosen port, and running a test's coroutine on uvloop (what nodes run) or asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import uvloop

from memcloud.cluster.channel import ChannelServer, Handler
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.link import PeerLink
from memcloud.cluster.secrets import ClusterSecrets, generate_secret

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]

MAX_FRAME = 1 << 20
OLD, NEW, THIRD = (generate_secret().encode() for _ in range(3))


def identity(current: bytes, *accepted: bytes) -> NodeIdentity:
    return NodeIdentity(ClusterSecrets(current, accepted))


def link_to(server: ChannelServer, who: NodeIdentity, **how: Any) -> PeerLink:
    how.setdefault("timeout", 5.0)
    how.setdefault("max_frame", MAX_FRAME)
    return PeerLink(f"127.0.0.1:{server.port}", who, **how)


@asynccontextmanager
async def serving(who: NodeIdentity, handler: Handler, **how: Any) -> AsyncIterator[ChannelServer]:
    how.setdefault("max_frame", MAX_FRAME)
    server = ChannelServer(who, handler, **how)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


def echo(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + payload


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request: pytest.FixtureRequest) -> Runner[Any]:
    """Runs a test's coroutine on a fresh event loop of each kind."""
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


@pytest.fixture
def on_uvloop() -> Runner[Any]:
    return uvloop.run
