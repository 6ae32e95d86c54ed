"""The receivers the live alert tests deliver to (one of each per test module) and the
`memcloud serve` options that point a server at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def delivering_to(smtp: SmtpReceiver) -> tuple[str, ...]:
    """Mail through the test's SMTP server; webhooks to loopback receivers allowed."""
    return (
        "--smtp-url",
        f"smtp://127.0.0.1:{smtp.port}",
        "--smtp-from",
        "alerts@memcloud.test",
        "--alert-private-targets",
    )
