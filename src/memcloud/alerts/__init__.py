"""Alerts: evaluated every minute per cache from the deployment's stats, delivered by email,
Slack or a signed webhook, retried with backoff (runner.py, triggers.py, senders.py,
targets.py). `AlertTasks` starts both loops on node 0, next to the stats sampler."""

from __future__ import annotations

import asyncio
import contextlib

from memcloud.alerts.runner import Evaluator, Sender
from memcloud.alerts.senders import Senders, parse_smtp_url
from memcloud.clock import Clock
from memcloud.config import Settings
from memcloud.control.base import ControlStore
from memcloud.deployment import Deployment

__all__ = ["AlertTasks", "senders_of"]


def senders_of(settings: Settings) -> Senders:
    """The senders the operator configured (--smtp-url, --smtp-from, --alert-private-targets)."""
    return Senders(
        smtp=parse_smtp_url(settings.smtp_url) if settings.smtp_url else None,
        smtp_from=settings.smtp_from or f"memcloud@{settings.advertised_host}",
        allow_private=settings.alert_private_targets,
    )


class AlertTasks:
    """The evaluator and the sender as tasks of the running loop."""

    def __init__(
        self, store: ControlStore, deployment: Deployment, settings: Settings, clock: Clock
    ) -> None:
        queued = asyncio.Event()
        self.evaluator = Evaluator(store, deployment, settings, clock, queued=queued)
        self.sender = Sender(store, senders_of(settings), clock, queued=queued)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.evaluator.run(), name="memcloud-alerts"),
            asyncio.create_task(self.sender.run(), name="memcloud-alert-sender"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
