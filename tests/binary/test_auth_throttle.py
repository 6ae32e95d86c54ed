from __future__ import annotations

from memcloud.auth_throttle import (
    BASE_DELAY,
    FAILURE_WINDOW,
    FREE_FAILURES,
    MAX_DELAY,
    MAX_QUEUE_WAIT,
    MAX_TRACKED_PREFIXES,
    MAX_TRACKED_USERNAMES,
    USERNAME_FREE_FAILURES,
    AuthThrottle,
    address_of,
    address_prefix,
    retry_after,
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


def test_address_prefixes() -> None:
    assert address_prefix("10.1.2.3") == "10.1.2.0/24"
    assert address_prefix("10.1.2.250") == "10.1.2.0/24"
    assert address_prefix("10.1.3.1") == "10.1.3.0/24"
    assert address_prefix("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_prefix("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_prefix("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_prefix("::ffff:10.1.2.3") == "10.1.2.0/24"  # IPv4-mapped is IPv4
    assert address_prefix("fe80::1%eth0") == "fe80::/64"
    assert address_prefix("?") == "?"


def test_a_whole_ipv6_64_shares_one_count() -> None:
    throttle = AuthThrottle()
    for host in range(FREE_FAILURES):
        throttle.failed(f"2001:db8::{host + 1:x}", 10.0, f"USER{host}")
    assert throttle.admit("2001:db8::ffff:1", 10.0, "OTHER") == (BASE_DELAY, True)
    assert throttle.admit("2001:db8:0:1::1", 10.0, "OTHER") == (0.0, True)


def test_username_bound_spares_clean_prefixes() -> None:
    throttle = AuthThrottle()
    for network in range(USERNAME_FREE_FAILURES):
        throttle.failed(f"10.0.{network}.1", 10.0, "VICTIM")
    # A guesser's prefix (one failure) queues on the username; a clean prefix does not.
    assert throttle.admit("10.0.0.2", 10.0, "VICTIM") == (BASE_DELAY, True)
    assert throttle.admit("10.9.9.9", 10.0, "VICTIM") == (0.0, True)
    assert throttle.admit("10.0.0.2", 10.0, "SOMEONE") == (0.0, True)
    assert throttle.username_failures("VICTIM", 10.0) == USERNAME_FREE_FAILURES


def test_http_attempts_are_refused_until_the_slot() -> None:
    throttle = AuthThrottle()
    for _ in range(FREE_FAILURES):
        throttle.failed("10.0.0.1", 100.0, "U")
    assert throttle.admit_now("10.0.0.1", 100.0, "U") == (BASE_DELAY, False)
    assert throttle.admit_now("10.0.0.1", 100.1, "U").check is False
    assert throttle.admit_now("10.0.0.1", 100.0 + BASE_DELAY, "U") == (0.0, True)
    # The check just admitted took the slot: the next one waits a step again.
    assert throttle.admit_now("10.0.0.1", 100.0 + BASE_DELAY, "U") == (BASE_DELAY, False)
    assert throttle.admit_now("10.0.1.1", 100.0, "U") == (0.0, True)


def test_many_failures_cap_the_delay_and_memory() -> None:
    throttle = AuthThrottle()
    for _ in range(10_000):
        throttle.failed("10.0.0.1", 5.0, "U")
    assert throttle.failures("10.0.0.1", 5.0) == 10_000
    assert throttle.admit("10.0.0.1", 5.0, "U") == (MAX_DELAY, True)
    for i in range(MAX_TRACKED_PREFIXES + 10):
        throttle.failed(f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.1", 6.0, f"N{i}")
    assert throttle.tracked() == (MAX_TRACKED_PREFIXES, MAX_TRACKED_USERNAMES)


def test_the_allowance_is_configurable() -> None:
    throttle = AuthThrottle(free_failures=50)
    for _ in range(49):
        throttle.failed("10.0.0.1", 5.0, "U")
    assert throttle.admit("10.0.0.1", 5.0, "U") == (0.0, True)
    throttle.failed("10.0.0.1", 5.0, "U")
    assert throttle.admit("10.0.0.1", 5.0, "U") == (BASE_DELAY, True)
    assert throttle.username_free_failures == 100


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after(0.01) == "1"
    assert retry_after(1.0) == "1"
    assert retry_after(1.2) == "2"
    assert retry_after(4.5) == "5"
