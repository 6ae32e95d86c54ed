"""Dropping the keys a node no longer holds once its cluster changed (a node joined, left or
came back): the ring gave them to another node, and a copy left here would be read again,
stale, if the key ever came back to this node (the node that took it over may have changed
it since). A slice at a time, from the node's upkeep, so no read waits for a whole cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from memcloud.routing import Route
from memcloud.storage.registry import Registry

__all__ = ["SWEEP_SLICE", "UnownedSweep"]

# Keys checked per upkeep step (a few milliseconds of the loop).
SWEEP_SLICE: Final = 5000


class UnownedSweep:
    """The caches whose keys are checked against the current route, and the keys left to
    check in each (None: not started)."""

    def __init__(self) -> None:
        self._left: dict[int, list[bytes] | None] = {}

    def restart(self, route: Route | None, cache_ids: Iterable[int]) -> None:
        """A new route: every cache is checked again (none without a cluster)."""
        self._left = {} if route is None else dict.fromkeys(cache_ids)

    @property
    def busy(self) -> bool:
        return bool(self._left)

    def step(
        self, registry: Registry, route: Route | None, copies_of: Callable[[int], int]
    ) -> None:
        """Check up to SWEEP_SLICE keys of the first cache left, dropping those `route`
        places on other nodes (`copies_of`: the copies each key of a cache has)."""
        if not self._left or route is None:
            return
        cache_id, keys = next(iter(self._left.items()))
        cache = registry.get(cache_id)
        if cache is None:
            del self._left[cache_id]
            return
        if keys is None:
            keys = self._left[cache_id] = list(cache.items)
        batch = keys[-SWEEP_SLICE:]
        del keys[-SWEEP_SLICE:]
        copies, local = copies_of(cache_id), route.local
        for key in batch:
            if copies == 1:
                if route.owner(cache_id, key) != local:
                    cache.discard(key)
            elif local not in route.ring.owners(cache_id, key, copies):
                cache.discard(key)
        if not keys:
            del self._left[cache_id]
