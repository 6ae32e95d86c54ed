"""Hypothesis mixes cache creates, deletes (alone, or with a create in the same snapshot, as a
node sees `cache delete a && cache create b` within one poll) and connections that write and
read: a connection only ever sees its own cache's items, a connection of a deleted cache is
closed, a new cache starts empty, and no id is ever handed out twice (issue 9, finding 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RawConnection
from memcloud.config import Settings
from memcloud.server.runner import Runtime, load_directory
from memcloud.testing import InProcessServer, ascii_login

MIB = 1024 * 1024
MAX_STEPS = 14
EXAMPLES = 25

# One step: (what, which); `which` picks among the caches or connections there are.
STEP = st.tuples(
    st.sampled_from(["create", "delete", "replace", "connect", "set", "get"]),
    st.integers(min_value=0, max_value=7),
)


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
            runtime.service.set_directory(load_directory(runtime.store))
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


def test_connections_never_reach_another_or_a_later_cache(tmp_path: Path) -> None:
    with InProcessServer(Settings(data_dir=tmp_path / "data")) as server:
        world = World(server)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(STEP, min_size=1, max_size=MAX_STEPS))
        def check(steps: list[tuple[str, int]]) -> None:
            _run(world, steps)

        check()
