"""The cluster secret: what every node of one deployment shares, and from which the
node-to-node channel's mutual TLS is derived (memcloud.cluster.identity).

`--cluster-secret` (`MEMCLOUD_CLUSTER_SECRET`) is a value or `@/path/to/file`;
`--cluster-secret-previous` lists secrets still accepted from peers during a rotation
(docs/cluster-security.md). Without a secret, one machine (SQLite control store) generates
one into `<data-dir>/cluster-secret` (mode 0600) and reuses it; a deployment over machines
(`--control-url`) refuses to start, since its machines could never agree on a generated one.

A secret is refused unless it carries at least 256 bits by a generous estimate: each
character counts log2 of the smallest usual alphabet holding all of them (hex 4 bits, base64
6, printable ASCII 6.5, anything else 8), and it must use at least 10 distinct characters
(so `aaaa…` or `abab…` never passes). Secrets are never logged and have a masked repr.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from memcloud.config import Settings

__all__ = [
    "MIN_SECRET_BITS",
    "SECRET_FILENAME",
    "ClusterSecretError",
    "ClusterSecrets",
    "check_secret",
    "cluster_secrets",
    "generate_secret",
]

# What the channel's keys are derived from: as strong as the P-256 keys themselves (128-bit
# security) with room to spare, and what `memcloud cluster-secret` prints (256 random bits).
MIN_SECRET_BITS: Final = 256
# A generated or typed secret of 256 random bits uses far more distinct characters than
# this (64 hex digits all but always use 14 or more of their 16).
MIN_DISTINCT: Final = 10
# A secret file is a few dozen bytes: anything much larger is the wrong file.
MAX_SECRET_FILE: Final = 4096
SECRET_FILENAME: Final = "cluster-secret"

_HEX: Final = frozenset(string.hexdigits)
_BASE64: Final = frozenset(string.ascii_letters + string.digits + "+/=-_")
_PRINTABLE: Final = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")

_HOW: Final = (
    "use 256 random bits, such as the output of `memcloud cluster-secret` "
    "(or `openssl rand -hex 32`)"
)


class ClusterSecretError(OSError):
    """A cluster secret that cannot be used; the message says why in one line (and never
    contains the secret)."""


@dataclass(frozen=True, slots=True, repr=False)
class ClusterSecrets:
    """The secret this node presents (`current`) and the others it still accepts from its
    peers during a rotation (`previous`)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def trusted(self) -> tuple[bytes, ...]:
        """Every secret whose nodes this node accepts: the current one first."""
        return (self.current, *self.previous)

    def __repr__(self) -> str:
        return f"ClusterSecrets(current=<secret>, previous=<{len(self.previous)} secrets>)"


def generate_secret() -> str:
    """A fresh secret: 256 random bits as 64 hex digits."""
    return secrets.token_hex(MIN_SECRET_BITS // 8)


def _bits_per_character(secret: bytes) -> float:
    chars = frozenset(chr(b) for b in secret)
    if chars <= _HEX:
        return 4.0
    if chars <= _BASE64:
        return 6.0
    if chars <= _PRINTABLE:
        return math.log2(len(_PRINTABLE))
    return 8.0


def check_secret(secret: bytes, what: str) -> bytes:
    """`secret` if it is strong enough, else a ClusterSecretError naming `what`."""
    bits = len(secret) * _bits_per_character(secret)
    if bits < MIN_SECRET_BITS or len(set(secret)) < MIN_DISTINCT:
        raise ClusterSecretError(
            f"{what} is too weak: it needs at least {MIN_SECRET_BITS} bits of entropy; {_HOW}"
        )
    return secret


def _read_file(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ClusterSecretError(f"{what} file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_FILE:
        raise ClusterSecretError(f"{what} file {path}: larger than {MAX_SECRET_FILE} bytes")
    # A file written by `echo` or an editor ends in a newline that is no part of the secret.
    return data.strip()


def _resolve(given: str, what: str) -> bytes:
    """The bytes of a given secret: the value itself, or the content of `@FILE`."""
    text = given.strip()
    secret = _read_file(Path(text[1:]), what) if text.startswith("@") else text.encode()
    return check_secret(secret, what)


def _kept_secret(data_dir: Path) -> bytes:
    """The secret kept in `<data-dir>/cluster-secret`, written there first if there is none.

    Written to a private temporary file and linked into place, so that nodes starting at
    the same moment agree on one secret and none ever reads a half-written file.
    """
    path = data_dir / SECRET_FILENAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{SECRET_FILENAME}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_secret() + "\n")
            # FileExistsError: another node of this machine made it first; use that one.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return check_secret(_read_file(path, "the cluster secret"), f"the cluster secret in {path}")


def cluster_secrets(settings: Settings, data_dir: Path) -> ClusterSecrets:
    """This node's cluster secrets, by the rule of the module's docstring; a
    ClusterSecretError (one line) when they cannot be used."""
    if settings.cluster_secret:
        current = _resolve(settings.cluster_secret, "--cluster-secret (MEMCLOUD_CLUSTER_SECRET)")
    elif settings.control_url is None:
        current = _kept_secret(data_dir)
    else:
        raise ClusterSecretError(
            "a deployment over machines (--control-url) needs a cluster secret: set"
            " MEMCLOUD_CLUSTER_SECRET to the same value on every machine (`memcloud"
            " cluster-secret` prints a fresh one)"
        )
    previous: dict[bytes, None] = {}
    for number, given in enumerate(settings.cluster_secret_previous, 1):
        secret = _resolve(given, f"--cluster-secret-previous (secret {number})")
        if secret != current:
            previous[secret] = None
    return ClusterSecrets(current, tuple(previous))
