"""The `memcloud` command: run a server, manage caches and credentials, flush, read stats.

Every option can also come from the environment as `MEMCLOUD_<OPTION>` (`--data-dir` is
`MEMCLOUD_DATA_DIR`); a flag on the command line wins. Errors are one line on stderr, exit
status 2 for usage mistakes and 1 for everything else.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from memcloud import adminlink
from memcloud.api.insight import format_time
from memcloud.api.record_json import credential_v2, flush_json
from memcloud.config import (
    DEFAULT_ITEM_SIZE_MAX,
    DEFAULT_PLAN_BYTES,
    DEFAULT_PLANS,
    Plan,
    Settings,
    format_size,
    parse_plan_specs,
    plan_connections,
)
from memcloud.config import parse_size as _parse_size
from memcloud.control.base import ControlError, ControlStore
from memcloud.control.failures import full_disk_note
from memcloud.control.models import CacheRecord, CredentialRecord
from memcloud.control.open import open_store

__all__ = ["ENV_PREFIX", "build_parser", "main"]

ENV_PREFIX = "MEMCLOUD_"
PROG = "memcloud"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Handler = Callable[[argparse.Namespace], int]


class _Unset:
    """Marks an option not given on the command line, so the environment may fill it."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class UsageError(Exception):
    """A mistake in how the command was called (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, and whose options fall back to env."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.real_defaults: dict[str, Any] = {}

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def add_env_defaults(self) -> None:
        """Swap each option's default for _UNSET and name its env variable in the help."""
        for action in self._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.default is not _UNSET, f"{action.dest} is shared with another parser"
            self.real_defaults[action.dest] = action.default
            action.default = _UNSET
            note = f"env {ENV_PREFIX}{action.dest.upper()}"
            if action.nargs != 0 and self.real_defaults[action.dest] is not None:
                note += f"; default {self.real_defaults[action.dest]}"
            if action.help != argparse.SUPPRESS:
                action.help = f"{action.help or ''} [{note}]".strip()

    def resolve(self, ns: argparse.Namespace, environ: Mapping[str, str]) -> None:
        """Fill every option left _UNSET from the environment, else from its default."""
        for action in self._actions:
            if action.dest not in self.real_defaults or getattr(ns, action.dest) is not _UNSET:
                continue
            name = f"{ENV_PREFIX}{action.dest.upper()}"
            raw = environ.get(name, "")
            if raw == "":
                value = self.real_defaults[action.dest]
                if isinstance(value, str) and action.type is not None:
                    value = self._convert(action, value, action.option_strings[0])
            elif action.nargs == 0:
                value = _parse_bool(raw, name)
            else:
                value = self._convert(action, raw, name)
            setattr(ns, action.dest, value)

    @staticmethod
    def _convert(action: argparse.Action, raw: str, source: str) -> Any:
        convert: Any = action.type or str
        try:
            value = convert(raw)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"{source}: {exc}") from None
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UsageError(f"{source}: invalid choice {raw!r} (choose from {choices})")
        return value


def _parse_bool(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise UsageError(f"{name}: expected a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


# -- argument types (their messages end up after "argument --x:") ----------------------------


def _size(text: str) -> int:
    try:
        return _parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_size(text: str) -> int:
    size = _size(text)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"size must be greater than zero: {text!r}")
    return size


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return port


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than zero: {text!r}")
    return number


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be greater than zero: {text!r}")
    return seconds


def _plans(text: str) -> tuple[Plan, ...]:
    try:
        return parse_plan_specs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _log_level(text: str) -> str:
    return text.upper()


# -- output ----------------------------------------------------------------------------------


def credential_json(record: CredentialRecord, password: str | None = None) -> dict[str, Any]:
    """A credential in the v2 API's shape; the password only right after creation."""
    data = credential_v2(record, password)
    if password is None:
        del data["sasl_password"]
    return data


def cache_json(
    cache: CacheRecord,
    credentials: Sequence[CredentialRecord],
    passwords: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A cache in the v2 API's `info` shape; `passwords` (by credential id) only when new."""
    known = passwords or {}
    return {
        "id": cache.id,
        "name": cache.name,
        "plan": cache.plan,
        "enabled": cache.enabled,
        "credentials": [credential_json(c, known.get(c.id)) for c in credentials],
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _credentials_table(records: Sequence[CredentialRecord]) -> str:
    rows = [
        (c.id, c.username, _yes(c.primary), _yes(c.write), _yes(c.flush), _yes(c.api))
        for c in records
    ]
    return _table(("id", "username", "primary", "write", "flush", "api"), rows)


def _caches_table(caches: Sequence[CacheRecord], counts: Mapping[int, int]) -> str:
    rows = [
        (c.id, c.name, format_size(c.plan), _yes(c.enabled), counts.get(c.id, 0)) for c in caches
    ]
    return _table(("id", "name", "plan", "enabled", "credentials"), rows)


def _emit(ns: argparse.Namespace, data: object, text: str) -> None:
    if ns.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def _password_note(username: str, password: str) -> str:
    return (
        f"\nPassword of {username} (shown only now, store it safely):\n  {password}\n"
        f"\nMEMCACHIER_USERNAME={username}\nMEMCACHIER_PASSWORD={password}"
    )


# -- commands --------------------------------------------------------------------------------


def _open(ns: argparse.Namespace, *, create: bool = False) -> ControlStore:
    return open_store(ns.data_dir, create=create)


def cmd_serve(ns: argparse.Namespace) -> int:
    settings = Settings(
        host=ns.host,
        port=ns.port,
        api_port=ns.api_port,
        data_dir=ns.data_dir,
        memory=ns.memory,
        anonymous_cache=ns.anonymous_cache,
        log_level=ns.log_level,
        auth_timeout=ns.auth_timeout,
        item_size_max=ns.item_size_max,
        default_plan=ns.default_plan,
        max_connections=ns.max_connections,
        api_max_connections=ns.api_max_connections,
        login_free_failures=ns.login_free_failures,
        metrics_token=ns.metrics_token,
        admin_token=ns.admin_token,
        public_host=ns.public_host,
        provision_user=ns.provision_user,
        provision_password=ns.provision_password,
        sso_salt=ns.sso_salt,
        plans=tuple((plan.slug, plan.size) for plan in ns.plans),
        plan_connections=plan_connections(ns.plans),
        nodes=ns.nodes,
        node_index=ns.node_index,
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        tls_port=ns.tls_port,
        tls_only=ns.tls_only,
        tls_client_ca=ns.tls_client_ca,
    )
    _check_tls(settings)
    # Imported here so that management commands never load the server (and uvloop).
    try:
        runner = importlib.import_module("memcloud.server.runner")
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("memcloud.server"):
            raise
        raise ControlError("this memcloud build has no server (memcloud.server.runner)") from None
    run: Callable[[Settings], int] = runner.run
    return run(settings)


def _check_tls(settings: Settings) -> None:
    """TLS options that make no sense together (the files themselves are read at start)."""
    if settings.tls_cert is None:
        for given, flag in (
            (settings.tls_key, "--tls-key"),
            (settings.tls_only, "--tls-only"),
            (settings.tls_client_ca, "--tls-client-ca"),
        ):
            if given:
                raise UsageError(f"{flag} needs --tls-cert")
    elif not settings.tls_only and settings.port and settings.port == settings.tls_port:
        raise UsageError(f"--port and --tls-port are both {settings.port}")


def cmd_cache_create(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns, create=True)) as store:
        cache = store.create_cache(ns.name, ns.plan)
        new = store.create_credential(cache.id, primary=True)
    text = (
        f"Created cache {cache.name} (id {cache.id}, plan {format_size(cache.plan)}).\n\n"
        f"{_credentials_table([new.record])}\n{_password_note(new.record.username, new.password)}"
    )
    _emit(ns, cache_json(cache, [new.record], {new.record.id: new.password}), text)
    return 0


def cmd_cache_list(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        caches = store.list_caches()
        credentials = store.list_credentials()
    by_cache: dict[int, list[CredentialRecord]] = {}
    for record in credentials:
        by_cache.setdefault(record.cache_id, []).append(record)
    data = [cache_json(c, by_cache.get(c.id, [])) for c in caches]
    counts = {cache_id: len(records) for cache_id, records in by_cache.items()}
    text = _caches_table(caches, counts) if caches else "No caches yet."
    _emit(ns, data, text)
    return 0


def cmd_cache_delete(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        credentials = store.list_credentials(cache.id)
        store.delete_cache(cache.id)
    text = f"Deleted cache {cache.name} (id {cache.id}) and its {len(credentials)} credential(s)."
    _emit(ns, cache_json(cache, credentials), text)
    return 0


def cmd_cache_resize(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.update_cache(store.find_cache(ns.cache).id, plan=ns.plan)
        credentials = store.list_credentials(cache.id)
    text = f"Cache {cache.name} (id {cache.id}) now has a {format_size(cache.plan)} plan."
    _emit(ns, cache_json(cache, credentials), text)
    return 0


def cmd_credentials_list(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        records = store.list_credentials(store.find_cache(ns.cache).id)
    text = _credentials_table(records) if records else "No credentials."
    _emit(ns, [credential_json(r) for r in records], text)
    return 0


def cmd_credentials_create(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        new = store.create_credential(cache.id, write=ns.write, flush=ns.flush, api=ns.api)
    text = (
        f"Created credential {new.record.username} for cache {cache.name}.\n\n"
        f"{_credentials_table([new.record])}\n{_password_note(new.record.username, new.password)}"
    )
    _emit(ns, credential_json(new.record, new.password), text)
    return 0


def cmd_credentials_update(ns: argparse.Namespace) -> int:
    if ns.write is None and ns.flush is None and ns.api is None:
        raise UsageError(
            "nothing to change: give --write/--no-write, --flush/--no-flush or --api/--no-api"
        )
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.find_credential(cache.id, ns.credential)
        record = store.update_credential(record.id, write=ns.write, flush=ns.flush, api=ns.api)
    _emit(ns, credential_json(record), _credentials_table([record]))
    return 0


def cmd_credentials_promote(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.promote_credential(store.find_credential(cache.id, ns.credential).id)
    text = f"{record.username} is now the primary credential of cache {cache.name}."
    _emit(ns, credential_json(record), text)
    return 0


def cmd_credentials_delete(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.find_credential(cache.id, ns.credential)
        store.delete_credential(record.id)
    _emit(ns, credential_json(record), f"Deleted credential {record.username}.")
    return 0


def _find(ns: argparse.Namespace) -> CacheRecord:
    with contextlib.closing(_open(ns)) as store:
        return store.find_cache(ns.cache)


def cmd_flush(ns: argparse.Namespace) -> int:
    cache = _find(ns)
    reply = adminlink.call(ns.data_dir, "flush", cache_id=cache.id)
    _emit(ns, reply, f"Flushed cache {cache.name} (id {cache.id}).")
    return 0


def cmd_stats(ns: argparse.Namespace) -> int:
    cache = _find(ns)
    reply = adminlink.call(ns.data_dir, "stats", cache_id=cache.id)
    stats: dict[str, Any] = reply.get("stats", {})
    width = max((len(name) for name in stats), default=0)
    text = "\n".join(f"{name.ljust(width)}  {value}" for name, value in stats.items())
    _emit(ns, stats, text)
    return 0


def cmd_flush_log(ns: argparse.Namespace) -> int:
    with contextlib.closing(_open(ns)) as store:
        cache = store.find_cache(ns.cache)
        records = store.flush_log(cache.id, ns.limit)
    rows = [
        (
            format_time(r.at),
            r.source,
            r.username or "-",
            r.peer or "-",
            r.app or "-",
            r.release or "-",
            (r.commit or "-")[:12],
        )
        for r in records
    ]
    header = ("time", "source", "credential", "peer", "app", "release", "commit")
    text = _table(header, rows) if rows else f"No flushes recorded for cache {cache.name}."
    note = _pending_note(ns.data_dir, cache.id)
    if note and not ns.json:
        text = f"{text}\n\n{note}"
    _emit(ns, [flush_json(r) for r in records], text)
    if note and ns.json:
        print(note, file=sys.stderr)  # stdout stays the JSON list
    return 0


def _pending_note(data_dir: Path, cache_id: int) -> str:
    """What the running server holds of the cache's flushes but could not store yet."""
    try:
        reply = adminlink.call(data_dir, "flush_log_pending", cache_id=cache_id)
    except adminlink.AdminLinkError:
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


# -- parser ----------------------------------------------------------------------------------

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


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default="data", help="directory holding the control database"
    )
    common.add_argument("--json", action="store_true", default=False, help="print JSON")
    return common


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run a memcache server (and its HTTP API)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default="11211", help="memcache port")
    serve.add_argument("--api-port", type=_port, default="11280", help="HTTP API port")
    serve.add_argument(
        "--data-dir", type=Path, default="data", help="directory holding the control database"
    )
    serve.add_argument(
        "--memory", type=_size, default="1GB", help="memory for all caches together (0: no bound)"
    )
    serve.add_argument(
        "--anonymous-cache", metavar="NAME", help="cache for clients that do not authenticate"
    )
    serve.add_argument(
        "--log-level", type=_log_level, choices=LOG_LEVELS, default="INFO", help="log level"
    )
    serve.add_argument(
        "--auth-timeout", type=_seconds, default="5.0", help="seconds a client has to authenticate"
    )
    serve.add_argument(
        "--item-size-max",
        type=_positive_size,
        default=format_size(DEFAULT_ITEM_SIZE_MAX),
        help="largest item (key + value)",
    )
    serve.add_argument(
        "--default-plan",
        type=_positive_size,
        default=format_size(DEFAULT_PLAN_BYTES),
        help="plan of caches created without one",
    )
    serve.add_argument(
        "--max-connections", type=_positive_int, default="10000", help="open connections at most"
    )
    serve.add_argument(
        "--api-max-connections",
        type=_positive_int,
        default="1000",
        help="open HTTP API connections at most (more are answered 503 and closed)",
    )
    serve.add_argument(
        "--login-free-failures",
        type=_positive_int,
        default="5",
        help="failed logins a minute per address prefix (/24, /64) before its logins are "
        "slowed; twice as many per username",
    )
    serve.add_argument("--public-host", help="host name to advertise in MEMCACHIER_SERVERS")
    serve.add_argument(
        "--metrics-token",
        help=(
            "bearer token for /metrics (prefer the env variable); without it one is generated"
            " at the first start and kept in DATA_DIR/metrics-token; '' leaves /metrics open"
        ),
    )
    serve.add_argument(
        "--admin-token", help="bearer token for the admin API (prefer the env variable)"
    )
    serve.add_argument(
        "--provision-user", help="add-on id platforms use (Basic auth) on /heroku/resources"
    )
    serve.add_argument("--provision-password", help="add-on API password (prefer the env variable)")
    serve.add_argument("--sso-salt", help="salt of single sign-on tokens (prefer the env variable)")
    serve.add_argument(
        "--plans",
        type=_plans,
        default=",".join(f"{slug}={format_size(size)}" for slug, size in DEFAULT_PLANS),
        help="provisioning plans, name=size pairs separated by commas; name=size:connections=N"
        " sets a plan's connection limit (default: max(20, 10 per MB), at most half of"
        " --max-connections)",
    )
    serve.add_argument(
        "--nodes",
        type=_positive_int,
        default=str(os.cpu_count() or 1),
        help="data-plane processes, on consecutive ports (default: the number of cores)",
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="certificate chain (PEM): memcache over TLS, and the HTTP API over HTTPS",
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        metavar="FILE",
        help="private key (PEM) of --tls-cert (default: in the --tls-cert file)",
    )
    serve.add_argument(
        "--tls-port", type=_port, default="11219", help="memcache-over-TLS port (with --tls-cert)"
    )
    serve.add_argument(
        "--tls-only", action="store_true", default=False, help="close the plain memcache port"
    )
    serve.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require memcache clients to show a certificate signed by this CA (PEM)",
    )
    # Set by the supervisor on the node processes it starts; not for people.
    serve.add_argument("--node-index", type=int, default="0", help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve, leaf=serve)


def build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Self-hostable, multi-tenant memcache service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(commands)

    def leaf(group: Any, name: str, handler: Handler, help_text: str) -> _Parser:
        # A fresh parent each time: parents share their Action objects with every child, and
        # add_env_defaults() rewrites each action once per parser.
        sub: _Parser = group.add_parser(name, parents=[_common()], help=help_text)
        sub.set_defaults(handler=handler, leaf=sub)
        return sub

    cache = commands.add_parser("cache", help="create, list, delete and resize caches")
    cache_cmds = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = leaf(cache_cmds, "create", cmd_cache_create, "create a cache and its primary credential")
    sub.add_argument("name", help="1-64 letters, digits, '_', '.', '-' (not all digits)")
    sub.add_argument("--plan", type=_positive_size, default="25MB", help="cache size")
    leaf(cache_cmds, "list", cmd_cache_list, "list caches")
    sub = leaf(cache_cmds, "delete", cmd_cache_delete, "delete a cache and its credentials")
    sub.add_argument("cache", help="cache name or id")
    sub = leaf(cache_cmds, "resize", cmd_cache_resize, "change a cache's plan")
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("--plan", type=_positive_size, required=True, help="new cache size")

    creds = commands.add_parser("credentials", help="manage a cache's credentials")
    cred_cmds = creds.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = leaf(cred_cmds, "list", cmd_credentials_list, "list a cache's credentials")
    sub.add_argument("cache", help="cache name or id")
    sub = leaf(cred_cmds, "create", cmd_credentials_create, "create a secondary credential")
    sub.epilog = _READ_ONLY_NOTE
    sub.add_argument("cache", help="cache name or id")
    for capability, (meaning, default) in CAPABILITY_HELP.items():
        sub.add_argument(
            f"--{capability}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"{meaning} (default: {default})",
        )
    sub = leaf(cred_cmds, "update", cmd_credentials_update, "change a credential's capabilities")
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
        sub = leaf(cred_cmds, name, handler, help_text)
        sub.add_argument("cache", help="cache name or id")
        sub.add_argument("credential", metavar="USERNAME_OR_ID")

    sub = leaf(commands, "flush", cmd_flush, "flush a cache on the running server")
    sub.add_argument("cache", help="cache name or id")
    sub = leaf(commands, "stats", cmd_stats, "print a cache's stats from the running server")
    sub.add_argument("cache", help="cache name or id")
    sub = leaf(commands, "flush-log", cmd_flush_log, "show a cache's recent flushes, newest first")
    sub.add_argument("cache", help="cache name or id")
    sub.add_argument("--limit", type=_positive_int, default="50", help="flushes to show")

    for sub_parser in _walk(parser):
        sub_parser.add_env_defaults()
    return parser


def _walk(parser: argparse.ArgumentParser) -> list[_Parser]:
    """Every parser that carries options: the leaves (and any others) below `parser`."""
    found: list[_Parser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                if isinstance(sub, _Parser):
                    found.append(sub)
                    found.extend(_walk(sub))
    return found


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    parser = build_parser()
    ns: argparse.Namespace | None = None
    try:
        ns = parser.parse_args(args)
        ns.leaf.resolve(ns, env)
        handler: Handler = ns.handler
        return handler(ns)
    except UsageError as exc:
        return _fail(str(exc), 2)
    except (ControlError, adminlink.AdminLinkError) as exc:
        return _fail(str(exc), 1)
    except sqlite3.Error as exc:
        data_dir = getattr(ns, "data_dir", None)
        note = (
            full_disk_note(data_dir)
            if isinstance(data_dir, Path) and "full" not in str(exc)
            else ""
        )
        return _fail(f"control database: {exc}{note}", 1)
    except BrokenPipeError:
        # The reader went away (`memcloud cache list | head`): nothing left to tell anyone.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit-time flush quiet
        return 1
    except OSError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
