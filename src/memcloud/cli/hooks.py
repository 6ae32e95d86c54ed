"""`memcloud hook create|list|revoke CACHE`: a cache's deploy-hook tokens, in the control
store (as `credentials` are). A token is printed once, at creation, with the URL a deploy
tool POSTs to: on the running server's API (its data dir's server.json) unless --api-url
names the public one."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

from memcloud.api.insight import format_time
from memcloud.api.record_json import hook_json
from memcloud.cli.datadir import NoDataDir, data_dir_of, open_store_of
from memcloud.cli.env import Parser
from memcloud.cli.manage import Handler, common_options
from memcloud.cli.output import emit, table
from memcloud.control.hook_records import HookRecord
from memcloud.control.hooks import HOOK_PATH, hook_url
from memcloud.locate import SERVER_INFO_FILENAME

__all__ = ["add_hook_commands"]

# Hosts a server binds to that no client can reach it at.
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def _api_base(ns: argparse.Namespace) -> str | None:
    """--api-url, else the running server's API as its server.json says (None: unknown)."""
    if ns.api_url:
        return str(ns.api_url)
    try:
        info = json.loads((data_dir_of(ns) / SERVER_INFO_FILENAME).read_text())
    except (NoDataDir, OSError, ValueError):
        return None
    host, port = str(info.get("host") or ""), info.get("api_port")
    if not isinstance(port, int) or host in _WILDCARDS:
        return None
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _rows(records: list[HookRecord]) -> list[tuple[object, ...]]:
    return [
        (
            r.id,
            r.name or "-",
            r.prefix or "(all)",
            r.hint + "...",
            format_time(r.created_at),
            format_time(r.last_used_at) if r.last_used_at is not None else "never",
            "revoked" if r.revoked else "active",
        )
        for r in records
    ]


_HEADER = ("id", "name", "prefix", "token", "created", "last used", "state")


def cmd_hook_create(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        new = store.create_hook(cache.id, name=ns.name, prefix=ns.prefix, now=time.time())
    base = _api_base(ns)
    path = HOOK_PATH.format(token=new.token)
    url = hook_url(base, new.token) if base else None
    where = url or f"<your memcloud API URL>{path}"
    text = (
        f"Created deploy hook {new.record.id} for cache {cache.name}"
        f"{f' (only keys starting with {new.record.prefix!r})' if new.record.prefix else ''}.\n\n"
        f"Token (shown only now, store it safely):\n  {new.token}\n\n"
        f"Flush URL (POST; it carries no credential, so rotating credentials keeps it"
        f" working):\n  {where}\n\n"
        "GitHub: use it as the webhook's Payload URL and the token as its Secret.\n"
        "GitLab: use it as the webhook's URL and the token as its Secret token."
    )
    data: dict[str, Any] = {**hook_json(new.record), "token": new.token, "url": url, "path": path}
    emit(ns, data, text)
    return 0


def cmd_hook_list(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        records = store.list_hooks(cache.id)
    text = table(_HEADER, _rows(records)) if records else f"No deploy hooks for cache {cache.name}."
    emit(ns, [hook_json(r) for r in records], text)
    return 0


def cmd_hook_revoke(ns: argparse.Namespace) -> int:
    with contextlib.closing(open_store_of(ns)) as store:
        cache = store.find_cache(ns.cache)
        record = store.revoke_hook(cache.id, ns.hook, time.time())
    text = f"Revoked deploy hook {record.id} of cache {cache.name}: its URL no longer flushes."
    emit(ns, hook_json(record), text)
    return 0


def _leaf(group: Any, name: str, handler: Handler, help_text: str) -> Parser:
    sub: Parser = group.add_parser(name, parents=[common_options()], help=help_text)
    sub.set_defaults(handler=handler, leaf=sub)
    sub.add_argument("cache", help="cache name or id")
    return sub


def _hook_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"invalid hook id {text!r}: use the id `hook list` shows")
    return int(text)


def add_hook_commands(commands: Any) -> None:
    hook = commands.add_parser(
        "hook", help="deploy-hook tokens: flush-only URLs that survive credential rotation"
    )
    hook_cmds = hook.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = _leaf(hook_cmds, "create", cmd_hook_create, "make a token (printed only now)")
    sub.add_argument("--name", default="", help="a label, e.g. the pipeline's name")
    sub.add_argument("--prefix", default="", help="flush only keys starting with this")
    sub.add_argument(
        "--api-url", default=None, help="the API's public base URL, for the printed hook URL"
    )
    _leaf(hook_cmds, "list", cmd_hook_list, "list a cache's tokens (never the tokens)")
    sub = _leaf(hook_cmds, "revoke", cmd_hook_revoke, "revoke a token: its URL stops flushing")
    sub.add_argument("hook", type=_hook_id, metavar="HOOK_ID")
