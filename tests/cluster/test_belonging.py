"""Only a node with the cluster secret gets through, either way: a wrong secret, plain TCP
and TLS without a client certificate are refused; silent handshakes and unfinished frames
are closed; every step of the documented rotation keeps two nodes talking, while a node
with a third secret is refused; and no secret ever reaches the logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from memcloud.cluster.channel import ChannelError, PeerUnavailable
from memcloud.cluster.identity import NodeIdentity, ca_of
from memcloud.cluster.link import PeerLink
from memcloud.cluster.wire import HEADER, encode_frame

from .conftest import NEW, OLD, THIRD, Runner, echo, identity, link_to, serving


class Recorder:
    """A handler that records what reached it (nothing must, from a stranger)."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def __call__(self, kind: int, payload: bytes) -> bytes:
        self.calls.append(payload)
        return echo(kind, payload)


async def _talks(server_side: NodeIdentity, client_side: NodeIdentity) -> bool:
    """Whether a call from `client_side` reaches a server of `server_side` and comes back."""
    handler = Recorder()
    async with serving(server_side, handler) as server:
        link = link_to(server, client_side, timeout=3)
        try:
            answered = await link.call(1, b"ping") == b"\x01ping"
        except PeerUnavailable:
            answered = False
        finally:
            await link.close()
    assert handler.calls == ([b"ping"] if answered else [])
    return answered


def test_a_wrong_secret_is_refused_both_ways(run: Runner[Any]) -> None:
    async def scenario() -> None:
        assert await _talks(identity(NEW), identity(NEW))
        assert not await _talks(identity(NEW), identity(THIRD))  # client without the secret
        assert not await _talks(identity(THIRD), identity(NEW))  # server without it

    run(scenario())


def test_a_server_with_a_wrong_secret_is_refused_before_any_request_leaves(
    on_uvloop: Runner[Any],
) -> None:
    async def scenario() -> None:
        async with serving(identity(THIRD), Recorder()) as server:
            link = link_to(server, identity(NEW))
            with pytest.raises(PeerUnavailable, match=r"cannot connect.*certificate verify failed"):
                await link.call(1, b"secret data")
            assert not link.connected

    on_uvloop(scenario())


def test_plain_tcp_and_tls_without_a_client_certificate_get_nothing(
    on_uvloop: Runner[Any],
) -> None:
    handler = Recorder()

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            # A request in clear: the server wants a TLS handshake, answers at most an alert.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(encode_frame(1, 1, b"in clear"))
            answer = await asyncio.wait_for(reader.read(), 5)
            assert b"in clear" not in answer and len(answer) < 64
            writer.close()
            # TLS that trusts the cluster CA but shows no certificate of its own.
            anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            anonymous.check_hostname = False
            pem = ca_of(NEW).certificate.public_bytes(Encoding.PEM)
            anonymous.load_verify_locations(cadata=pem.decode())
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, ssl=anonymous
                )
                writer.write(encode_frame(2, 1, b"no certificate"))
                answer = await asyncio.wait_for(reader.read(), 5)
                assert answer == b""
            except (ssl.SSLError, ConnectionError):
                pass  # refused during the handshake or on the first read: both are fine
            # And a member still gets through.
            link = link_to(server, identity(NEW))
            assert await link.call(1, b"member") == b"\x01member"
            await link.close()

    on_uvloop(scenario())
    assert handler.calls == [b"member"]


def test_a_silent_handshake_and_an_unfinished_frame_are_closed(on_uvloop: Runner[Any]) -> None:
    async def scenario() -> None:
        async with serving(
            identity(NEW), Recorder(), handshake_timeout=0.5, frame_timeout=0.5
        ) as server:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # said nothing: closed
            assert time.monotonic() - started < 3
            writer.close()
            # A member that starts a frame and never finishes it.
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=identity(NEW).client_context()
            )
            writer.write(encode_frame(1, 1, b"x" * 100)[: HEADER + 10])
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert 0.4 < time.monotonic() - started < 3
            writer.close()

    on_uvloop(scenario())


def test_a_link_gives_up_on_a_peer_that_never_completes_the_handshake(
    on_uvloop: Runner[Any],
) -> None:
    async def scenario() -> None:
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # accepts, then says nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = PeerLink(f"127.0.0.1:{port}", identity(NEW), timeout=0.5, max_frame=100)
        started = time.monotonic()
        with pytest.raises(PeerUnavailable, match="cannot connect"):
            await link.call(1, b"")
        assert time.monotonic() - started < 2
        server.close()
        for writer in held:
            writer.close()

    on_uvloop(scenario())


# Each state of the rotation from OLD to NEW (docs/cluster-security.md): (current, accepted)
# of two nodes A and B, one machine changed at a time.
ROTATION = [
    ("before", (OLD,), (OLD,)),
    ("step 1, A done", (OLD, NEW), (OLD,)),
    ("step 1 done", (OLD, NEW), (OLD, NEW)),
    ("step 2, A done", (NEW, OLD), (OLD, NEW)),
    ("step 2 done", (NEW, OLD), (NEW, OLD)),
    ("step 3, A done", (NEW,), (NEW, OLD)),
    ("after", (NEW,), (NEW,)),
]


def test_every_step_of_the_rotation_keeps_two_nodes_talking_and_a_stranger_out(
    on_uvloop: Runner[Any],
) -> None:
    async def scenario() -> None:
        stranger = identity(THIRD)
        for state, a_secrets, b_secrets in ROTATION:
            a, b = identity(*a_secrets), identity(*b_secrets)
            assert await _talks(a, b), f"{state}: B cannot reach A"
            assert await _talks(b, a), f"{state}: A cannot reach B"
            for node in (a, b):
                assert not await _talks(node, stranger), f"{state}: a stranger got in"
                assert not await _talks(stranger, node), f"{state}: a stranger was trusted"
        # Skipping step 1 breaks the cluster: a node presenting NEW to one that does not
        # accept it yet is refused.
        assert not await _talks(identity(OLD), identity(NEW, OLD))

    on_uvloop(scenario())


def test_no_secret_reaches_the_logs(
    on_uvloop: Runner[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def failing(kind: int, payload: bytes) -> bytes:
        raise ValueError("refused")

    async def scenario() -> None:
        member = identity(NEW, OLD)
        logging.getLogger("memcloud.cluster").info("identity: %r (%s)", member, member.describe())
        async with serving(member, failing, max_frame=100, frame_timeout=0.3) as server:
            for who in (identity(NEW), identity(THIRD)):
                link = link_to(server, who, timeout=1, max_frame=100)
                with contextlib.suppress(ChannelError):  # refused, or the handler's error
                    await link.call(1, b"x")
                await link.close()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=identity(NEW).client_context()
            )
            writer.write(encode_frame(1, 1, b"y" * 101))  # over the limit: logged, closed
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()

    on_uvloop(scenario())
    assert "over the limit" in caplog.text  # the scenario did log
    for secret in (NEW, OLD, THIRD):
        assert secret.decode() not in caplog.text
