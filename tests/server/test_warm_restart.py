"""Warm restart (issue 13 item 2): a graceful stop writes each node's caches to the data dir
and the next start serves them again, with their flags, expiry and CAS; a damaged file, a
crash, a deleted or recreated cache, or --no-warm-restart means empty caches, never a wrong
value. Real `memcloud serve` processes and a real client (pymemcache) throughout."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from memcloud.control.open import store_path
from memcloud.storage.snapshot import SavedItem, read_snapshot, snapshot_path
from memcloud.testing import ServerProcess, wait_for

ANONYMOUS = ("--anonymous-cache", "default")
# memcached: an exptime above 30 days is an absolute Unix time.
THIRTY_DAYS = 60 * 60 * 24 * 30


class FlagsSerde:
    """Values stay bytes; a read answers (value, flags) so that the test sees the flags."""

    def serialize(self, key: str, value: bytes) -> tuple[bytes, int]:
        return value, 0

    def deserialize(self, key: str, value: bytes, flags: int) -> tuple[bytes, int]:
        return value, flags


def _client(port: int) -> Client:
    return Client(("127.0.0.1", port), serde=FlagsSerde(), timeout=10, connect_timeout=5)


def _batches(keys: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _read_all(client: Client, keys: list[str]) -> dict[str, tuple[bytes, int, int]]:
    """key -> (value, flags, CAS) of every key that is there."""
    found: dict[str, tuple[bytes, int, int]] = {}
    for batch in _batches(keys):
        for key, ((value, flags), cas) in client.gets_many(batch).items():
            found[key] = (value, flags, int(cas))
    return found


def _saved(data_dir: Path, node: int = 0) -> dict[str, SavedItem]:
    _, items = read_snapshot(snapshot_path(data_dir, node))
    return {item.key.decode(): item for item in items}


def _warnings(proc: ServerProcess, word: str) -> list[str]:
    return [line for line in proc.stderr.splitlines() if word in line]


def test_100000_items_survive_a_sigterm_with_their_flags_ttls_and_cas(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys: list[str] = []
    # Per group of 1,000 items: (flags, exptime as sent, expected absolute expiry or 0).
    groups: list[tuple[list[str], int, int]] = []
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        absolute = int(time.time()) + 7200
        set_at: dict[int, tuple[float, float]] = {}
        for group in range(100):
            names = [f"k{group}:{n}" for n in range(1000)]
            flags = (group * 2_654_435_761) % 2**32 if group else 2**32 - 1
            exptime = (0, 600 + group, absolute + group)[group % 3]
            before = time.time()
            assert (
                client.set_many(
                    {key: f"v{key}".encode() * (1 + group % 4) for key in names},
                    expire=exptime,
                    flags=flags,
                    noreply=False,
                )
                == []
            )
            set_at[group] = (before, time.time())
            groups.append((names, flags, exptime))
            keys.extend(names)
        before_stop = _read_all(client, keys)
        client.close()
        assert len(before_stop) == 100_000
        proc.stop()
        assert proc.process is not None and proc.process.returncode == 0
        assert snapshot_path(data, 0).exists()

    with ServerProcess(data, *ANONYMOUS) as proc:
        # Read as the node starts: the file is gone (a crash from now on starts empty).
        assert not snapshot_path(data, 0).exists()
        client = _client(proc.port)
        after = _read_all(client, keys)
        assert after == before_stop  # every value, flags and CAS as it was
        # New CAS uniques continue above every restored one.
        assert client.set("new", b"x", noreply=False)
        _, new_cas = client.gets("new")
        assert int(new_cas) > max(cas for _, _, cas in after.values())
        client.close()
    # The restarted node saved what it restored: each expiry is the absolute time the first
    # server gave it (within the second it was set in), so the remaining TTL is unchanged.
    saved = _saved(data)
    for group, (names, _flags, exptime) in enumerate(groups):
        start, end = set_at[group]
        for key in names:
            item = saved[key]
            if exptime == 0:
                assert item.exptime == 0
            elif exptime > THIRTY_DAYS:
                assert item.exptime == exptime
            else:
                assert start + exptime - 1 <= item.exptime <= end + exptime + 1


def test_an_item_that_expired_while_the_server_was_down_is_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.set("short", b"s", expire=2, noreply=False)
        assert client.set("long", b"l", expire=300, noreply=False)
        assert client.set("forever", b"f", flags=7, noreply=False)
        client.close()
    time.sleep(2.5)
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.get("short") is None
        assert client.get("long") == (b"l", 0)
        assert client.get("forever") == (b"f", 7)
        stats = client.stats()
        assert stats[b"curr_items"] == 2
        client.close()


def test_a_delayed_flush_all_still_comes_after_the_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.set("k", b"v", noreply=False)
        due = time.time() + 12
        client.flush_all(delay=12, noreply=False)
        client.close()
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert time.time() < due - 1, "the restart took too long for this test"
        assert client.get("k") == (b"v", 0)
        time.sleep(due + 1.2 - time.time())
        assert client.get("k") is None
        client.close()


def _damage(path: Path, how: str) -> None:
    body = bytearray(path.read_bytes())
    if how == "flip":
        body[len(body) // 2] ^= 0x01
    elif how == "truncate":
        del body[len(body) * 2 // 3 :]
    elif how == "without-end":
        # The last block (END: 9 bytes of head, 16 of counts) is cut off: every block
        # left is whole and checks, only the counts tell.
        del body[-25:]
    elif how == "foreign":
        body[:8] = b"NOTSNAPS"
    path.write_bytes(bytes(body))


@pytest.mark.parametrize("how", ["flip", "truncate", "without-end", "foreign"])
def test_a_damaged_snapshot_means_empty_caches_and_one_log_line(tmp_path: Path, how: str) -> None:
    data = tmp_path / "data"
    keys = [f"key{n}" for n in range(20_000)]
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        for batch in _batches(keys):
            assert client.set_many({key: b"x" * 40 for key in batch}, noreply=False) == []
        client.close()
    _damage(snapshot_path(data, 0), how)
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert _read_all(client, keys) == {}
        assert client.stats()[b"curr_items"] == 0
        # The node serves normally.
        assert client.set("after", b"ok", noreply=False)
        assert client.get("after") == (b"ok", 0)
        client.close()
    lines = _warnings(proc, "snapshot")
    assert len(lines) == 1, proc.stderr
    assert "damaged" in lines[0] and "caches start empty" in lines[0]
    assert "Traceback" not in proc.stderr


def _login(port: int, credential: dict[str, Any]) -> Client:
    """A client logged in with the text protocol's `set` login, once the node knows the
    credential (a cache made while it runs reaches it within a second)."""
    clients: list[Client] = []

    def logged_in() -> bool:
        client = _client(port)
        try:
            if client.set(
                credential["sasl_username"], credential["sasl_password"].encode(), noreply=False
            ):
                clients.append(client)
                return True
        except MemcacheClientError:  # "authentication failure": not known there yet
            pass
        client.close()
        return False

    assert wait_for(logged_in, timeout=10)
    return clients[0]


def test_a_cache_deleted_or_recreated_while_down_starts_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data) as proc:
        other = proc.cli_json("cache", "create", "other")
        default = {"sasl_username": proc.username, "sasl_password": proc.password}
        for credential, key in ((default, "of-default"), (other["credentials"][0], "of-other")):
            client = _login(proc.port, credential)
            assert client.set(key, b"tenant data", noreply=False)
            client.close()
    # While it is down: `default` is deleted and a new `default` made (under a new id), and
    # `other` is given a new generation, as a cache recreated under the same id would be.
    proc.cli("cache", "delete", "default")
    new_default = proc.cli_json("cache", "create", "default")
    with sqlite3.connect(store_path(data)) as db:
        db.execute("UPDATE caches SET generation = ? WHERE id = ?", ("f" * 32, other["id"]))
    with ServerProcess(data) as proc:
        for credential in (new_default["credentials"][0], other["credentials"][0]):
            client = _login(proc.port, credential)
            assert client.get("of-default") is None
            assert client.get("of-other") is None
            assert client.stats()[b"curr_items"] == 0
            client.close()


def _fill(client: Client, keys: Iterable[str], value: bytes) -> None:
    for batch in _batches(list(keys), 200):
        assert client.set_many({key: value for key in batch}, noreply=False) == []


def test_a_smaller_plan_keeps_the_most_recently_used_items(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = [f"item{n:05d}" for n in range(3000)]
    value = b"v" * 1000
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        _fill(client, keys, value)
        # Touched last: the most recently used, although they were stored first.
        for key in keys[:10]:
            assert client.touch(key, 0, noreply=False)
        client.close()
    proc.cli("cache", "resize", "default", "--plan", "1MB")
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        present = set(_read_all(client, keys))
        stats = client.stats()
        client.close()
    # The plan's share holds `fits` items: those touched last and those stored last.
    fits = 1024 * 1024 // (len(keys[0]) + len(value) + 50)
    assert present == set(keys[:10]) | set(keys[-(fits - 10) :])
    assert stats[b"curr_items"] == fits
    assert stats[b"bytes"] <= stats[b"limit_maxbytes"] == 1024 * 1024


def test_every_node_of_nodes_2_restores_its_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, *ANONYMOUS, nodes=2) as proc:
        ports = [int(address.rsplit(":", 1)[1]) for address in proc.servers]
        assert len(ports) == 2
        for index, port in enumerate(ports):
            client = _client(port)
            assert client.set(
                f"on-node-{index}", f"{index}".encode(), flags=index + 1, noreply=False
            )
            client.close()
    assert snapshot_path(data, 0).exists() and snapshot_path(data, 1).exists()
    # At the same addresses (a node's ring points come from its address): each key's owner
    # is the node that saved it, whichever node a client asks.
    first = min(ports)
    with ServerProcess(data, *ANONYMOUS, "--port", str(first), nodes=2) as proc:
        again = sorted(int(address.rsplit(":", 1)[1]) for address in proc.servers)
        assert again == sorted(ports)
        for index, port in enumerate(ports):
            client = _client(port)
            assert client.get(f"on-node-{index}") == (f"{index}".encode(), index + 1)
            client.close()


def test_a_killed_server_comes_back_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.set("saved", b"1", noreply=False)
        client.close()
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.get("saved") == (b"1", 0)  # restored
        assert client.delete("saved", noreply=False)
        assert client.set("later", b"2", noreply=False)
        client.close()
        assert proc.process is not None
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait(timeout=10)
    assert not snapshot_path(data, 0).exists()
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        # Neither what the kill lost nor the older snapshot's item (deleted since) returns.
        assert client.get("saved") is None
        assert client.get("later") is None
        client.close()


def test_no_warm_restart_writes_nothing_and_starts_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, *ANONYMOUS, "--no-warm-restart") as proc:
        client = _client(proc.port)
        assert client.set("k", b"v", noreply=False)
        client.close()
    assert not snapshot_path(data, 0).exists()
    # A file left by an earlier run is not read either (and stays for a later run).
    with ServerProcess(data, *ANONYMOUS) as proc:
        client = _client(proc.port)
        assert client.set("k", b"v", noreply=False)
        client.close()
    env: dict[str, Any] = {"MEMCLOUD_WARM_RESTART": "off"}
    with ServerProcess(data, *ANONYMOUS, env=env) as proc:
        client = _client(proc.port)
        assert client.get("k") is None
        client.close()
    assert snapshot_path(data, 0).exists()
