"""The flush audit log writer: a hand-off for every flush, and a thread that stores them.

The data plane calls `FlushAuditor.listener` synchronously inside its flushes (text
`flush_all`, binary Flush); it only puts the event on a bounded queue, so a flush never
waits for the database. The deployment's flush (CLI, API, deploy hooks, webhooks, dashboard)
awaits `FlushAuditor.recorded` instead: the same queue, and a future the writer thread
resolves (through the event loop) once it stored the record or kept it pending after a
failed write, so that the flush log read next lists it. A thread moves the events into a
list of records waiting to be written and writes them, oldest first, in batches.

A record the store cannot take (a full disk, a locked or damaged database) is kept and
retried, with a growing pause, until it is written: a flush is never silently missing from
the log. `pending()` says how many wait and since when (the flush log's readers show it).
Memory stays bounded: beyond `MAX_PENDING` waiting records (or a full queue) new ones are
dropped, counted and logged. Only a record the store refuses on its own (not for a fault of
the disk or file) is given up, so that it cannot hold back every later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from memcloud.control.base import ControlStore, StoreRefused
from memcloud.control.failures import FailureLog, describe
from memcloud.control.models import FlushRecord

__all__ = [
    "MAX_PENDING",
    "QUEUE_CAPACITY",
    "RECORDED_WAIT_SECONDS",
    "FlushAuditor",
    "FlushEvent",
    "PendingFlushes",
    "flush_record",
    "prefix_details",
]

log = logging.getLogger("memcloud.audit")

# Flushes handed over by the data plane, not yet taken by the writer thread.
QUEUE_CAPACITY = 10_000
# Records waiting for the store (a few hundred bytes each: about 50 MB at most).
MAX_PENDING = 100_000
# Records written per transaction.
BATCH_SIZE = 200
# After a failed write the writer waits this long, doubling up to RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# Detail values are what deploy hooks send; longer ones are cut.
MAX_DETAIL_CHARS = 256
# Errors that say the record itself is refused: retrying it would only block the rest.
_REFUSED = (StoreRefused, TypeError, ValueError)
# `recorded` waits this long at most for the writer thread (a flush has happened either way;
# only the log read right after it may not list it yet).
RECORDED_WAIT_SECONDS = 1.0
_STOP = object()


@dataclass(frozen=True, slots=True)
class FlushEvent:
    """One flush, for the audit log: who, from where, how, and what a deploy hook said."""

    cache_id: int
    source: str  # "text", "binary", "api", "deploy_hook", "webhook", "cli", "dashboard"
    username: str
    peer: str
    at: float  # the injected clock's time (`Clock.now`)
    details: dict[str, str] = field(default_factory=dict)


def prefix_details(prefix: bytes) -> dict[str, str]:
    """The flush log's note of a prefix flush (`details["prefix"]`; none for a whole flush).
    Only memcloud writes it: no body field of a deploy hook becomes this detail."""
    return {"prefix": prefix.decode("utf-8", "backslashreplace")} if prefix else {}


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


@dataclass(frozen=True, slots=True)
class PendingFlushes:
    """Flush records of a cache this node holds because the store has not taken them yet."""

    count: int
    since: float | None  # time of the oldest one
    error: str  # why the last write failed ("" once one succeeded)


class _Waiter:
    """A record handed over by `recorded`, and the future its caller awaits on `loop`."""

    __slots__ = ("future", "loop", "record")

    def __init__(
        self, record: FlushRecord, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]
    ) -> None:
        self.record = record
        self.loop = loop
        self.future = future

    def resolve(self) -> None:
        """From the writer thread: wake the caller on its own loop (gone: nobody waits)."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_set_done, self.future)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _no_name(cache_id: int) -> str | None:
    return None


class FlushAuditor:
    def __init__(
        self,
        store: ControlStore,
        node: str,
        *,
        max_pending: int = MAX_PENDING,
        cache_name: Callable[[int], str | None] = _no_name,
    ) -> None:
        self.store = store
        self.node = node
        self.max_pending = max_pending
        # The name a flush's log line gives its cache (read in the writer thread).
        self.cache_name = cache_name
        # Flushes taken by the writer, by source (`/metrics` memcloud_flushes_total).
        self.by_source: dict[str, int] = {}
        self.dropped = 0
        self.written = 0
        self.given_up = 0
        self.last_error = ""
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_CAPACITY)
        # Oldest first; the writer thread appends and removes, readers count under the lock.
        self._pending: deque[FlushRecord] = deque()
        self._lock = threading.Lock()
        self._failures = FailureLog(log, "writing the flush log")
        self._delay = RETRY_FIRST_SECONDS
        # Callers of `recorded` whose records the writer took and has not dealt with yet
        # (touched by the writer thread only).
        self._waiters: list[_Waiter] = []
        self._thread = threading.Thread(target=self._run, name="flush-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def listener(self, event: FlushEvent) -> None:
        """Called inside every flush on the event loop: never blocks."""
        try:
            self._queue.put_nowait(flush_record(event, self.node))
        except queue.Full:
            self._drop("the flush log queue is full")

    async def recorded(self, event: FlushEvent, timeout: float = RECORDED_WAIT_SECONDS) -> None:
        """Hand `event` over as `listener` does, and return once the writer thread stored
        it, or kept it pending after a failed write, or dropped it (at most `timeout`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        try:
            self._queue.put_nowait(_Waiter(flush_record(event, self.node), loop, future))
        except queue.Full:
            self._drop("the flush log queue is full")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), timeout)

    def pending(self, cache_id: int) -> PendingFlushes:
        with self._lock:
            times = [r.at for r in self._pending if r.cache_id == cache_id]
            error = self.last_error
        return PendingFlushes(len(times), min(times) if times else None, error if times else "")

    def flushes_by_source(self) -> dict[str, int]:
        """How many flushes this node's writer took, by source, since it started."""
        with self._lock:
            return dict(self.by_source)

    def pending_total(self) -> int:
        with self._lock:
            return len(self._pending)

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

    # -- the writer thread ------------------------------------------------------------------

    def _drop(self, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.error(
                "%s: %d flush log records dropped so far (%s)",
                why,
                self.dropped,
                self.last_error or "the writer is behind",
            )

    def _keep(self, item: object) -> bool:
        """Move one queue item into the pending records; True for the stop marker."""
        if item is _STOP:
            return True
        waiter = item if isinstance(item, _Waiter) else None
        record = waiter.record if waiter is not None else item
        if isinstance(record, FlushRecord):
            self._announce(record)
            with self._lock:
                full = len(self._pending) >= self.max_pending
                if not full:
                    self._pending.append(record)
            if full:
                self._drop(f"{self.max_pending} flush log records already wait to be written")
            if waiter is not None:
                self._waiters.append(waiter)
        return False

    def _announce(self, record: FlushRecord) -> None:
        """Count and log one flush: in the writer thread, never on the data plane's path."""
        with self._lock:
            self.by_source[record.source] = self.by_source.get(record.source, 0) + 1
        name = self.cache_name(record.cache_id) or f"#{record.cache_id}"
        deploy = {
            k: v
            for k, v in (
                ("app", record.app),
                ("release", record.release),
                ("commit", record.commit),
            )
            if v
        }
        log.info(
            "flush of cache %s by %s via %s from %s",
            name,
            record.username or "-",
            record.source,
            record.peer or "-",
            extra={
                "event": "flush",
                "cache": name,
                "cache_id": record.cache_id,
                "who": record.username,
                "via": record.source,
                "peer": record.peer,
                "node": record.node,
                **deploy,
            },
        )

    def _resolve_waiters(self) -> None:
        """Every record taken so far is written, or kept pending after a failed write (or
        while the writer waits to retry): their callers may go on."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.resolve()

    def _take(self, wait: float | None) -> bool:
        """Wait up to `wait` seconds (None: until one comes) for records, then take every
        queued one; True if the stop marker came."""
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return False
        stop = self._keep(item)
        while not stop:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            stop = self._keep(item)
        return stop

    def _written(self, count: int) -> None:
        """The oldest `count` pending records are in the store (or given up)."""
        with self._lock:
            for _ in range(count):
                self._pending.popleft()
            self.last_error = ""
        self._failures.succeeded()
        self._delay = RETRY_FIRST_SECONDS

    def _write_pending(self) -> bool:
        """Write every pending record, oldest first; False if the store failed."""
        try:
            while True:
                with self._lock:
                    batch = list(itertools.islice(self._pending, BATCH_SIZE))
                if not batch:
                    return True
                try:
                    self.store.record_flushes(batch)
                    self.written += len(batch)
                    self._written(len(batch))
                except _REFUSED:
                    # One record may be refused on its own: write them one by one.
                    for record in batch:
                        try:
                            self.store.record_flushes([record])
                            self.written += 1
                        except _REFUSED as exc:
                            self.given_up += 1
                            log.error(
                                "flush log record of cache %d refused: %s", record.cache_id, exc
                            )
                        self._written(1)
        except Exception as exc:
            with self._lock:
                self.last_error = describe(exc)
                waiting = len(self._pending)
            self._failures.failed(exc, f"{waiting} flush log records kept, retried until written")
            return False

    def _run(self) -> None:
        retry_at = 0.0
        while True:
            now = time.monotonic()
            waiting = self.pending_total() > 0
            stop = self._take(max(0.0, retry_at - now) if waiting else None)
            due = stop or time.monotonic() >= retry_at
            if due and self.pending_total() and not self._write_pending():
                retry_at = time.monotonic() + self._delay
                self._delay = min(self._delay * 2, RETRY_MAX_SECONDS)
            self._resolve_waiters()
            if stop:
                lost = self.pending_total()
                if lost:
                    log.error(
                        "stopping with %d flush log records not written (%s): they are lost",
                        lost,
                        self.last_error,
                    )
                return
