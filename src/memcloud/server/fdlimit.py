"""The open-file limit a node needs, raised at start (RLIMIT_NOFILE, soft up to hard).

Every connection is a file descriptor. With the soft limit distros ship (often 1024), a
node told `--max-connections 10000` would fail `accept()` long before its own limit, and a
crowd of HTTP connections would leave no descriptor for any memcache login. So the soft
limit is raised to fit; where the hard limit does not allow it, the node serves only as many
memcache connections as fit, and its start log says so.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
from typing import Final

from memcloud.config import Settings

__all__ = ["FD_MARGIN", "HTTP_REFUSAL_SLACK", "fit_open_files", "needed_open_files"]

log = logging.getLogger("memcloud")

# Beyond --api-max-connections (the HTTP connections the API keeps open), descriptors for
# the connections it is refusing at that moment (each is accepted, answered 503, closed).
HTTP_REFUSAL_SLACK: Final = 24
# Everything else: listeners, the control store, logs, node sockets, the stats samplers.
FD_MARGIN: Final = 64
# Short of room, what is left after the margin goes 3/4 to memcache, 1/4 to HTTP.
MEMCACHE_SHARE_NUM: Final = 3
MEMCACHE_SHARE_DEN: Final = 4


def needed_open_files(settings: Settings) -> int:
    http = settings.api_max_connections + HTTP_REFUSAL_SLACK
    return settings.max_connections + http + FD_MARGIN


def fit_open_files(settings: Settings) -> Settings:
    """Raise the soft RLIMIT_NOFILE to fit `settings` (never lower it); if the hard limit
    is too low, the settings with the --max-connections this process can honour."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = needed_open_files(settings)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                log.info("open-file limit raised from %d to %d", soft, target)
                soft = target
            except (OSError, ValueError) as exc:
                log.warning("cannot raise the open-file limit from %d: %s", soft, exc)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return settings
    share = max(1, (soft - FD_MARGIN) * MEMCACHE_SHARE_NUM // MEMCACHE_SHARE_DEN)
    honoured = min(settings.max_connections, share)
    if honoured == settings.max_connections:
        log.info("open-file limit is %d: fewer than %d left for HTTP", soft, needed - soft)
        return settings
    log.warning(
        "open-file limit is %d (hard limit %d): serving at most %d memcache connections, "
        "not --max-connections %d; raise the limit (ulimit -n, LimitNOFILE=) to %d",
        soft,
        hard,
        honoured,
        settings.max_connections,
        needed,
    )
    return dataclasses.replace(settings, max_connections=honoured)
