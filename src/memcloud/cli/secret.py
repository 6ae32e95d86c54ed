"""`memcloud cluster-secret`: print a fresh cluster secret (256 random bits as hex), to set
as MEMCLOUD_CLUSTER_SECRET on every machine of a deployment (docs/cluster-security.md)."""

from __future__ import annotations

import argparse
from typing import Any

from memcloud.cli.manage import Handler
from memcloud.cluster.secrets import generate_secret

__all__ = ["add_secret_command"]


def cmd_cluster_secret(ns: argparse.Namespace) -> int:
    print(generate_secret())
    return 0


def add_secret_command(commands: Any) -> None:
    sub = commands.add_parser(
        "cluster-secret",
        help="print a fresh cluster secret for MEMCLOUD_CLUSTER_SECRET",
        description=(
            "Prints 256 random bits as 64 hex digits. Give the same value to every machine"
            " of a deployment as MEMCLOUD_CLUSTER_SECRET (or --cluster-secret @FILE); to"
            " rotate it, follow docs/cluster-security.md."
        ),
    )
    handler: Handler = cmd_cluster_secret
    sub.set_defaults(handler=handler, leaf=sub)
