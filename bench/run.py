"""memcloud against Debian's memcached, side by side on loopback, under the same load (issue 6).

    make bench                          # the whole suite, < 5 minutes on 2 cores
    make bench ARGS="--quick"           # a smoke run: 1-second rounds, 100,000 items for (f)
    make bench ARGS="--only a,b"        # some workloads (a b c d e f n t i)
    make bench ARGS="--only a --memcslap"   # with memcslap (text, binary, SASL); on by default

Starts `memcached -t 1` and `memcloud serve --nodes 1`, both pinned to core 0 with taskset,
and drives them with the project's C load generator (bench/loadgen/loadgen.c, built into
bench/build/) pinned to core 1, alternating between the servers round by round. CPU per
operation is the server's utime + stime (from /proc) over the generator's timed phase. Prints a
table with memcloud's ratio to memcached and the targets of issue 6, and appends one JSON record
(machine, git commit, every round) to bench/results/results.jsonl. See bench/README.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from bench import loadgen
from bench.memcslap import SLAP_PROTOCOLS, SLAP_TESTS, SlapMeasurement, drive, slap_table
from bench.procs import rss_bytes
from bench.report import (
    RESULTS,
    Comparison,
    MemoryResult,
    append_record,
    git_description,
    machine,
    memory_table,
    table,
)
from bench.servers import Server, make_certificate, memcached, memcloud, server_stats
from bench.workloads import (
    INTROSPECTION,
    MEMORY,
    MEMORY_VALUE_SIZES,
    NODES,
    ONE_SERVER,
    REPLICATED,
    TLS,
    WORKLOADS,
    Workload,
    memory_items,
)
from memcloud import native

__all__ = ["main"]

SERVER_CORE = 0
LOAD_CORE = 1
ALL = "abcdefmnsrti"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s, 1 round, 100k items")
    parser.add_argument(
        "--only", default=",".join(ALL), help="workloads, e.g. a,b (of a-f, m, n, s, r, t, i)"
    )
    parser.add_argument("--duration", type=int, default=None, help="seconds per round (2)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per server (4)")
    parser.add_argument("--memory-items", type=int, default=None, help="items for (f) (1000000)")
    parser.add_argument(
        "--memory-sizes",
        default=",".join(str(size) for size in MEMORY_VALUE_SIZES),
        help="value sizes for (f), in bytes (10,100,1024)",
    )
    parser.add_argument(
        "--memcslap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="memcslap set/get in text, binary and binary+SASL (default: with every workload)",
    )
    parser.add_argument("--memcslap-execute-number", type=int, default=10000)
    parser.add_argument("--memcslap-concurrency", type=int, default=50)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.duration is None:
        args.duration = 1 if quick else 2
    if args.rounds is None:
        args.rounds = 1 if quick else 4
    if args.memory_items is None:
        args.memory_items = 100_000 if quick else 1_000_000
    if quick:
        args.memcslap_execute_number = min(args.memcslap_execute_number, 1000)
    try:
        args.memory_sizes = [int(size) for size in args.memory_sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--memory-sizes takes byte counts, e.g. 10,100: {args.memory_sizes!r}")
    if not args.memory_sizes or min(args.memory_sizes) < 1:
        parser.error("--memory-sizes needs at least one positive size")
    args.selected = {k.strip() for k in args.only.split(",") if k.strip()}
    if args.memcslap is None:  # `make bench` alone: the independent generator too
        args.memcslap = args.only == ",".join(ALL)
    unknown = args.selected - set(ALL)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(ALL)}")
    return args


def raise_fd_limit(needed: int) -> None:
    """Idle connections need descriptors, in the generator (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def compare(
    binary: Path,
    workload: Workload,
    base: Server,
    subject: Server,
    args: argparse.Namespace,
    core: int | None,
    server_core: int | None,
) -> Comparison:
    """Rounds alternating between the servers (ABBA...), the same generator options for both."""
    comparison = Comparison(workload, base.name, subject.name, pinned=core is not None)
    options = [*workload.options, "-d", str(args.duration)]
    for round_ in range(args.rounds):
        order = (base, subject) if round_ % 2 == 0 else (subject, base)
        for server in order:
            auth = workload.sasl and server is subject
            load = loadgen.run(
                binary, server, options, core, auth, args.duration + 180, server_core
            )
            comparison.add(server.name, load)
            log(
                f"  {workload.key} {server.name:<12} round {round_ + 1}: "
                f"{load.ops_per_second:>9,.0f} ops/s, {load.cpu_us_per_op:6.2f} us CPU/op, "
                f"CPU {load.cpu_percent:.0f}%, p50 {load.p50_us:.0f} us, errors {load.errors}"
            )
    return comparison


def measure_memory(
    binary: Path, server: Server, items: int, value_bytes: int, core: int | None
) -> MemoryResult:
    time.sleep(0.5)
    before = rss_bytes(server.pid)
    seconds = loadgen.preload(binary, server, items, value_bytes, core)
    time.sleep(0.5)
    after = rss_bytes(server.pid)
    stats = [server_stats(p) for p in server.ports]
    held = sum(int(s.get("curr_items", 0)) for s in stats)
    accounted = sum(int(s.get("bytes", 0)) for s in stats)
    result = MemoryResult(server.name, held, items, before, after, seconds, value_bytes, accounted)
    log(
        f"  f {server.name:<12} {held:,} items of {value_bytes} B in {seconds:.1f} s: "
        f"RSS {before / 1e6:.1f} -> "
        f"{after / 1e6:.1f} MB, {result.mb_per_million:.1f} MB per 1M items, "
        f"RSS growth {result.rss_per_accounted:.2f}x its `bytes` stat"
    )
    return result


def notes(comparisons: list[Comparison], pinned: bool) -> list[str]:
    lines = []
    if pinned:
        lines.append(
            f"servers pinned to core {SERVER_CORE}, load generator to core {LOAD_CORE} (taskset);"
            " rounds alternate between the servers"
        )
    else:
        lines.append("nothing pinned (--no-pin or no taskset)")
    lines.append(
        "CPU%: the server's CPU over one core; other%: other processes' CPU on the server's and the"
        " generator's cores (noise); spread: (fastest - slowest round) / fastest; ratios: median"
        " of the rounds' ratios"
    )
    for c in comparisons:
        if c.workload.note:
            lines.append(f"{c.workload.key}: {c.workload.note}")
        for name in c.runs:
            s = c.summary(name)
            if s.errors:
                lines.append(f"{c.workload.key}: {name} answered {s.errors} errors")
            if s.keys and s.hits < 0.99 * s.keys:
                lines.append(f"{c.workload.key}: {name} hit only {s.hits / s.keys:.1%} of keys")
    a = next((c for c in comparisons if c.workload.key == "a"), None)
    n = next((c for c in comparisons if c.workload.key == "n"), None)
    if a is not None and n is not None and a.subject in a.runs and n.subject in n.runs:
        pinned_one = a.summary(a.subject).ops_per_second
        two = n.summary(n.subject).ops_per_second
        if pinned_one:
            lines.append(
                f"n: memcloud --nodes 2 (unpinned) is {two / pinned_one:.2f}x memcloud's (a)"
                " (one node pinned, generator on the other core)"
            )
    via = next((c for c in comparisons if c.workload.key == "s"), None)
    if via is not None and via.base in via.runs and via.subject in via.runs:
        # Half the requests are forwarded: each costs the extra CPU of two requests.
        extra = via.summary(via.subject).cpu_us_per_op - via.summary(via.base).cpu_us_per_op
        lines.append(
            f"s: a forwarded request costs about {2 * extra:.1f} us of CPU more than one its"
            " node owns (both nodes' CPU; half the requests forwarded)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    memcached_binary = shutil.which("memcached")
    if memcached_binary is None:
        print("bench needs memcached (apt-get install memcached)")
        return 2
    memcslap = shutil.which("memcslap")
    if args.memcslap and memcslap is None:
        print("--memcslap needs memcslap (apt-get install libmemcached-tools)")
        return 2
    binary = loadgen.build()
    raise_fd_limit(4096)
    core = LOAD_CORE if args.pin else None
    server_core = SERVER_CORE if args.pin else None
    started = time.monotonic()
    description = machine(memcached_binary, args.pin)
    comparisons: list[Comparison] = []
    memory: list[MemoryResult] = []
    slaps: list[SlapMeasurement] = []
    selected = [w for w in WORKLOADS if w.key in args.selected]
    with tempfile.TemporaryDirectory(prefix="memcloud-bench-") as tmp:
        if selected or args.memcslap:
            with (
                memcached(memcached_binary, server_core) as base,
                memcloud(Path(tmp) / "one", server_core) as subject,
            ):
                for workload in selected:
                    log(f"{workload.key}: {workload.title}")
                    comparisons.append(
                        compare(binary, workload, base, subject, args, core, server_core)
                    )
                if args.memcslap and memcslap is not None:
                    log(f"memcslap set, get: {', '.join(SLAP_PROTOCOLS)}")
                    for protocol in SLAP_PROTOCOLS:
                        for test in SLAP_TESTS:
                            for server in (base, subject):
                                slaps.append(
                                    drive(
                                        memcslap,
                                        server,
                                        test,
                                        args.memcslap_concurrency,
                                        args.memcslap_execute_number,
                                        core,
                                        protocol=protocol,
                                    )
                                )
        if "f" in args.selected:
            for size in args.memory_sizes:
                count = memory_items(args.memory_items, size)
                log(f"f: {MEMORY.title} ({count:,} items of {size} B)")
                with memcached(memcached_binary, server_core) as server:
                    memory.append(measure_memory(binary, server, count, size, core))
                with memcloud(Path(tmp) / f"memory-{size}", server_core) as server:
                    memory.append(measure_memory(binary, server, count, size, core))
        if args.selected & {"n", "s", "r"}:
            with (
                memcloud(Path(tmp) / "nodes1", None, nodes=1) as one,
                memcloud(Path(tmp) / "nodes2", None, nodes=2) as two,
            ):
                if "n" in args.selected:
                    log(f"n: {NODES.title}")
                    comparisons.append(compare(binary, NODES, one, two, args, None, None))
                if "s" in args.selected:
                    log(f"s: {ONE_SERVER.title}")
                    first = replace(two, name=f"{two.name} via 1", ports=two.ports[:1])
                    comparisons.append(compare(binary, ONE_SERVER, one, first, args, None, None))
                if "r" in args.selected:
                    log(f"r: {REPLICATED.title}")
                    with memcloud(Path(tmp) / "replicated", None, nodes=2, replicas=2) as copies:
                        comparisons.append(
                            compare(binary, REPLICATED, two, copies, args, None, None)
                        )
        if "i" in args.selected:
            log("i: (a) and (b), introspection on vs off")
            with (
                memcloud(Path(tmp) / "intro-off", server_core, introspection=False) as off,
                memcloud(Path(tmp) / "intro-on", server_core, introspection=True) as on,
            ):
                for workload in INTROSPECTION:
                    comparisons.append(compare(binary, workload, off, on, args, core, server_core))
        if "t" in args.selected:
            log(f"t: {TLS.title}")
            certificate = make_certificate(Path(tmp) / "tls")
            with (
                memcached(memcached_binary, server_core, tls=certificate) as base,
                memcloud(Path(tmp) / "tls-data", server_core, tls=certificate) as subject,
            ):
                comparisons.append(compare(binary, TLS, base, subject, args, core, server_core))
    elapsed = time.monotonic() - started
    print()
    if comparisons:
        print(table(comparisons))
    if memory:
        print()
        print(memory_table(memory))
    if slaps:
        print()
        print(slap_table(slaps))
    print()
    for line in notes(comparisons, args.pin and description["pinned"] is True):
        print(f"  {line}")
    # The servers it started chose as this process did (same files, same environment).
    print(f"  memcloud's data plane: {native.in_use()}")
    print(f"  {args.rounds} round(s) of {args.duration} s per server; suite took {elapsed:.0f} s")
    append_record(
        args.results,
        {
            "machine": description,
            "git": git_description(),
            "data_plane": native.in_use(),
            "options": {
                "duration": args.duration,
                "rounds": args.rounds,
                "memory_items": args.memory_items,
                "memory_sizes": args.memory_sizes,
                "only": sorted(args.selected),
                "quick": args.quick,
            },
            "workloads": [c.record() for c in comparisons],
            "memory": [
                {
                    **asdict(m),
                    "mb_per_million": m.mb_per_million,
                    "rss_per_accounted": m.rss_per_accounted,
                }
                for m in memory
            ],
            "memcslap": [
                {**asdict(m), "ops_per_second": m.ops_per_second, "cpu_us_per_op": m.cpu_us_per_op}
                for m in slaps
            ],
            "seconds": elapsed,
        },
    )
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
