"""The admission rules as data: plan limits, the address a connection counts against, and
which unauthenticated connection goes first."""

from __future__ import annotations

import pytest

from memcloud.admission import Admission, address_key, plan_connection_limit
from memcloud.config import (
    Plan,
    Settings,
    format_plans,
    parse_plan_specs,
    parse_plans,
    plan_connections,
)
from memcloud.plans import MIB


def test_plans_name_their_connection_limit() -> None:
    plans = parse_plan_specs("dev=25MB:connections=50, pro=1GB:connections=2000,100=100MB")
    assert plans == (
        Plan("dev", 25 * MIB, 50),
        Plan("pro", 1024 * MIB, 2000),
        Plan("100", 100 * MIB, None),
    )
    assert plan_connections(plans) == ((25 * MIB, 50), (1024 * MIB, 2000))
    # The old form keeps working, and parse_plans keeps its shape.
    assert parse_plans("dev=25MB,pro=1GB:connections=9") == (("dev", 25 * MIB), ("pro", 1024 * MIB))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dev=25MB:connections=0", "plan 'dev': connections must be 1 to 1000000"),
        ("dev=25MB:connections=1000001", "plan 'dev': connections must be 1 to 1000000"),
        ("dev=25MB:connections=-5", "not a plan option: 'connections=-5' in plan 'dev'"),
        ("dev=25MB:conns=5", "not a plan option: 'conns=5' in plan 'dev'"),
        ("dev=25MB:connections", "not a plan option: 'connections' in plan 'dev'"),
        ("dev:x=25MB", "not a plan: 'dev:x=25MB'"),
    ],
)
def test_bad_plan_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_plan_specs(text)


def test_the_size_rule_and_its_cap() -> None:
    settings = Settings(max_connections=10_000)
    assert plan_connection_limit(1 * MIB, settings) == 20  # the floor
    assert plan_connection_limit(25 * MIB, settings) == 250  # 10 per MB
    assert plan_connection_limit(100 * MIB, settings) == 1000
    assert plan_connection_limit(5000 * MIB, settings) == 5000  # at most half the server
    # An explicit limit applies to caches of exactly its plan's size, and is capped too.
    named = Settings(max_connections=10_000, plan_connections=((25 * MIB, 40), (MIB, 9000)))
    assert plan_connection_limit(25 * MIB, named) == 40
    assert plan_connection_limit(26 * MIB, named) == 260
    assert plan_connection_limit(MIB, named) == 5000


def test_each_node_admits_its_share() -> None:
    settings = Settings(max_connections=100, nodes=3)
    assert plan_connection_limit(25 * MIB, settings) == 150  # 3 nodes x half of 100
    assert Admission(settings).cache_limit(25 * MIB) == 50
    assert Admission(Settings(max_connections=100, nodes=3)).cache_limit(1 * MIB) == 7  # ceil


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/tmp/socket", "/tmp/socket"),
    ],
)
def test_the_address_a_connection_counts_against(host: str, key: str) -> None:
    assert address_key(host) == key


def test_unauthenticated_connections_oldest_shed_first() -> None:
    admission = Admission(Settings(max_connections=20))
    assert (admission.unauthenticated_max, admission.per_address) == (18, 8)
    conns = [object() for _ in range(19)]
    for n, conn in enumerate(conns):
        assert not admission.refuses(f"10.0.0.{n}", n + 1)
        admission.wait(conn, f"10.0.0.{n}")
        expected = conns[0] if n == 18 else None
        assert admission.victim(n + 1) is expected
    # Once shed, the oldest counts no more; settling twice is harmless.
    admission.settled(conns[0])
    admission.settled(conns[1])
    assert admission.victim(20) is None
    # A full node with nothing unauthenticated left refuses the newcomer.
    empty = Admission(Settings(max_connections=2))
    assert empty.refuses("10.0.0.1", 3)
    assert not empty.refuses("10.0.0.1", 2)


def test_unauthenticated_connections_are_capped_per_address() -> None:
    admission = Admission(Settings(max_connections=1000))
    same = [object() for _ in range(10)]
    for conn in same:
        admission.wait(conn, "192.0.2.1")
    assert admission.refuses("192.0.2.1", 11)
    assert not admission.refuses("192.0.2.2", 11)
    admission.settled(same[0])  # it logged in
    assert not admission.refuses("192.0.2.1", 11)


def test_plans_round_trip_to_the_node_processes() -> None:
    text = "dev=25MB,pro=1GB:connections=2000,tiny=1536KB:connections=3"
    plans = parse_plan_specs(text)
    sizes = tuple((p.slug, p.size) for p in plans)
    assert format_plans(sizes, plan_connections(plans)) == text
    assert parse_plan_specs(format_plans(sizes, plan_connections(plans))) == plans
