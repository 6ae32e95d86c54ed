"""One log line for a failure that repeats, not a traceback on every attempt.

Background work that writes the control store (the stats sampler, the flush log writer, the
directory poller) meets the same failure again and again once the disk is full or the file
is damaged. `FailureLog` logs the first failure with its cause, then a reminder at most every
`interval` seconds with the count, and one line when it works again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from memcloud.control.base import ControlError

__all__ = ["REMINDER_SECONDS", "FailureLog", "describe", "full_disk_note"]

# A stuck disk is worth a reminder in the log every ten minutes, not every sample.
REMINDER_SECONDS = 600.0


def describe(exc: BaseException) -> str:
    """The cause in words: a store's or the system's own message (a `StoreFailed` names the
    control database), else the error's type and text."""
    if isinstance(exc, ControlError | OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def full_disk_note(directory: Path) -> str:
    """' (the disk holding DIR is full)' when it is, else ''.

    SQLite says `disk I/O error`, not `database or disk is full`, when a full disk keeps it
    from creating its -wal or -shm file at open; this names the cause in that case too.
    """
    try:
        free = os.statvfs(directory).f_bavail
    except OSError:
        return ""
    return f" (the disk holding {directory} is full)" if free == 0 else ""


class FailureLog:
    """The log of one repeating task's failures (not thread-safe: one task, one instance)."""

    def __init__(
        self,
        logger: logging.Logger,
        task: str,
        *,
        interval: float = REMINDER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.task = task
        self.interval = interval
        self.clock = clock
        self.failures = 0
        self._last_logged = 0.0

    def failed(self, exc: BaseException, consequence: str = "") -> None:
        self.failures += 1
        now = self.clock()
        tail = f"; {consequence}" if consequence else ""
        if self.failures == 1:
            # A failure of our own code (not the database, not the disk) keeps its traceback,
            # once, so it can be fixed.
            expected = isinstance(exc, ControlError | OSError)
            self.logger.error(
                "%s failed: %s%s (logged again every %d s while it lasts)",
                self.task,
                describe(exc),
                tail,
                int(self.interval),
                exc_info=None if expected else exc,
            )
            self._last_logged = now
        elif now - self._last_logged >= self.interval:
            self.logger.error(
                "%s still failing (%d times so far): %s%s",
                self.task,
                self.failures,
                describe(exc),
                tail,
            )
            self._last_logged = now

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning("%s works again after %d failures", self.task, self.failures)
            self.failures = 0

    async def attempt(self, work: Callable[[], Awaitable[object]], consequence: str = "") -> bool:
        """One round of a repeated task (a sampler's or an alert runner's tick): a failure is
        logged as `failed` and the task goes on, a success as `succeeded`; cancellation is no
        Exception and passes through. True if the round succeeded."""
        try:
            await work()
        except Exception as exc:
            self.failed(exc, consequence)
            return False
        self.succeeded()
        return True
