"""The channel over real sockets on 127.0.0.1 and real TLS: round trips, pipelining to the
right caller, execution in send order, errors, limits, a killed peer, timeouts, flow
control and back-pressure."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from memcloud.cluster.channel import MAX_IN_FLIGHT, ChannelError, PeerUnavailable
from memcloud.cluster.link import PeerLink
from memcloud.cluster.wire import encode_frame

from .conftest import MAX_FRAME, NEW, OLD, Runner, echo, identity, link_to, serving

PEER_PROCESS = Path(__file__).with_name("peer_process.py")


def test_a_call_round_trips_with_sync_and_async_handlers(run: Runner[Any]) -> None:
    async def later(payload: bytes) -> bytes:
        await asyncio.sleep(0.01)
        return payload.upper()

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        return later(payload) if kind == 2 else echo(kind, payload)

    async def scenario() -> None:
        node = identity(NEW)
        async with serving(node, handler) as server:
            link = link_to(server, identity(NEW))
            assert not link.connected
            assert await link.call(7, b"hello") == b"\x07hello"
            assert link.connected
            assert await link.call(2, b"later") == b"LATER"
            assert await link.call(0, b"") == b"\x00"
            big = os.urandom(MAX_FRAME - 1)
            assert await link.call(1, big) == b"\x01" + big
            await link.close()

    run(scenario())


def test_ten_thousand_pipelined_calls_of_concurrent_callers_reach_the_right_caller(
    run: Runner[Any],
) -> None:
    seen: list[int] = []

    async def slow_sometimes(payload: bytes) -> bytes:
        await asyncio.sleep(random.random() / 100)
        return payload[::-1]

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        seen.append(kind)
        # Every third answer comes later, so answers overtake each other on the wire.
        return slow_sometimes(payload) if int(payload) % 3 == 0 else payload[::-1]

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW), timeout=30)

            async def caller(number: int) -> None:
                for index in range(200):
                    payload = str(number * 1000 + index).encode()
                    assert await link.call(1, payload) == payload[::-1]

            await asyncio.gather(*(caller(n) for n in range(1, 51)))
            await link.close()
        # One connection carried them all.
        assert len(seen) == 10_000

    run(scenario())


def test_the_server_starts_requests_in_the_order_they_were_sent(run: Runner[Any]) -> None:
    # The handler is called in send order; what must keep that order happens in the call
    # (an awaitable it returns runs later, as a task).
    order: list[int] = []
    answered: list[int] = []

    async def finish(number: int) -> bytes:
        await asyncio.sleep(random.random() / 1000)
        answered.append(number)
        return b""

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        order.append(int(payload))
        return finish(int(payload)) if kind == 2 else b""

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW))
            await link.call(1, b"-1")  # connected first, so no call waits for the connect
            kinds = [random.choice((1, 2)) for _ in range(2000)]
            await asyncio.gather(*(link.call(k, str(i).encode()) for i, k in enumerate(kinds)))
            await link.close()

    run(scenario())
    assert order == list(range(-1, 2000))
    assert len(answered) > 500 and answered != sorted(answered)  # answers overtook others


def test_a_handler_error_is_the_callers_channel_error_and_the_connection_carries_on(
    run: Runner[Any],
) -> None:
    async def fails_later() -> bytes:
        raise LookupError("no such cache: 17")

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        if kind == 1:
            raise ValueError("bad request: " + payload.decode())
        if kind == 2:
            return fails_later()
        if kind == 3:
            raise RuntimeError  # no message: its type names it
        return payload

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW))
            with pytest.raises(ChannelError) as first:
                await link.call(1, b"flush x")
            assert type(first.value) is ChannelError
            assert str(first.value) == "bad request: flush x"
            with pytest.raises(ChannelError, match=r"^no such cache: 17$"):
                await link.call(2, b"")
            with pytest.raises(ChannelError) as bare:
                await link.call(3, b"")
            assert str(bare.value) == "RuntimeError" and "Traceback" not in str(bare.value)
            assert await link.call(9, b"still here") == b"still here"
            assert len(server.connections) == 1
            await link.close()

    run(scenario())


async def _raw_tls(port: int, who: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=who.client_context())


def test_an_oversized_frame_closes_that_connection_and_the_server_serves_others(
    on_uvloop: Runner[Any],
) -> None:
    calls: list[bytes] = []

    def handler(kind: int, payload: bytes) -> bytes:
        calls.append(payload)
        return payload

    async def scenario() -> None:
        member = identity(NEW)
        async with serving(identity(NEW), handler, max_frame=1000) as server:
            reader, writer = await _raw_tls(server.port, member)
            # A header announcing 1001 bytes, then 1001 of them: the server closes at the
            # header and never runs the handler.
            writer.write(struct.pack(">IIB", 1001 + 5, 1, 1) + b"z" * 1001)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            link = link_to(server, member, max_frame=1000)
            assert await link.call(1, b"z" * 1000) == b"z" * 1000
            # Refused on this side too, before anything is sent.
            with pytest.raises(ChannelError, match="over the channel's limit"):
                await link.call(1, b"z" * 1001)
            await link.close()
        assert calls == [b"z" * 1000]

    on_uvloop(scenario())


def test_a_reply_over_the_links_limit_drops_the_connection_and_the_next_call_reconnects(
    on_uvloop: Runner[Any],
) -> None:
    async def scenario() -> None:
        async with serving(identity(NEW), lambda kind, payload: payload * kind) as server:
            link = link_to(server, identity(NEW), max_frame=100)
            with pytest.raises(PeerUnavailable):
                await link.call(3, b"x" * 50)
            assert await link.call(1, b"x" * 50) == b"x" * 50
            await link.close()

    on_uvloop(scenario())


class PeerProcess:
    """A channel server in its own process (peer_process.py), to be killed with SIGKILL."""

    def __init__(self, secret: bytes, port: int = 0) -> None:
        env = {**os.environ, "MEMCLOUD_CLUSTER_SECRET": secret.decode()}
        self.process = subprocess.Popen(
            [sys.executable, str(PEER_PROCESS), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("ready "), line
        self.port = int(line.split()[1])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def test_a_killed_peer_fails_pending_calls_at_once_and_the_link_reconnects_after_restart(
    on_uvloop: Runner[Any],
) -> None:
    peer = PeerProcess(NEW)
    try:

        async def scenario() -> None:
            link = PeerLink(
                f"127.0.0.1:{peer.port}",
                identity(NEW),
                timeout=30,
                max_frame=MAX_FRAME,
                retry_after=0.2,
            )
            assert await link.call(1, b"up") == b"up"
            pending = [asyncio.ensure_future(link.call(2, b"never answered")) for _ in range(5)]
            await asyncio.sleep(0.3)
            assert not any(call.done() for call in pending)
            started = time.monotonic()
            peer.kill()
            results = await asyncio.gather(*pending, return_exceptions=True)
            assert all(isinstance(r, PeerUnavailable) for r in results), results
            assert time.monotonic() - started < 5  # not the 30 s timeout
            assert not link.connected
            with pytest.raises(PeerUnavailable, match="cannot connect"):
                await link.call(1, b"down")
            # Within retry_after, a call fails at once without trying to connect again.
            with pytest.raises(PeerUnavailable, match="cannot connect"):
                await link.call(1, b"down")
            restarted = PeerProcess(NEW, peer.port)
            peer.process = restarted.process
            await asyncio.sleep(0.3)
            assert await link.call(1, b"back") == b"back"
            await link.close()
            with pytest.raises(PeerUnavailable, match="closed"):
                await link.call(1, b"after close")

        on_uvloop(scenario())
    finally:
        if peer.process.poll() is None:
            peer.kill()


def test_a_call_times_out_while_the_connection_serves_other_calls(
    on_uvloop: Runner[Any],
) -> None:
    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        if kind == 2:
            return asyncio.get_running_loop().create_future()  # never answered
        return payload

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW), timeout=0.5)
            stuck = asyncio.ensure_future(link.call(2, b""))
            started = time.monotonic()
            while not stuck.done():  # the connection answers other calls meanwhile
                assert await link.call(1, b"alive") == b"alive"
                await asyncio.sleep(0.05)
            with pytest.raises(PeerUnavailable, match=r"did not answer within 0\.5 s"):
                await stuck
            assert 0.45 < time.monotonic() - started < 2
            assert link.connected  # it answered the others: not taken for dead
            await link.close()

    on_uvloop(scenario())


def test_a_peer_that_answers_nothing_is_dropped_and_the_next_call_reconnects(
    on_uvloop: Runner[Any],
) -> None:
    hang = True

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        if hang:
            return asyncio.get_running_loop().create_future()
        return payload

    async def scenario() -> None:
        nonlocal hang
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW), timeout=0.3)
            with pytest.raises(PeerUnavailable, match="did not answer"):
                await link.call(1, b"")
            assert not link.connected  # nothing came back for a whole timeout
            hang = False
            assert await link.call(1, b"fine") == b"fine"
            await link.close()

    on_uvloop(scenario())


def test_outstanding_calls_are_bounded_and_a_cancelled_call_frees_its_slot(
    on_uvloop: Runner[Any],
) -> None:
    in_flight: list[asyncio.Future[bytes]] = []

    def handler(kind: int, payload: bytes) -> Awaitable[bytes]:
        future = asyncio.get_running_loop().create_future()
        in_flight.append(future)
        return future

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW), max_outstanding=4)
            calls = [asyncio.ensure_future(link.call(1, str(n).encode())) for n in range(10)]
            await asyncio.sleep(0.3)
            assert len(in_flight) == 4  # the other six wait for a slot
            calls[0].cancel()
            await asyncio.sleep(0.3)
            assert len(in_flight) == 5
            for future in in_flight:
                future.set_result(b"done")
            while len(in_flight) < 10:
                await asyncio.sleep(0.01)
                for future in in_flight:
                    if not future.done():
                        future.set_result(b"done")
            assert await asyncio.gather(*calls[1:]) == [b"done"] * 9
            await link.close()

    on_uvloop(scenario())


def test_the_server_stops_reading_while_its_peer_does_not_read_the_replies(
    on_uvloop: Runner[Any],
) -> None:
    handled = 0
    reply = b"r" * 65536

    def handler(kind: int, payload: bytes) -> bytes:
        nonlocal handled
        handled += 1
        return reply

    async def scenario() -> None:
        member = identity(NEW)
        async with serving(identity(NEW), handler) as server:
            reader, writer = await _raw_tls(server.port, member)
            requests = 4000  # 256 MB of replies if the server never stopped
            writer.write(b"".join(encode_frame(n, 1, b"") for n in range(requests)))
            await asyncio.sleep(1.0)
            paused_at = handled
            assert paused_at < requests // 4, paused_at
            await asyncio.sleep(0.5)
            assert handled == paused_at  # still paused: nothing read, nothing more run
            total = 0
            while total < requests * (9 + len(reply)):
                chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
                assert chunk
                total += len(chunk)
            assert handled == requests
            writer.close()

    on_uvloop(scenario())


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_callers_wait_while_the_peer_reads_nothing_instead_of_piling_up_requests(
    on_uvloop: Runner[Any],
) -> None:
    async def scenario() -> None:
        member = identity(NEW)
        held: list[asyncio.StreamWriter] = []

        async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        server = await asyncio.start_server(
            never_reads, "127.0.0.1", 0, ssl=identity(NEW).server_context()
        )
        port = server.sockets[0].getsockname()[1]
        link = PeerLink(
            f"127.0.0.1:{port}", member, timeout=30, max_frame=MAX_FRAME, max_outstanding=10_000
        )
        payload = b"p" * (MAX_FRAME - 1)
        calls = [asyncio.ensure_future(link.call(1, b"connect"))]
        await asyncio.sleep(0.3)
        assert link.connected
        # 100 MB of requests made at once, on a connection already open: all but the
        # first few wait for the peer to read, none is rendered into memory meanwhile.
        before = _resident_bytes()
        calls += [asyncio.ensure_future(link.call(1, payload)) for _ in range(100)]
        await asyncio.sleep(1.0)
        assert _resident_bytes() - before < 40 * MAX_FRAME
        assert 0 < link.buffered < 8 * MAX_FRAME, link.buffered
        assert not any(call.done() for call in calls)
        await link.close()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, PeerUnavailable) for r in results)
        server.close()
        for writer in held:
            writer.close()

    on_uvloop(scenario())


def test_the_server_stops_starting_requests_while_too_many_replies_are_pending(
    on_uvloop: Runner[Any],
) -> None:
    pending: list[asyncio.Future[bytes]] = []

    def handler(kind: int, payload: bytes) -> bytes | Awaitable[bytes]:
        if kind == 0:
            return b"connected"
        future = asyncio.get_running_loop().create_future()
        pending.append(future)
        return future

    async def scenario() -> None:
        async with serving(identity(NEW), handler) as server:
            link = link_to(server, identity(NEW), timeout=30, max_outstanding=3 * MAX_IN_FLIGHT)
            await link.call(0, b"")
            # Made at once: they leave in one write and arrive in one or two reads.
            calls = [asyncio.ensure_future(link.call(1, b"")) for _ in range(2 * MAX_IN_FLIGHT)]
            await asyncio.sleep(0.5)
            assert len(pending) == MAX_IN_FLIGHT  # the rest is held back, unstarted
            answered = 0
            while answered < 2 * MAX_IN_FLIGHT:
                for future in pending[answered:]:
                    future.set_result(b"ok")
                answered = len(pending)
                await asyncio.sleep(0.05)
            assert await asyncio.gather(*calls) == [b"ok"] * (2 * MAX_IN_FLIGHT)
            await link.close()

    on_uvloop(scenario())


def test_a_local_member_is_answered_on_the_unix_socket_of_its_data_dir(
    run: Runner[Any], tmp_path: Path
) -> None:
    """start_local: the same handler over a Unix socket only its owner may open,
    without TLS; a link given the path calls there even with another secret, since the
    socket's file mode is the proof; the file goes with the server."""
    path = tmp_path / "channel-1.sock"

    async def scenario() -> None:
        async with serving(identity(NEW), echo) as server:
            await server.start_local(path)
            assert path.is_socket() and (path.stat().st_mode & 0o077) == 0  # owner only
            link = link_to(server, identity(OLD), local_path=str(path))
            assert await link.call(3, b"same machine") == b"\x03same machine"
            # Over TCP the other secret is refused, as ever.
            tls = link_to(server, identity(OLD))
            with pytest.raises(PeerUnavailable):
                await tls.call(3, b"other machine")
            await link.close()
            await tls.close()
        assert not path.exists()

    run(scenario())
