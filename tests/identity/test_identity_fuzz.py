"""Hypothesis mixes cache creates, deletes (alone, or with a create in the same snapshot, as a
node sees `cache delete a && cache create b` within one poll) and connections that write and
read: a connection only ever sees its own cache's items, a connection of a deleted cache is
closed, a new cache starts empty, and no id is ever handed out twice (issue 9, finding 1).

On a server with an anonymous cache the same steps also mix in the injections of findings
2-4: a meta set whose data block spells `flush_all`, an HTTP request line (the connection
closes and nothing after it runs), text logins from anonymous connections (right ones move
the connection to the credential's cache, wrong ones store nothing), and anonymous reads of
the keys a login `set` names (never a password)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RawConnection, probe_source
from memcloud.auth import Directory
from memcloud.config import Settings
from memcloud.server.runner import Runtime
from memcloud.testing import InProcessServer, ascii_login

MIB = 1024 * 1024
MAX_STEPS = 14
EXAMPLES = 25

BASIC = ["create", "delete", "replace", "connect", "set", "get"]
INJECTIONS = ["meta_set", "http_line", "wrong_login", "peek"]


def steps(kinds: list[str]) -> st.SearchStrategy[list[tuple[str, int]]]:
    """(what, which) steps; `which` picks among the caches or connections there are."""
    step = st.tuples(st.sampled_from(kinds), st.integers(min_value=0, max_value=7))
    return st.lists(step, min_size=1, max_size=MAX_STEPS)


@dataclass
class Tenant:
    cache_id: int
    username: str
    password: str
    value: bytes | None = None  # what its key holds (None: nothing stored yet)
    connections: list[RawConnection] = field(default_factory=list)


@dataclass
class World:
    server: InProcessServer
    seen_ids: set[int] = field(default_factory=set)
    seen_credentials: set[int] = field(default_factory=set)
    counter: int = 0

    @property
    def runtime(self) -> Runtime:
        assert self.server.runtime is not None
        return self.server.runtime

    def change(self, delete: Tenant | None, create: bool) -> Tenant | None:
        """Delete and/or create, applied on the node as one control-plane snapshot."""
        self.counter += 1
        name = f"t{self.counter}"
        runtime = self.runtime

        def run() -> tuple[int, int, str, str] | None:
            if delete is not None:
                runtime.store.delete_cache(delete.cache_id)
            made = None
            if create:
                cache = runtime.store.create_cache(name, MIB)
                credential = runtime.store.create_credential(cache.id)
                made = (
                    cache.id,
                    credential.record.id,
                    credential.record.username,
                    credential.password,
                )
            runtime.service.set_directory(Directory.load(runtime.store))
            return made

        made = self.server.call(run)
        if made is None:
            return None
        cache_id, credential_id, username, password = made
        assert cache_id not in self.seen_ids and credential_id not in self.seen_credentials
        assert all(cache_id > seen for seen in self.seen_ids)
        self.seen_ids.add(cache_id)
        self.seen_credentials.add(credential_id)
        return Tenant(cache_id, username, password)


def _run(world: World, steps: list[tuple[str, int]]) -> None:
    tenants: list[Tenant] = []
    try:
        for what, which in steps:
            if what == "create" or (not tenants and what != "delete"):
                made = world.change(None, True)
                assert made is not None
                tenants.append(made)
                continue
            if not tenants:
                continue
            tenant = tenants[which % len(tenants)]
            if what in ("delete", "replace"):
                made = world.change(tenant, what == "replace")
                tenants.remove(tenant)
                for conn in tenant.connections:
                    # memcached's way: the connection just closes, nothing more is read.
                    assert conn.is_closed(timeout=5)
                    conn.sock.close()
                if made is not None:
                    tenants.append(made)
            elif what in INJECTIONS:
                _inject(world, tenant, what, which)
            elif what == "connect" or not tenant.connections:
                conn = RawConnection(world.server.port)
                assert conn.request(ascii_login(tenant.username, tenant.password)) == b"STORED\r\n"
                tenant.connections.append(conn)
            else:
                conn = tenant.connections[which % len(tenant.connections)]
                if what == "set":
                    world.counter += 1
                    value = b"c%d-v%d" % (tenant.cache_id, world.counter)
                    reply = conn.request(b"set k 0 0 %d\r\n%s\r\n" % (len(value), value))
                    assert reply == b"STORED\r\n"
                    tenant.value = value
                else:
                    conn.send(b"get k\r\n")
                    reply = conn.read_until(b"END\r\n")
                    if tenant.value is None:
                        assert reply == b"END\r\n"
                    else:
                        value = tenant.value
                        assert reply == b"VALUE k 0 %d\r\n%s\r\nEND\r\n" % (len(value), value)
    finally:
        for tenant in tenants:
            for conn in tenant.connections:
                conn.sock.close()
            world.change(tenant, False)


def _inject(world: World, tenant: Tenant, what: str, which: int) -> None:
    """One of findings 2-4's injections; the tenant's item must come through untouched (the
    next `get` step checks its value)."""
    port = world.server.port
    if what == "meta_set" and tenant.connections:
        conn = tenant.connections[which % len(tenant.connections)]
        # The data block is the value stored, never run: the get after it still finds the
        # tenant's item (under another key), not flushed.
        conn.send(b"ms injected-meta 9\r\nflush_all\r\nmn\r\n")
        assert conn.read_until(b"\r\n") == b"HD\r\n"
        assert conn.read_until(b"\r\n") == b"MN\r\n"
    elif what == "http_line":
        # memcached's cross-protocol guard: the connection closes at the request line and
        # the flush_all behind it never runs (on a tenant's connection or an anonymous one).
        if tenant.connections and which % 2:
            conn = tenant.connections.pop(which % len(tenant.connections))
        else:
            conn = RawConnection(port)
        conn.send(b"POST /flush HTTP/1.1\r\nflush_all\r\n")
        assert conn.is_closed(timeout=5)
        conn.sock.close()
    elif what == "wrong_login":
        # From a fresh /24 each time: the login throttle must not slow the test's own logins.
        conn = RawConnection(port, source=probe_source())
        try:
            wrong = b"X" * len(tenant.password)
            reply = conn.request(
                b"set %s 0 0 %d\r\n%s\r\n" % (tenant.username.encode(), len(wrong), wrong)
            )
            assert reply == b"CLIENT_ERROR authentication failure\r\n"
        finally:
            conn.sock.close()
    elif what == "peek":
        # Neither a login `set` (right or wrong) nor the -Y form left anything to read.
        conn = RawConnection(port)
        try:
            conn.send(b"get %s _auth\r\n" % tenant.username.encode())
            assert conn.read_until(b"END\r\n") == b"END\r\n"
        finally:
            conn.sock.close()


def _check(server: InProcessServer, kinds: list[str]) -> None:
    world = World(server)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(steps(kinds))
    def check(steps: list[tuple[str, int]]) -> None:
        _run(world, steps)

    check()


def test_connections_never_reach_another_or_a_later_cache(tmp_path: Path) -> None:
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as server:
        _check(server, BASIC)


def test_injections_and_anonymous_logins_mixed_with_deletes_and_creates(tmp_path: Path) -> None:
    """As above on an --anonymous-cache server, where every connection starts anonymous and
    the `connect` step's login `set` must move it to its tenant's cache (finding 4)."""
    settings_ = Settings(data_dir=tmp_path / "data", anonymous_cache="anon")
    with InProcessServer(settings_) as server:
        _check(server, BASIC + INJECTIONS)
