"""`memcloud serve`: its flags are the Settings fields that are options (config.Settings,
memcloud.options.Option); each also comes from its `MEMCLOUD_*` variable.

A node process that a supervisor starts gets its settings whole, as JSON in
MEMCLOUD_NODE_SETTINGS (config.NODE_SETTINGS_ENV), not as flags.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import Field
from typing import Any

from memcloud.cli.env import ENV_PREFIX, UsageError, argument_type
from memcloud.config import NODE_SETTINGS_ENV, Settings, settings_options, split_advertise
from memcloud.control.base import ControlError
from memcloud.options import Option, field_default, option_default

__all__ = ["NODE_SETTINGS", "add_serve_command", "cmd_serve", "flag_name", "settings_from"]

# The hidden option whose variable is NODE_SETTINGS_ENV: `node_settings`.
NODE_SETTINGS = NODE_SETTINGS_ENV.removeprefix(ENV_PREFIX).lower()


def flag_name(field_name: str) -> str:
    """The flag of a Settings field: `data_dir` is --data-dir."""
    return "--" + field_name.replace("_", "-")


def _argument(f: Field[Any], option: Option) -> dict[str, Any]:
    """add_argument()'s keywords for one Settings field."""
    how: dict[str, Any] = {"help": argparse.SUPPRESS if option.hidden else option.help}
    default = field_default(f)
    if isinstance(default, bool):
        # A switch that is on by default is turned off with --no-<name> (--no-warm-restart).
        action = argparse.BooleanOptionalAction if default else "store_true"
        how.update(action=action, default=default)
    else:
        how.update(type=argument_type(option.parse), default=option_default(f, option))
    if option.metavar is not None:
        how["metavar"] = option.metavar
    if option.choices is not None:
        how["choices"] = option.choices
    return how


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run a memcache server (and its HTTP API)")
    for f, option in settings_options():
        serve.add_argument(flag_name(f.name), **_argument(f, option))
    # Set by the supervisor, in the environment of the node processes it starts: the node's
    # Settings as JSON, which then stand for every other option. Not for people.
    serve.add_argument(
        flag_name(NODE_SETTINGS), type=argument_type(Settings.from_json), help=argparse.SUPPRESS
    )
    serve.set_defaults(handler=cmd_serve, leaf=serve)


def settings_from(ns: argparse.Namespace) -> Settings:
    """The Settings of a parsed (and resolved) `serve` command line."""
    node: Settings | None = getattr(ns, NODE_SETTINGS)
    return node if node is not None else Settings.from_options(vars(ns))


def cmd_serve(ns: argparse.Namespace) -> int:
    settings = settings_from(ns)
    _check_tls(settings)
    _check_advertise(settings)
    # Imported here so that management commands never load the server (and uvloop).
    try:
        runner = importlib.import_module("memcloud.server.runner")
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("memcloud.server"):
            raise
        raise ControlError("this memcloud build has no server (memcloud.server.runner)") from None
    run: Callable[[Settings], int] = runner.run
    return run(settings)


def _check_advertise(settings: Settings) -> None:
    """--advertise's ports are consecutive like --nodes' own: the last must still be one."""
    if settings.advertise is None:
        return
    _, port = split_advertise(settings.advertise)
    last = port + settings.nodes - 1
    if last > 65535:
        raise UsageError(
            f"--advertise {settings.advertise} with --nodes {settings.nodes} would advertise"
            f" port {last} (node i advertises PORT+i); give a lower port"
        )


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
