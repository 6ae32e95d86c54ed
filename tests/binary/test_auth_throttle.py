from __future__ import annotations

from memcloud.auth_throttle import (
    BASE_DELAY,
    FAILURE_WINDOW,
    FREE_FAILURES,
    MAX_DELAY,
    MAX_QUEUE_WAIT,
    AuthThrottle,
    address_of,
)


def test_no_delay_below_the_threshold() -> None:
    throttle = AuthThrottle()
    for i in range(FREE_FAILURES - 1):
        assert throttle.admit("10.0.0.1", 100.0 + i) == (0.0, True)
        throttle.failed("10.0.0.1", 100.0 + i)
    assert throttle.admit("10.0.0.1", 110.0) == (0.0, True)


def test_exponential_backoff_capped() -> None:
    throttle = AuthThrottle()
    now = 1000.0
    for _ in range(FREE_FAILURES):
        throttle.failed("10.0.0.1", now)
    assert throttle.admit("10.0.0.1", now).delay == BASE_DELAY
    assert throttle.admit("10.0.1.2", now) == (0.0, True)  # another /24 is not slowed
    for _ in range(20):
        throttle.failed("10.0.0.1", now)
    later = now + 10 * MAX_QUEUE_WAIT  # the queue has drained; the failures still count
    assert throttle.admit("10.0.0.1", later).delay == MAX_DELAY


def test_parallel_attempts_queue_and_overflow_is_not_checked() -> None:
    throttle = AuthThrottle()
    now = 50.0
    for _ in range(FREE_FAILURES + 2):  # step = 4 * BASE_DELAY = 1 s
        throttle.failed("10.0.0.1", now)
    delays = [throttle.admit("10.0.0.1", now) for _ in range(6)]
    assert [d.delay for d in delays[:4]] == [1.0, 2.0, 3.0, 4.0]
    assert delays[4] == (MAX_QUEUE_WAIT, False)
    assert delays[5] == (MAX_QUEUE_WAIT, False)


def test_failures_are_forgotten_after_the_window() -> None:
    throttle = AuthThrottle()
    for _ in range(FREE_FAILURES):
        throttle.failed("10.0.0.1", 0.0)
    assert throttle.failures("10.0.0.1", FAILURE_WINDOW - 1) == FREE_FAILURES
    assert throttle.admit("10.0.0.1", FAILURE_WINDOW + 1) == (0.0, True)
    assert throttle.failures("10.0.0.1", FAILURE_WINDOW + 1) == 0


def test_address_of_peer() -> None:
    assert address_of("127.0.0.1:5555") == "127.0.0.1"
    assert address_of("::1:5555") == "::1"
    assert address_of("?") == "?"
