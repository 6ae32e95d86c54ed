"""The workloads of issue 6, as load generator options, and their targets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMMON",
    "INTROSPECTION",
    "MEMORY",
    "MEMORY_GOAL_RATIO",
    "MEMORY_LOAD_BYTES",
    "MEMORY_MAX_RATIO",
    "MEMORY_TARGET_BYTES",
    "MEMORY_VALUE_SIZES",
    "NODES",
    "ONE_SERVER",
    "REPLICATED",
    "TLS",
    "WORKLOADS",
    "Workload",
    "memory_items",
]

# 50 connections, 100-byte values, 1 set per 10 gets over 10,000 preloaded keys.
COMMON = ("-c", "50", "-r", "10", "-v", "100", "-k", "10000")


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    options: tuple[str, ...]
    sasl: bool = False  # memcloud authenticates (SASL PLAIN); memcached cannot
    min_ratio: float | None = None  # target: memcloud ops/s >= min_ratio x memcached's
    max_cpu_ratio: float | None = None  # target: memcloud CPU/op <= max_cpu_ratio x memcached's
    note: str = ""


WORKLOADS: tuple[Workload, ...] = (
    Workload("a", "text get/set 1:10, unpipelined", (*COMMON, "-p", "1"), min_ratio=1.0,
             max_cpu_ratio=1.2),
    Workload("b", "text get/set 1:10, pipelined 16 deep", (*COMMON, "-p", "16"), min_ratio=2.5,
             note="an op is one request; latency is that of a batch of 16"),
    Workload("c", "binary get/set 1:10, SASL", (*COMMON, "-p", "1", "-b"), sasl=True,
             min_ratio=1.0,
             note="memcloud with SASL PLAIN (the hosted path); Debian's memcached without SASL"),
    Workload("d", "multi-get of 10 keys (1 set : 10)", (*COMMON, "-p", "1", "-m", "10"),
             min_ratio=1.0, note="an op is one multi-get of 10 keys (or one set)"),
    Workload("e", "(a) with 1,000 idle connections", (*COMMON, "-p", "1", "-i", "1000"),
             note="no target; idle connections open before the timed phase"),
    Workload("m", "meta mg/ms 1:10, unpipelined", (*COMMON, "-p", "1", "-M"),
             note="(a) in the meta protocol (issue 13): `mg <key> v` and `ms <key> 100`"),
)  # fmt: skip

# (f): RSS per million items, for each value size of MEMORY_VALUE_SIZES; at 100 bytes memcloud
# <= 3x memcached (issue 6) and <= 1.25x (issue 15's goal), the other sizes reported.
MEMORY = Workload("f", "memory: RSS per 1M items", (), note="lower is better")
MEMORY_MAX_RATIO = 3.0
MEMORY_GOAL_RATIO = 1.25
MEMORY_TARGET_BYTES = 100
MEMORY_VALUE_SIZES = (10, 100, 1024)
# What (f) stores at most per size, so that neither server's 1 GB fills (1 KB values: 622k).
MEMORY_LOAD_BYTES = 700_000_000


def memory_items(requested: int, value_bytes: int) -> int:
    """How many items (f) stores of `value_bytes` each: `requested`, or fewer for large
    values, so that both servers hold them all below their 1 GB without evicting."""
    return min(requested, MEMORY_LOAD_BYTES // (value_bytes + 100))


# Workload (a) against memcloud --nodes 2 versus --nodes 1, all unpinned (2 cores only). The
# two nodes are one cluster: a key's owner answers it, the other forwards (docs/cluster.md).
NODES = Workload("n", "(a) on memcloud --nodes 2 vs 1", (*COMMON, "-p", "1"),
                 note="servers and generator unpinned; 2 ports: key n on port n % 2, so about"
                 " half the requests reach the node that does not own their key")  # fmt: skip
# The same with a client that knows one server only (pymemcache's Client, as the README's):
# every request goes to node 0, which forwards the keys node 1 owns (about half).
ONE_SERVER = Workload("s", "(a) on --nodes 2, client of one server, vs --nodes 1",
                      (*COMMON, "-p", "1"),
                      note="servers and generator unpinned; every request to node 0, which"
                      " forwards about half; the forwarding price is printed below")  # fmt: skip
# (a) on --nodes 2 with a plan of replicas=2 (every set written on both nodes) against the
# same two nodes with one copy per key.
REPLICATED = Workload("r", "(a) on --nodes 2, replicas=2 vs 1", (*COMMON, "-p", "1"),
                      note="servers and generator unpinned; 2 ports as in n; each set is"
                      " written on both nodes")  # fmt: skip

# Workload (a) over TLS: memcached -Z and memcloud --tls-only, the same certificate (P-256).
TLS = Workload("t", "(a) over TLS", (*COMMON, "-p", "1", "-s"),
               note="memcached -Z and memcloud --tls-only, one self-signed P-256 certificate;"
               " handshakes before the timed phase")  # fmt: skip
# Workloads (a) and (b) against memcloud with introspection on (recent requests, sampled
# hot keys: issue 12) versus --no-introspection, both pinned as for (a): at most 5 % lost.
INTROSPECTION = (
    Workload("ia", "(a) introspection on vs off", (*COMMON, "-p", "1"), min_ratio=0.95,
             note="memcloud with introspection (the default) against --no-introspection"),
    Workload("ib", "(b) introspection on vs off", (*COMMON, "-p", "16"), min_ratio=0.95),
)  # fmt: skip
