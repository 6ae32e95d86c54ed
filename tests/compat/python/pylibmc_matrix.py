"""pylibmc's checks, run by tests/compat/test_pylibmc.py in a Python process of their own.

libmemcached and libsasl2 are process-wide C libraries: in one long pytest process, after the
schemathesis suite had run, pylibmc's SASL login sent a password the server did not know
(memcloud's earlier versions too; the same checks alone always passed). A fresh interpreter
per run gives the client the state a real application starts with. Runs the checks named
on the command line (all without any) and prints `ok NAME` after each.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pylibmc

SERVER = os.environ["MEMCLOUD_SERVER"]
USERNAME = os.environ["MEMCLOUD_USERNAME"]
PASSWORD = os.environ["MEMCLOUD_PASSWORD"]
RO_USERNAME = os.environ["MEMCLOUD_RO_USERNAME"]
RO_PASSWORD = os.environ["MEMCLOUD_RO_PASSWORD"]


def _client(username: str, password: str) -> Any:
    return pylibmc.Client(
        [SERVER],
        binary=True,
        username=username,
        password=password,
        behaviors={"cas": True, "connect_timeout": 5000, "receive_timeout": 5_000_000},
    )


def basic() -> None:
    client = _client(USERNAME, PASSWORD)
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


def wrong_password() -> None:
    client = _client(USERNAME, "not-the-password")
    try:
        try:
            client.set("lm:x", "1")
        except pylibmc.Error:
            pass
        else:
            raise AssertionError("a wrong password was accepted")
    finally:
        client.disconnect_all()


def read_only() -> None:
    writer = _client(USERNAME, PASSWORD)
    reader = _client(RO_USERNAME, RO_PASSWORD)
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


CHECKS = {"basic": basic, "wrong-password": wrong_password, "read-only": read_only}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CHECKS):
        CHECKS[name]()
        print("ok", name, flush=True)
