"""An unknown username costs the same as a known one with a wrong password (finding 8): the
directory checks unknown usernames against a dummy record, so timing tells no username."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from memcloud.auth import Directory
from memcloud.control.open import open_store

ROUNDS = 40
CALLS_PER_ROUND = 200


def _median_pair(check_known: object, check_unknown: object) -> tuple[float, float]:
    known: list[float] = []
    unknown: list[float] = []
    for _ in range(ROUNDS):
        # Interleaved, so drifts of the machine's speed hit both alike.
        for check, samples in ((check_known, known), (check_unknown, unknown)):
            started = time.perf_counter_ns()
            for _ in range(CALLS_PER_ROUND):
                check()  # type: ignore[operator]
            samples.append(time.perf_counter_ns() - started)
    return statistics.median(known), statistics.median(unknown)


def test_unknown_username_costs_as_much_as_a_wrong_password(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    cache = store.create_cache("timing", 1024 * 1024)
    username = store.create_credential(cache.id).record.username
    directory = Directory.load(store)
    wrong = b"0" * 32
    assert directory.authenticate(username.encode(), wrong) is None
    assert directory.authenticate(b"NOSUCH", wrong) is None
    known, unknown = _median_pair(
        lambda: directory.authenticate(username.encode(), wrong),
        lambda: directory.authenticate(b"NOSUCH", wrong),
    )
    # Before the fix an unknown username skipped the HMAC and took under half as long.
    assert 0.8 < unknown / known < 1.25, (known, unknown)
