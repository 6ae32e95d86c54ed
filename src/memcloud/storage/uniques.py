"""The numbers every item carries: CAS uniques (one counter per node process, in this node's
stripe of a cluster) and memcached's rule that turns a command's exptime into an absolute
time."""

from __future__ import annotations

import itertools
from typing import Final

__all__ = [
    "CAS_STRIDE",
    "MAX_RELATIVE_EXPTIME",
    "absolute_exptime",
    "continue_cas_above",
    "next_cas",
    "stripe_cas",
]

# memcached: an exptime above 30 days is an absolute Unix time, not an offset.
MAX_RELATIVE_EXPTIME: Final = 60 * 60 * 24 * 30
# CAS uniques: one counter per node process. In a cluster every node counts in its own
# stripe (`stripe_cas`), so that no two nodes ever hand out the same unique: a key whose
# owner changed (a node died) never matches a CAS its old owner gave.
CAS_STRIDE: Final = 1024
_cas_counter = itertools.count(1)
_next_cas = _cas_counter.__next__
_cas_slot, _cas_stride = 0, 1  # this node's stripe, once it has one (stripe_cas)


def _count_cas_above(above: int) -> None:
    """Count on from the first unique of this node's stripe above `above`."""
    global _cas_counter, _next_cas
    start = (above // _cas_stride + 1) * _cas_stride + _cas_slot
    _cas_counter = itertools.count(start, _cas_stride)
    _next_cas = _cas_counter.__next__


def stripe_cas(node_id: int) -> None:
    """Count CAS uniques from now on in stripe `node_id % CAS_STRIDE`, above every unique
    handed out so far (the node registry's ids are unique per deployment)."""
    global _cas_slot, _cas_stride
    last = next(_cas_counter)
    _cas_slot, _cas_stride = node_id % CAS_STRIDE, CAS_STRIDE
    _count_cas_above(last)


def next_cas() -> int:
    """The next CAS unique (stripe_cas and continue_cas_above rebind this module's counter,
    so no other module may keep a reference to `_next_cas` itself)."""
    return _next_cas()


def continue_cas_above(cas: int) -> None:
    """Make every CAS unique given from now on greater than `cas`: a warm restart
    (storage/snapshot.py) brings items back with their saved CAS, which must stay unique."""
    _count_cas_above(max(cas, next(_cas_counter)))


def absolute_exptime(exptime: int, now: float) -> float:
    """memcached's exptime rule: 0 never, negative already expired, <= 30 days relative."""
    if exptime == 0:
        return 0.0
    if exptime < 0:
        return -1.0
    if exptime <= MAX_RELATIVE_EXPTIME:
        return now + exptime
    return float(exptime)
