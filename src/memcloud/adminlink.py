"""The operator channel between the CLI and a running server: JSON lines on a Unix socket.

The socket lives in the data directory (mode 0600), so whoever may read the data directory may
flush caches and read their stats; nobody else can reach it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

__all__ = ["SOCKET_NAME", "AdminLinkError", "call", "socket_path"]

SOCKET_NAME = "control.sock"
# A reply larger than this is a broken server, not a stats answer.
MAX_REPLY_BYTES = 4 * 1024 * 1024
TIMEOUT_SECONDS = 10.0


class AdminLinkError(Exception):
    """No running server answered, or it refused the request; the message is for the user."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def call(data_dir: Path, op: str, **args: Any) -> dict[str, Any]:
    """Send one request to the server running on `data_dir` and return its answer."""
    path = socket_path(data_dir)
    if not path.exists():
        raise AdminLinkError(f"no running memcloud server found for data dir {data_dir}")
    request = json.dumps({"op": op, **args}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(str(path))
            sock.sendall(request)
            chunks: list[bytes] = []
            size = 0
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise AdminLinkError("the server's answer is too large")
    except OSError as exc:
        raise AdminLinkError(
            f"cannot reach the memcloud server for data dir {data_dir}: {exc}"
        ) from exc
    try:
        reply: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise AdminLinkError("the server's answer was not understood") from exc
    if not reply.get("ok"):
        raise AdminLinkError(str(reply.get("error", "the server refused the request")))
    return reply
