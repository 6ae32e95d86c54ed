"""The `memcloud` command: run a server, manage caches and credentials, flush, read stats.

Every option can also come from the environment as `MEMCLOUD_<OPTION>` (`--data-dir` is
`MEMCLOUD_DATA_DIR`); a flag on the command line wins. Errors are one line on stderr, exit
status 2 for usage mistakes and 1 for everything else.

`serve` (cli/serve.py) takes its flags from config.Settings; the management commands are in
cli/manage.py and print through cli/output.py; cli/env.py is the parser and its environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from memcloud import __version__, adminlink
from memcloud.cli.cluster import add_cluster_commands
from memcloud.cli.datadir import NoDataDir
from memcloud.cli.env import ENV_PREFIX, Parser, UsageError
from memcloud.cli.hooks import add_hook_commands
from memcloud.cli.manage import Handler, add_manage_commands
from memcloud.cli.secret import add_secret_command
from memcloud.cli.serve import add_serve_command
from memcloud.control.base import ControlError

__all__ = ["ENV_PREFIX", "build_parser", "main"]

PROG = "memcloud"


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Self-hostable, multi-tenant memcache service.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_manage_commands(commands)
    add_hook_commands(commands)
    add_cluster_commands(commands)
    add_secret_command(commands)
    for sub_parser in _walk(parser):
        sub_parser.add_env_defaults()
    return parser


def _walk(parser: argparse.ArgumentParser) -> list[Parser]:
    """Every parser that carries options: the leaves (and any others) below `parser`."""
    found: list[Parser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                if isinstance(sub, Parser):
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
    try:
        ns = parser.parse_args(args)
        ns.leaf.resolve(ns, env)
        handler: Handler = ns.handler
        return handler(ns)
    except UsageError as exc:
        return _fail(str(exc), 2)
    except (ControlError, adminlink.AdminLinkError, NoDataDir) as exc:
        return _fail(str(exc), 1)
    except BrokenPipeError:
        # The reader went away (`memcloud cache list | head`): nothing left to tell anyone.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit-time flush quiet
        return 1
    except OSError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
