"""The flush audit log writer: a listener on every flush, and a thread that stores them.

The data plane calls `FlushAuditor.listener` synchronously inside every flush (text
`flush_all`, binary Flush, CLI, API, deploy hooks, webhooks); it only puts the event on a
bounded queue, so a flush never waits for the database. A thread drains the queue into the
control store in batches. If the queue is full (the database is stuck), events are dropped
and counted rather than slowing the data plane down.
"""

from __future__ import annotations

import logging
import queue
import threading

from memcloud.control.base import ControlStore
from memcloud.control.models import FlushRecord
from memcloud.service import FlushEvent

__all__ = ["QUEUE_CAPACITY", "FlushAuditor", "flush_record"]

log = logging.getLogger("memcloud.audit")

# Flushes waiting to be written; beyond this they are dropped (and counted).
QUEUE_CAPACITY = 10_000
# Records written per transaction.
BATCH_SIZE = 200
# Detail values are what deploy hooks send; longer ones are cut.
MAX_DETAIL_CHARS = 256
_STOP = object()


def flush_record(event: FlushEvent, node: str) -> FlushRecord:
    details = {k: v[:MAX_DETAIL_CHARS] for k, v in event.details.items()}
    app = details.pop("app", None)
    release = details.pop("release", None)
    commit = details.pop("commit", None)
    return FlushRecord(
        cache_id=event.cache_id,
        at=event.at,
        source=event.source,
        username=event.username,
        peer=event.peer,
        node=node,
        app=app,
        release=release,
        commit=commit,
        details=details,
    )


class FlushAuditor:
    def __init__(self, store: ControlStore, node: str) -> None:
        self.store = store
        self.node = node
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_CAPACITY)
        self._thread = threading.Thread(target=self._run, name="flush-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def listener(self, event: FlushEvent) -> None:
        """Called inside every flush on the event loop: never blocks."""
        try:
            self._queue.put_nowait(flush_record(event, self.node))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("flush log queue full: %d flush records dropped", self.dropped)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the thread (blocking: call it from a thread)."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("flush log writer did not drain; records may be lost")
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[FlushRecord] = []
            stop = item is _STOP
            if isinstance(item, FlushRecord):
                batch.append(item)
            while not stop and len(batch) < BATCH_SIZE:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                elif isinstance(item, FlushRecord):
                    batch.append(item)
            if batch:
                try:
                    self.store.record_flushes(batch)
                    self.written += len(batch)
                except Exception:
                    log.exception("writing %d flush log records failed", len(batch))
            if stop:
                return
