"""The flush log's HTTP headers: what the nodes hold because the store has not taken it yet.

The writer itself is `memcloud.control.audit.FlushAuditor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memcloud.api.insight import format_time

__all__ = ["PENDING_HEADER", "PENDING_SINCE_HEADER", "pending_headers"]

# `GET .../flush_log` says in these headers what waits to be written (the body stays a list).
PENDING_HEADER = "Memcloud-Flush-Log-Pending"
PENDING_SINCE_HEADER = "Memcloud-Flush-Log-Pending-Since"


def pending_headers(pending: Mapping[str, Any]) -> dict[str, str]:
    """The flush log's headers from `Deployment.flush_log_pending`'s answer: how many of the
    cache's flushes wait to be written, and the oldest one's time."""
    headers = {PENDING_HEADER: str(int(pending["pending"]))}
    if pending["since"] is not None:
        headers[PENDING_SINCE_HEADER] = format_time(float(pending["since"]))
    return headers
