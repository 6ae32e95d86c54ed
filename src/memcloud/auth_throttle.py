"""Slowing down password guessing: failed authentications are counted per client address,
and past a threshold every further attempt from that address is answered late.

The rule (documented in docs/protocol-compat.md):

* Failures are remembered per IP address for FAILURE_WINDOW seconds.
* With fewer than FREE_FAILURES failures in the window, nothing is delayed.
* From then on, every authentication answer to that address (success or failure, so the
  delay says nothing about the password) waits BASE_DELAY * 2 ** (failures - FREE_FAILURES)
  seconds, at most MAX_DELAY.
* Attempts from one address are queued behind each other: an address may have at most one
  password checked per delay interval, however many connections it opens. An attempt that
  would wait more than MAX_QUEUE_WAIT is answered "auth failure" after MAX_QUEUE_WAIT without
  its password being checked.

The delay is applied by the connection (it stops reading and answers via call_later), so
the event loop and every other client go on at full speed.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import NamedTuple

__all__ = [
    "BASE_DELAY",
    "FAILURE_WINDOW",
    "FREE_FAILURES",
    "MAX_DELAY",
    "MAX_QUEUE_WAIT",
    "MAX_TRACKED_ADDRESSES",
    "Admission",
    "AuthThrottle",
    "address_of",
]

FAILURE_WINDOW = 60.0
FREE_FAILURES = 5
BASE_DELAY = 0.25
MAX_DELAY = 4.0
# Below the default 5 s authentication timeout, so a queued honest client still gets its
# answer before the connection is closed for not authenticating.
MAX_QUEUE_WAIT = 4.5
# Bounds the memory an attacker with many addresses can make us spend (oldest forgotten).
MAX_TRACKED_ADDRESSES = 65_536
# Failures remembered per address: past this the delay is at its cap anyway.
_MAX_FAILURES_KEPT = 64


class Admission(NamedTuple):
    delay: float  # seconds to hold the answer
    check: bool  # False: refuse without checking the password (queue full)


_FREE = Admission(0.0, True)


class _Record:
    __slots__ = ("failures", "next_slot")

    def __init__(self) -> None:
        self.failures: deque[float] = deque(maxlen=_MAX_FAILURES_KEPT)
        self.next_slot = 0.0


class AuthThrottle:
    def __init__(self) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def _live_failures(self, record: _Record, now: float) -> int:
        failures = record.failures
        while failures and failures[0] <= now - FAILURE_WINDOW:
            failures.popleft()
        return len(failures)

    def admit(self, address: str, now: float) -> Admission:
        """How to answer the next authentication attempt from `address`."""
        record = self._records.get(address)
        if record is None:
            return _FREE
        count = self._live_failures(record, now)
        if count < FREE_FAILURES:
            if not count:
                del self._records[address]
            return _FREE
        step = min(BASE_DELAY * 2 ** (count - FREE_FAILURES), MAX_DELAY)
        slot = max(now, record.next_slot) + step
        if slot - now > MAX_QUEUE_WAIT:
            return Admission(MAX_QUEUE_WAIT, False)
        record.next_slot = slot
        return Admission(slot - now, True)

    def failed(self, address: str, now: float) -> None:
        records = self._records
        record = records.get(address)
        if record is None:
            record = records[address] = _Record()
            if len(records) > MAX_TRACKED_ADDRESSES:
                records.popitem(last=False)
        else:
            records.move_to_end(address)
        record.failures.append(now)

    def clear(self) -> None:
        """Forget every address (operators after an incident; tests between scenarios)."""
        self._records.clear()

    def failures(self, address: str, now: float) -> int:
        record = self._records.get(address)
        return 0 if record is None else self._live_failures(record, now)


def address_of(peer: str) -> str:
    """The IP address part of a session's `host:port` peer string."""
    host, sep, _ = peer.rpartition(":")
    return host if sep else peer
