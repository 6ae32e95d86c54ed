"""The workloads of issue 6, as load generator options, and their targets."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMON", "MEMORY", "MEMORY_MAX_RATIO", "NODES", "TLS", "WORKLOADS", "Workload"]

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

# (f): RSS per million 100-byte items, memcloud <= 3x memcached.
MEMORY = Workload("f", "memory: RSS per 1M 100-byte items", (), note="lower is better")
MEMORY_MAX_RATIO = 3.0

# Workload (a) against memcloud --nodes 2 versus --nodes 1, all unpinned (2 cores only).
NODES = Workload("n", "(a) on memcloud --nodes 2 vs 1", (*COMMON, "-p", "1"), min_ratio=1.3,
                 note="servers and generator unpinned; 2 ports: key n on port n % 2")  # fmt: skip

# Workload (a) over TLS: memcached -Z and memcloud --tls-only, the same certificate (P-256).
TLS = Workload("t", "(a) over TLS", (*COMMON, "-p", "1", "-s"),
               note="memcached -Z and memcloud --tls-only, one self-signed P-256 certificate;"
               " handshakes before the timed phase")  # fmt: skip
