"""How a setting is spelled outside the process: a Settings field's `Option` metadata (help,
parser, default text of its `memcloud serve` flag and `MEMCLOUD_*` variable), the parsers
of option values, and the JSON form of a settings field's value (for child node processes).

Below `config`: it knows no field, only how fields are described.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "OPTION",
    "SECRET",
    "Option",
    "field_default",
    "masked_repr",
    "option_default",
    "options_of",
    "parse_port",
    "parse_positive_int",
    "parse_seconds",
    "serve_option",
    "value_from_json",
    "value_to_json",
]

# The keys of a field's metadata: its Option (it is a `memcloud serve` option), and whether
# its value is a secret (repr shows only that it is set).
OPTION = "memcloud.option"
SECRET = "memcloud.secret"
MASK = "<secret>"


@dataclass(frozen=True, slots=True)
class Option:
    """How one settings field is given to `memcloud serve`: as the flag `--<field-name>`
    (dashes for underscores) and as the variable `MEMCLOUD_<FIELD_NAME>`. The README's
    options table lists the same (tests/test_cli_settings.py holds them to it)."""

    help: str
    # Text to value; a ValueError's message is the error the user reads. A type (Path, int)
    # keeps argparse's own message.
    parse: Callable[[str], object] = str
    # The field's default as the flag's default text (what --help shows and parse reads).
    show: Callable[[Any], str] = str
    # The flag's default text when it is not the field's (--nodes: the number of cores).
    default: Callable[[], str] | None = None
    # The README's default when it is words, not a value ("off", "cores").
    words: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    hidden: bool = False
    # The fields one parsed value sets, when it sets more than its own (--plans).
    spread: Callable[[Any], dict[str, object]] | None = None


def serve_option(help: str, *, secret: bool = False, **how: Any) -> dict[str, object]:
    """A field's metadata: its Option, and whether its value is a secret."""
    return {OPTION: Option(help, **how), SECRET: secret}


def options_of(cls: type) -> tuple[tuple[Field[Any], Option], ...]:
    """The fields of a settings dataclass that are options, in the order --help lists them."""
    return tuple((f, f.metadata[OPTION]) for f in fields(cls) if OPTION in f.metadata)


def field_default(f: Field[Any]) -> Any:
    """A field's default value (None if it has none)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def option_default(f: Field[Any], option: Option) -> str | None:
    """An option's default as text (None: no default value, e.g. an optional path)."""
    if option.default is not None:
        return option.default()
    value = field_default(f)
    return None if value is None else option.show(value)


def masked_repr(settings: DataclassInstance) -> str:
    """A dataclass's repr in which a secret shows that it is set, never what it is."""
    shown = (
        f"{f.name}={MASK if f.metadata.get(SECRET) and value else repr(value)}"
        for f in fields(settings)
        for value in (getattr(settings, f.name),)
    )
    return f"{type(settings).__name__}({', '.join(shown)})"


# -- option values (their messages end up after "argument --x:" or "MEMCLOUD_X:") -----------


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {text!r}")
    return port


def parse_positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if number <= 0:
        raise ValueError(f"must be greater than zero: {text!r}")
    return number


def parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not seconds > 0:
        raise ValueError(f"must be greater than zero: {text!r}")
    return seconds


# -- JSON ------------------------------------------------------------------------------------


def value_to_json(value: object) -> object:
    """A field's value as JSON has it: a Path as its text, a tuple as a list."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [value_to_json(item) for item in value]
    return value


def value_from_json(hint: Any, value: object) -> object:
    """`value` read from JSON as the annotation `hint` says (Path, tuples, X | None); a
    ValueError if it is not of that type."""
    if value is None:
        return None
    origin, args = get_origin(hint), get_args(hint)
    if origin is UnionType or origin is Union:
        [inner] = [arg for arg in args if arg is not type(None)]
        return value_from_json(inner, value)
    if hint is Path:
        if not isinstance(value, str):
            raise ValueError(f"expected a path, got {value!r}")
        return Path(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(value_from_json(args[0], item) for item in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items, got {value!r}")
        return tuple(value_from_json(arg, item) for arg, item in zip(args, value, strict=True))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"expected {hint.__name__}, got {value!r}")
    return value
