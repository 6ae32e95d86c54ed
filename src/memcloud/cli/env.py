"""The CLI's parser: errors as one line, and each option falling back to its `MEMCLOUD_*`
environment variable (`--data-dir` is `MEMCLOUD_DATA_DIR`). A flag on the command line wins
over its variable; an empty variable counts as unset."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

__all__ = ["ENV_PREFIX", "Parser", "UsageError", "argument_type", "env_name", "parse_bool"]

ENV_PREFIX = "MEMCLOUD_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class _Unset:
    """Marks an option not given on the command line, so the environment may fill it."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class UsageError(Exception):
    """A mistake in how the command was called (exit status 2)."""


def env_name(dest: str) -> str:
    """The environment variable of an option: `data_dir` is MEMCLOUD_DATA_DIR."""
    return f"{ENV_PREFIX}{dest.upper()}"


def argument_type(parse: Callable[[str], object]) -> Callable[[str], Any]:
    """An argparse `type` for a value parser: its ValueError's message becomes the error
    ("argument --port: not a port number: 'x'"). A type (Path, int, str) is used as it is,
    with argparse's own message."""
    if isinstance(parse, type):
        return parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


class Parser(argparse.ArgumentParser):
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
            note = f"env {env_name(action.dest)}"
            if action.nargs != 0 and self.real_defaults[action.dest] is not None:
                note += f"; default {self.real_defaults[action.dest]}"
            if action.help != argparse.SUPPRESS:
                action.help = f"{action.help or ''} [{note}]".strip()

    def resolve(self, ns: argparse.Namespace, environ: Mapping[str, str]) -> None:
        """Fill every option left _UNSET from the environment, else from its default."""
        for action in self._actions:
            if action.dest not in self.real_defaults or getattr(ns, action.dest) is not _UNSET:
                continue
            name = env_name(action.dest)
            raw = environ.get(name, "")
            if raw == "":
                value = self.real_defaults[action.dest]
                if isinstance(value, str) and action.type is not None:
                    value = self._convert(action, value, action.option_strings[0])
            elif action.nargs == 0:
                value = parse_bool(raw, name)
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


def parse_bool(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise UsageError(f"{name}: expected a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")
