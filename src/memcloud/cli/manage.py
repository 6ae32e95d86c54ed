"""The management commands: caches (and their cluster), credentials, and (through the running
server's operator socket) flush, stats and the flush log. Which data dir and store each uses:
cli/datadir.py."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memcloud import adminlink
from memcloud.api.insight import format_time
from memcloud.api.record_json import flush_json
from memcloud.cli.datadir import NoDataDir, data_dir_of, open_store_of
from memcloud.cli.env import Parser, UsageError, argument_type
from memcloud.cli.output import (
    cache_json,
    caches_table,
    credential_json,
    credentials_table,
    emit,
    human_bytes,
    password_note,
    stats_text,
    table,
)
from memcloud.config import format_size, parse_positive_size
from memcloud.control import clusters
from memcloud.control.base import ControlError, ControlStore
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.options import parse_positive_int
from memcloud.protocol.prefix import prefix_error

__all__ = [
    "CAPABILITY_HELP",
    "Handler",
    "add_manage_commands",
    "common_options",
]

Handler = Callable[[argparse.Namespace], int]

_positive_size = argument_type(parse_positive_size)
_positive_int = argument_type(parse_positive_int)


def _parse_prefix(text: str) -> bytes:
    # The argument's own bytes (argv's undecodable ones came in as surrogate escapes).
    prefix = text.encode("utf-8", "surrogateescape")
    problem = prefix_error(prefix)
    if problem:
        raise ValueError(f"{problem}: {text!r}")
    return prefix


_key_prefix = argument_type(_parse_prefix)


def _servers(store: ControlStore, cache: CacheRecord) -> list[str]:
    """MEMCACHIER_SERVERS of the cache: the live nodes of its cluster in registration
    order (memcloud.control.clusters); empty when no server runs on this control store."""
    return clusters.servers_of(store.list_nodes(), cache.cluster, [])


def _warn_overcommit(store: ControlStore, cache: CacheRecord) -> None:
    """On stderr (stdout stays the answer, or its JSON): the plans placed on the cache's
    cluster now exceed the memory of its live nodes."""
    for budget in clusters.budgets(store.list_nodes(), store.list_caches()):
        warning = clusters.overcommit_warning(budget, human_bytes)
        if budget.name == cache.cluster and warning is not None:
            print(f"Warning: {warning}.", file=sys.stderr)


def cmd_cache_create(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cluster = ns.cluster or clusters.cluster_for_new_cache(store.list_nodes())
        cache = store.create_cache(ns.name, ns.plan, cluster=cluster)
        new = store.create_credential(cache.id, primary=True)
        servers = _servers(store, cache)
        _warn_overcommit(store, cache)
    note = password_note(new.record.username, new.password, servers, cache.cluster)
    text = (
        f"Created cache {cache.name} (id {cache.id}, plan {format_size(cache.plan)}).\n\n"
        f"{credentials_table([new.record])}\n{note}"
    )
    data = cache_json(cache, [new.record], {new.record.id: new.password})
    emit(ns, {**data, "servers": servers}, text)  # as the v2 API's `info`
    return 0


def cmd_cache_list(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        caches = store.list_caches()
        credentials = store.list_credentials()
    by_cache: dict[int, list[CredentialRecord]] = {}
    for record in credentials:
        by_cache.setdefault(record.cache_id, []).append(record)
    data = [cache_json(c, by_cache.get(c.id, [])) for c in caches]
    counts = {cache_id: len(records) for cache_id, records in by_cache.items()}
    text = caches_table(caches, counts) if caches else "No caches yet."
    emit(ns, data, text)
    return 0


def cmd_cache_delete(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        credentials = store.list_credentials(cache.id)
        store.delete_cache(cache.id)
    text = f"Deleted cache {cache.name} (id {cache.id}) and its {len(credentials)} credential(s)."
    emit(ns, cache_json(cache, credentials), text)
    return 0


def cmd_cache_resize(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.update_cache(store.find_cache(ns.cache).id, plan=ns.plan)
        credentials = store.list_credentials(cache.id)
        _warn_overcommit(store, cache)
    text = f"Cache {cache.name} (id {cache.id}) now has a {format_size(cache.plan)} plan."
    emit(ns, cache_json(cache, credentials), text)
    return 0


def cmd_cache_switch_cluster(ns: argparse.Namespace) -> int:
    """As the v2 API's switch_cluster: the target must be a known cluster with a live node."""
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        refusal = clusters.switch_refusal(store.list_nodes(), cache.cluster, ns.cluster)
        if refusal is not None:
            raise ControlError(refusal.rstrip("."))
        moved = store.update_cache(cache.id, cluster=ns.cluster)
        credentials = store.list_credentials(cache.id)
        servers = _servers(store, moved)
        _warn_overcommit(store, moved)
    text = (
        f"Cache {moved.name} moved from cluster {cache.cluster} to {moved.cluster}; it starts"
        f" empty there.\nMEMCACHIER_SERVERS={','.join(servers)}"
    )
    emit(ns, {**cache_json(moved, credentials), "servers": servers}, text)
    return 0


def cmd_credentials_list(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        records = store.list_credentials(store.find_cache(ns.cache).id)
    text = credentials_table(records) if records else "No credentials."
    emit(ns, [credential_json(r) for r in records], text)
    return 0


def cmd_credentials_create(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        new = store.create_credential(cache.id, write=ns.write, flush=ns.flush, api=ns.api)
        servers = _servers(store, cache)
    note = password_note(new.record.username, new.password, servers, cache.cluster)
    text = (
        f"Created credential {new.record.username} for cache {cache.name}.\n\n"
        f"{credentials_table([new.record])}\n{note}"
    )
    emit(ns, credential_json(new.record, new.password), text)
    return 0


def cmd_credentials_update(ns: argparse.Namespace) -> int:
    if ns.write is None and ns.flush is None and ns.api is None:
        raise UsageError(
            "nothing to change: give --write/--no-write, --flush/--no-flush or --api/--no-api"
        )
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.find_credential(cache.id, ns.credential)
        record = store.update_credential(record.id, write=ns.write, flush=ns.flush, api=ns.api)
    emit(ns, credential_json(record), credentials_table([record]))
    return 0


def cmd_credentials_promote(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.promote_credential(store.find_credential(cache.id, ns.credential).id)
    text = f"{record.username} is now the primary credential of cache {cache.name}."
    emit(ns, credential_json(record), text)
    return 0


def cmd_credentials_delete(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.find_credential(cache.id, ns.credential)
        store.delete_credential(record.id)
    emit(ns, credential_json(record), f"Deleted credential {record.username}.")
    return 0


def _find(ns: argparse.Namespace) -> CacheRecord:
    with contextlib.closing(open_store_of(ns)) as store:
        return store.find_cache(ns.cache)


def cmd_flush(ns: argparse.Namespace) -> int:
    cache = _find(ns)
    prefix: bytes = ns.prefix
    args = {"prefix_hex": prefix.hex()} if prefix else {}
    reply = adminlink.call(data_dir_of(ns), "flush", cache_id=cache.id, **args)
    what = f"cache {cache.name} (id {cache.id})"
    if prefix:
        shown = prefix.decode("utf-8", "backslashreplace")
        emit(ns, reply, f"Flushed the keys starting with {shown!r} of {what}; the others stay.")
    else:
        emit(ns, reply, f"Flushed {what}.")
    return 0


def cmd_stats(ns: argparse.Namespace) -> int:
    cache = _find(ns)
    reply = adminlink.call(data_dir_of(ns), "stats", cache_id=cache.id)
    stats: dict[str, Any] = reply.get("stats", {})
    emit(ns, stats, stats_text(cache, stats))
    return 0


def cmd_flush_log(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        records = store.flush_log(cache.id, ns.limit)
    # The prefix column only when a listed flush had one (`*`: a whole flush).
    prefixed = any("prefix" in r.details for r in records)
    rows = [
        (
            format_time(r.at),
            r.source,
            r.username or "-",
            r.peer or "-",
            *((r.details.get("prefix", "*"),) if prefixed else ()),
            r.app or "-",
            r.release or "-",
            (r.commit or "-")[:12],
        )
        for r in records
    ]
    header = (
        "time",
        "source",
        "credential",
        "peer",
        *(("prefix",) if prefixed else ()),
        "app",
        "release",
        "commit",
    )
    text = table(header, rows) if rows else f"No flushes recorded for cache {cache.name}."
    note = _pending_note(ns, cache.id)
    if note and not ns.json:
        text = f"{text}\n\n{note}"
    emit(ns, [flush_json(r) for r in records], text)
    if note and ns.json:
        print(note, file=sys.stderr)  # stdout stays the JSON list
    return 0


def _pending_note(ns: argparse.Namespace, cache_id: int) -> str:
    """What the running server holds of the cache's flushes but could not store yet."""
    try:
        reply = adminlink.call(data_dir_of(ns), "flush_log_pending", cache_id=cache_id)
    except (adminlink.AdminLinkError, NoDataDir):
        return ""  # no server running: none waits in memory
    count = int(reply.get("pending") or 0)
    if count == 0:
        return ""
    since = reply.get("since")
    when = f" (the oldest from {format_time(float(since))})" if since else ""
    error = reply.get("error") or "the control database failed"
    return (
        f"Pending: {count} more flush(es){when} are not in this log yet: the server keeps"
        f" them and retries until they are written ({error})."
    )


# -- parsers ---------------------------------------------------------------------------------

# What each capability allows, and what a new credential gets without the flag. argparse
# shows no default for on/off flags, so the help says it.
CAPABILITY_HELP = {
    "write": ("store, change and delete items", "may write"),
    "flush": ("flush the whole cache (flush_all, the API's flush)", "may flush"),
    "api": (
        "use the HTTP API and manage credentials (API and dashboard)",
        "may use the API",
    ),
}
_READ_ONLY_NOTE = (
    "--no-write alone still lets the credential flush the cache and use the API (with which "
    "it can create credentials that have every capability). A read-only credential is "
    "--no-write --no-flush --no-api."
)


def common_options() -> argparse.ArgumentParser:
    """--data-dir, --control-url and --json: every management command takes them."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the server's data dir (default: that of the memcloud server you run)",
    )
    common.add_argument(
        "--control-url",
        default=None,
        help="PostgreSQL control store (prefer MEMCLOUD_CONTROL_URL); without it, SQLite in"
        " --data-dir",
    )
    common.add_argument("--json", action="store_true", default=False, help="print JSON")
    return common


def _leaf(group: Any, name: str, handler: Handler, help_text: str) -> Parser:
    # A fresh parent each time: parents share their Action objects with every child, and
    # add_env_defaults() rewrites each action once per parser.
    sub: Parser = group.add_parser(name, parents=[common_options()], help=help_text)
    sub.set_defaults(handler=handler, leaf=sub)
    return sub


def add_manage_commands(commands: Any) -> None:
    """The cache, credentials, flush, stats and flush-log commands, after `serve`."""
    cache = commands.add_parser(
        "cache", help="create, list, delete and resize caches, move them to another cluster"
    )
    cache_cmds = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = _leaf(cache_cmds, "create", cmd_cache_create, "create a cache and its primary credential")
    sub.add_argument("name", help="1-64 letters, digits, '_', '.', '-' (not all digits)")
    sub.add_argument("--plan", type=_positive_size, default="25MB", help="cache size")
    sub.add_argument(
        "--cluster",
        default=None,
        help="cluster to place it on (default: `default`, or the first cluster with a live"
        " node when no live node serves `default`)",
    )
    _leaf(cache_cmds, "list", cmd_cache_list, "list caches")
    sub = _leaf(cache_cmds, "delete", cmd_cache_delete, "delete a cache and its credentials")
    sub.add_argument("cache", help="cache name or id")
    sub = _leaf(cache_cmds, "resize", cmd_cache_resize, "change a cache's plan")
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("--plan", type=_positive_size, required=True, help="new cache size")
    sub = _leaf(
        cache_cmds,
        "switch-cluster",
        cmd_cache_switch_cluster,
        "move a cache to another cluster (it starts empty there)",
    )
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("cluster", help="a cluster with a live node (memcloud nodes lists them)")

    creds = commands.add_parser("credentials", help="manage a cache's credentials")
    cred_cmds = creds.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = _leaf(cred_cmds, "list", cmd_credentials_list, "list a cache's credentials")
    sub.add_argument("cache", help="cache name or id")
    sub = _leaf(cred_cmds, "create", cmd_credentials_create, "create a secondary credential")
    sub.epilog = _READ_ONLY_NOTE
    sub.add_argument("cache", help="cache name or id")
    for capability, (meaning, default) in CAPABILITY_HELP.items():
        sub.add_argument(
            f"--{capability}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"{meaning} (default: {default})",
        )
    sub = _leaf(cred_cmds, "update", cmd_credentials_update, "change a credential's capabilities")
    sub.epilog = _READ_ONLY_NOTE
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("credential", metavar="USERNAME_OR_ID")
    for capability, (meaning, _) in CAPABILITY_HELP.items():
        sub.add_argument(
            f"--{capability}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"grant or revoke: {meaning} (default: unchanged)",
        )
    for name, handler, help_text in (
        ("promote", cmd_credentials_promote, "make a credential the primary one"),
        (
            "delete",
            cmd_credentials_delete,
            "delete a credential (never the primary: promote another first)",
        ),
    ):
        sub = _leaf(cred_cmds, name, handler, help_text)
        sub.add_argument("cache", help="cache name or id")
        sub.add_argument("credential", metavar="USERNAME_OR_ID")

    sub = _leaf(commands, "flush", cmd_flush, "flush a cache on the running server")
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument(
        "--prefix",
        type=_key_prefix,
        default=b"",
        help="flush only the keys starting with PREFIX (every node; the others stay)",
    )
    sub = _leaf(commands, "stats", cmd_stats, "print a cache's stats from the running server")
    sub.add_argument("cache", help="cache name or id")
    sub = _leaf(commands, "flush-log", cmd_flush_log, "show a cache's recent flushes, newest first")
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("--limit", type=_positive_int, default="50", help="flushes to show")
