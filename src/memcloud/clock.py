"""Time, injected: the server uses the wall clock, tests advance a fake one instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (memcached's absolute exptimes are Unix times)."""
        ...


class SystemClock:
    __slots__ = ()

    # The builtin itself, not a method wrapping it: read once per request on the hot path.
    now = staticmethod(time.time)


class FakeClock:
    """A clock that moves only when told to."""

    __slots__ = ("current",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.current = start

    def now(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds
