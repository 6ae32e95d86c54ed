"""Consistent hashing of keys to nodes (memcloud.placement): balance, stability when nodes
come and go, the same answer on every node, replicas on other machines."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from memcloud.placement import Ring, RingNode

KEYS = [b"key:%d" % i for i in range(30_000)]


def _nodes(count: int, machines: int | None = None) -> list[RingNode]:
    return [RingNode(f"10.0.0.{i + 1}:11211", f"m{i % (machines or count)}") for i in range(count)]


def _owners(ring: Ring, cache_id: int = 1) -> dict[bytes, str]:
    return {key: ring.nodes[ring.owner(cache_id, key)].address for key in KEYS}


def test_keys_spread_evenly_over_the_nodes() -> None:
    for count in (2, 3, 5):
        shares = Counter(_owners(Ring(_nodes(count))).values())
        assert len(shares) == count
        expected = len(KEYS) / count
        assert all(abs(share - expected) < 0.10 * expected for share in shares.values()), shares


def test_a_node_joining_takes_only_its_share_and_moves_nothing_else() -> None:
    before = _owners(Ring(_nodes(3)))
    after = _owners(Ring(_nodes(4)))
    new = _nodes(4)[3].address
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == new for key in moved)  # nothing moves between old nodes
    assert 0.15 < len(moved) / len(KEYS) < 0.35  # about a quarter


def test_a_node_leaving_moves_only_its_own_keys() -> None:
    before = _owners(Ring(_nodes(4)))
    gone = _nodes(4)[1]
    after = _owners(Ring([n for n in _nodes(4) if n != gone]))
    assert all(before[key] == after[key] for key in KEYS if before[key] != gone.address)
    assert all(after[key] != gone.address for key in KEYS)


def test_the_order_of_the_node_list_does_not_matter() -> None:
    nodes = _nodes(4)
    assert _owners(Ring(nodes)) == _owners(Ring(list(reversed(nodes))))


def test_every_process_computes_the_same_owners() -> None:
    """No per-process hash seed: another interpreter (another node) agrees."""
    code = (
        "from memcloud.placement import Ring, RingNode\n"
        "ring = Ring([RingNode(f'10.0.0.{i + 1}:11211', f'm{i}') for i in range(3)])\n"
        "print([ring.owner(7, b'key:%d' % i) for i in range(200)])\n"
    )
    theirs = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    ring = Ring(_nodes(3))
    assert theirs == str([ring.owner(7, b"key:%d" % i) for i in range(200)])


def test_tenants_keys_are_spread_independently() -> None:
    ring = Ring(_nodes(3))
    same = sum(ring.owner(1, key) == ring.owner(2, key) for key in KEYS)
    assert same < 0.45 * len(KEYS)  # a third by chance; not all


def test_replicas_go_to_other_machines_first() -> None:
    ring = Ring(_nodes(4, machines=2))  # m0: nodes 1, 3; m1: nodes 2, 4
    for key in KEYS[:2000]:
        first, second = ring.owners(1, key, 2)
        assert first == ring.owner(1, key)
        assert ring.nodes[first].machine != ring.nodes[second].machine
        assert len(set(ring.owners(1, key, 4))) == 4
    one_machine = Ring(_nodes(3, machines=1))
    assert sorted(one_machine.owners(1, b"k", 5)) == [0, 1, 2]  # never more than the nodes


def test_one_node_owns_everything() -> None:
    ring = Ring(_nodes(1))
    assert {ring.owner(9, key) for key in KEYS[:100]} == {0}
    assert ring.owners(9, b"k", 2) == [0]
