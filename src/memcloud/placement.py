"""Which node of a cluster owns a key: consistent hashing over the cluster's live nodes.

The scheme (docs/cluster.md describes it for operators):
* every node has POINTS_PER_NODE points on a ring of 2**32 positions, at the first four
  bytes of BLAKE2b("<address>#<i>") for i in 0..POINTS_PER_NODE-1 (its address names it, so
  a node that restarts at its address gets its keys back);
* a key of cache C sits at the CRC-32 of the key, started from C: CRC-32 is C code, about
  0.1 µs per request, and spreads keys as evenly as a cryptographic hash would here (the
  imbalance comes from where the nodes' points fall: 512 points keep it under 10 % for up
  to 5 nodes); the cache id in the start value spreads the same key of different tenants
  over different nodes;
* the key's owner is the node of the first point at or after that position (wrapping);
  its replicas are the next distinct nodes clockwise, nodes of other machines first.
Adding a node moves about 1/N of the keys to it and no key between the others; removing
one moves only its own keys. Every node builds the same ring from the same node list,
whatever order the list comes in.
"""

from __future__ import annotations

import bisect
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["POINTS_PER_NODE", "Ring", "RingNode", "key_position"]

POINTS_PER_NODE: Final = 512
_MASK: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class RingNode:
    address: str  # "host:port": the node's name on the ring
    machine: str  # replicas of a key go to other machines first


def key_position(cache_id: int, key: bytes) -> int:
    """Where a key of a cache sits on the ring (32 bits)."""
    return zlib.crc32(key, cache_id & _MASK)


def _point(address: str, index: int) -> int:
    digest = hashlib.blake2b(f"{address}#{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


class Ring:
    """The ring of one cluster's live nodes; `nodes` sorted by address, owners are indexes
    into it."""

    __slots__ = ("_owners", "_positions", "nodes")

    def __init__(self, nodes: Sequence[RingNode]) -> None:
        self.nodes: tuple[RingNode, ...] = tuple(sorted(set(nodes), key=lambda n: n.address))
        points = sorted(
            (_point(node.address, i), index)
            for index, node in enumerate(self.nodes)
            for i in range(POINTS_PER_NODE)
        )
        self._positions = [position for position, _ in points]
        self._owners = [index for _, index in points]

    def __len__(self) -> int:
        return len(self.nodes)

    def owner(self, cache_id: int, key: bytes) -> int:
        """The index of the node that owns the key (the ring must not be empty)."""
        owners = self._owners
        if len(self.nodes) == 1:
            return 0
        at = bisect.bisect_left(self._positions, key_position(cache_id, key))
        return owners[at] if at < len(owners) else owners[0]

    def owners(self, cache_id: int, key: bytes, count: int) -> list[int]:
        """The owner and its replicas: `count` distinct nodes (fewer if the ring has fewer),
        each on a machine none before it is on, while there are such machines."""
        count = min(count, len(self.nodes))
        start = bisect.bisect_left(self._positions, key_position(cache_id, key))
        seen: list[int] = []
        later: list[int] = []  # nodes of machines already chosen, in ring order
        machines: set[str] = set()
        total = len(self._owners)
        for step in range(total):
            index = self._owners[(start + step) % total]
            if index in seen or index in later:
                continue
            machine = self.nodes[index].machine
            if machine in machines:
                later.append(index)
            else:
                machines.add(machine)
                seen.append(index)
                if len(seen) == count:
                    return seen
        return (seen + later)[:count]
