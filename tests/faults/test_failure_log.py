"""FailureLog: a repeating failure is one line, a reminder per interval, and one line at its end."""

from __future__ import annotations

import logging

import pytest

from memcloud.control.base import StoreFailed
from memcloud.control.failures import FailureLog


def test_repeating_failure_is_logged_once_then_reminded_then_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    logger = logging.getLogger("memcloud.test-failures")
    failures = FailureLog(logger, "sampling stats", interval=600, clock=lambda: now[0])
    full = StoreFailed("database or disk is full")
    with caplog.at_level(logging.INFO, logger="memcloud.test-failures"):
        for _ in range(100):  # a sample a second for 100 s
            failures.failed(full, "the history has a gap")
            now[0] += 1
        now[0] += 600
        failures.failed(full)
        failures.succeeded()
        failures.succeeded()  # nothing more to say
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "sampling stats failed: control database: database or disk is full; the history"
            " has a gap (logged again every 600 s while it lasts)",
        ),
        (
            "ERROR",
            "sampling stats still failing (101 times so far): control database: database or"
            " disk is full",
        ),
        ("WARNING", "sampling stats works again after 101 failures"),
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_an_unexpected_error_keeps_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("memcloud.test-failures")
    failures = FailureLog(logger, "sampling stats", clock=lambda: 0.0)
    with caplog.at_level(logging.ERROR, logger="memcloud.test-failures"):
        for _ in range(3):
            try:
                raise KeyError("curr_items")
            except KeyError as exc:
                failures.failed(exc)
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.getMessage().startswith("sampling stats failed: KeyError: 'curr_items'")
    assert record.exc_info is not None
