"""Warm restart: one node's caches written to a file at a graceful stop, read back at start.

The file (`node-<i>.snapshot` in the data dir, one per node process) is a fixed prefix
(MAGIC, FORMAT) and then blocks, each `kind (1 byte) | length (4) | CRC-32 (4) | payload`,
the CRC covering kind, length and payload:

    HEADER  JSON: format, node address, saved_at (Unix time), item_size_max
    CACHE   JSON: id, generation, flush_at; the ITEMS blocks after it are its items
    ITEMS   items back to back, least recently used first: ITEM_HEAD (key length,
            value length, flags, expiry as absolute Unix time or 0, CAS), key, value
    END     caches and items written: a file cut at a block boundary is detected too

It is written as a stream (blocks of about BLOCK_TARGET bytes, never the whole file in
memory) to a temporary file in the same directory, fsynced, then renamed over the old one,
so a reader sees the previous file or the new one, never half of one.

Reading trusts nothing: every length is bounded before anything is allocated, every block's
CRC is checked, and a damaged, truncated or foreign file empties whatever it had restored
(never a wrong value) and is reported by one log line. The file is removed as it is opened,
before the node serves: a node that crashes later comes back empty, never with items older
than what it served since.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from memcloud.storage.cache import Cache, continue_cas_above
from memcloud.storage.registry import Registry

__all__ = [
    "BLOCK_TARGET",
    "FORMAT",
    "MAGIC",
    "LoadReport",
    "SaveReport",
    "SavedItem",
    "SnapshotDamaged",
    "load_snapshot",
    "read_snapshot",
    "save_snapshot",
    "snapshot_path",
    "write_snapshot",
]

log = logging.getLogger("memcloud.snapshot")

MAGIC: Final = b"MCLDSNAP"
# Bumped on any change of the layout; a file of another format is discarded, not guessed at.
FORMAT: Final = 1
_PREFIX: Final = struct.Struct("<8sH")
_BLOCK: Final = struct.Struct("<BII")
# key length, value length, flags (memcached's are 32-bit), expiry (0: never), CAS.
ITEM_HEAD: Final = struct.Struct("<HIIdQ")
_END: Final = struct.Struct("<QQ")

HEADER: Final = 1
CACHE: Final = 2
ITEMS: Final = 3
END: Final = 4

# Items are written in blocks of about this many bytes: large enough that the per-block
# cost (a CRC, a write) is noise, small enough to stay a bounded buffer.
BLOCK_TARGET: Final = 1024 * 1024
# The JSON blocks (header, one cache's identity) are small; a longer one is damage.
JSON_BLOCK_MAX: Final = 64 * 1024
# memcached's longest key; a longer one in a snapshot is damage.
KEY_MAX: Final = 250


class SnapshotDamaged(Exception):
    """The file is not a complete snapshot of this format (the message says how)."""


@dataclass(frozen=True)
class SaveReport:
    caches: int
    items: int
    size: int
    seconds: float


@dataclass
class LoadReport:  # not frozen: `seconds` is set once the file is closed
    caches: int  # restored (of the current generation)
    items: int  # restored
    expired: int  # expired (or flushed by a delayed flush_all) while the node was down
    dropped: int  # evicted to fit a smaller plan or memory budget, or over the item limit
    skipped_caches: int  # deleted, or recreated with the same id, while the node was down
    skipped_items: int  # the items of those
    seconds: float


@dataclass(frozen=True)
class SavedItem:
    """One item as a snapshot holds it (for inspection and tests)."""

    cache_id: int
    key: bytes
    value: bytes
    flags: int
    exptime: float
    cas: int


def snapshot_path(data_dir: Path, node_index: int) -> Path:
    """Node i's snapshot: one file per node process of `--nodes N`."""
    return data_dir / f"node-{node_index}.snapshot"


# -- writing -------------------------------------------------------------------------------


def _block(out: IO[bytes], kind: int, payload: bytes | bytearray) -> None:
    head = _BLOCK.pack(kind, len(payload), 0)[:5]
    crc = zlib.crc32(payload, zlib.crc32(head))
    out.write(_BLOCK.pack(kind, len(payload), crc))
    out.write(payload)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _write_cache(out: IO[bytes], cache: Cache, generation: str, now: float) -> int:
    """One cache's CACHE block and ITEMS blocks; answers how many items it wrote."""
    record = {"id": cache.id, "generation": generation, "flush_at": cache.flush_at}
    _block(out, CACHE, _json(record))
    pack = ITEM_HEAD.pack
    buf = bytearray()
    count = 0
    for key, item in cache.live_items(now):
        value = item.value
        buf += pack(len(key), len(value), item.flags, item.exptime, item.cas)
        buf += key
        buf += value
        count += 1
        if len(buf) >= BLOCK_TARGET:
            _block(out, ITEMS, buf)
            buf.clear()
    if buf:
        _block(out, ITEMS, buf)
    return count


def save_snapshot(registry: Registry, path: Path, *, node: str, now: float) -> SaveReport | None:
    """`write_snapshot`, and one log line saying what was saved, or why nothing was (then
    None: the next start is empty)."""
    try:
        report = write_snapshot(registry, path, node=node, now=now)
    except Exception as exc:  # a stop never fails for want of a snapshot
        log.error("cannot write snapshot %s (%s): the next start is empty", path, exc)
        return None
    log.info(
        "saved %d items of %d caches to %s in %.2f s (%d bytes)",
        report.items,
        report.caches,
        path,
        report.seconds,
        report.size,
        extra={"snapshot": str(path), "saved_items": report.items},
    )
    return report


def write_snapshot(registry: Registry, path: Path, *, node: str, now: float) -> SaveReport:
    """Write every cache of `registry` to `path` atomically (temporary file in the same
    directory, fsync, rename, fsync of the directory). Raises OSError when it cannot (and
    struct.error for an item no snapshot can hold); the old file is then left as it was."""
    started = time.perf_counter()
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    caches = items = 0
    try:
        with os.fdopen(handle, "wb", buffering=BLOCK_TARGET) as out:
            out.write(_PREFIX.pack(MAGIC, FORMAT))
            header = {
                "format": FORMAT,
                "node": node,
                "saved_at": now,
                "item_size_max": registry.item_size_max,
            }
            _block(out, HEADER, _json(header))
            for cache_id, cache in registry.caches.items():
                generation = registry.generations.get(cache_id, "")
                items += _write_cache(out, cache, generation, now)
                caches += 1
            _block(out, END, _END.pack(caches, items))
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)
    return SaveReport(caches, items, size, time.perf_counter() - started)


def _sync_directory(directory: Path) -> None:
    """The rename itself survives a power cut only once the directory is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------------------


class _Reader:
    """Blocks of one open snapshot file, each bounded and checked before it is answered."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.blocks = 0
        prefix = source.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size or prefix[: len(MAGIC)] != MAGIC:
            raise SnapshotDamaged("not a memcloud snapshot")
        _, version = _PREFIX.unpack(prefix)
        if version != FORMAT:
            raise SnapshotDamaged(f"format {version}, this memcloud reads format {FORMAT}")
        kind, payload = self.block(JSON_BLOCK_MAX)
        if kind != HEADER:
            raise SnapshotDamaged("no header")
        self.header = _decode_json(payload, "header")
        item_size_max = self.header.get("item_size_max")
        if not isinstance(item_size_max, int) or item_size_max <= 0:
            raise SnapshotDamaged("header without item_size_max")
        self.items_max = BLOCK_TARGET + ITEM_HEAD.size + KEY_MAX + item_size_max

    def block(self, limit: int) -> tuple[int, bytes]:
        head = self.source.read(_BLOCK.size)
        if len(head) < _BLOCK.size:
            raise SnapshotDamaged(f"truncated after block {self.blocks}")
        kind, length, crc = _BLOCK.unpack(head)
        if length > limit:
            raise SnapshotDamaged(f"block {self.blocks + 1} claims {length} bytes")
        payload = self.source.read(length)
        if len(payload) < length:
            raise SnapshotDamaged(f"truncated in block {self.blocks + 1}")
        if zlib.crc32(payload, zlib.crc32(head[:5])) != crc:
            raise SnapshotDamaged(f"checksum mismatch in block {self.blocks + 1}")
        self.blocks += 1
        return kind, payload

    def caches(self) -> Iterator[tuple[int, str, float, Iterator[bytes]]]:
        """(id, generation, flush_at, its ITEMS payloads) per cache; each cache's payloads
        must be consumed before the next cache. Then `end` holds the END block's counts
        (caches, items) for the caller to compare with what it read."""
        kind, payload = self.block(self.items_max)
        self.cache_count = 0
        while kind == CACHE:
            record = _decode_json(payload, "cache record")
            cache_id, generation = record.get("id"), record.get("generation")
            flush_at = record.get("flush_at")
            if not isinstance(cache_id, int) or not isinstance(generation, str):
                raise SnapshotDamaged("cache record without id or generation")
            if not isinstance(flush_at, int | float):
                raise SnapshotDamaged("cache record without flush_at")
            self.cache_count += 1
            pending: list[tuple[int, bytes]] = []
            yield cache_id, generation, float(flush_at), self._items(pending)
            kind, payload = pending[0] if pending else self.block(self.items_max)
        if kind != END or len(payload) != _END.size:
            raise SnapshotDamaged(f"unexpected block kind {kind}")
        self.end = _END.unpack(payload)
        if self.source.read(1):
            raise SnapshotDamaged("bytes after the end")

    def _items(self, pending: list[tuple[int, bytes]]) -> Iterator[bytes]:
        while True:
            kind, payload = self.block(self.items_max)
            if kind != ITEMS:
                pending.append((kind, payload))
                return
            yield payload


def _decode_json(payload: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        raise SnapshotDamaged(f"unreadable {what}") from None
    if not isinstance(value, dict):
        raise SnapshotDamaged(f"unreadable {what}")
    return value


def _items_of(payload: bytes) -> Iterator[tuple[bytes, bytes, int, float, int]]:
    """The items of one ITEMS payload: key, value, flags, expiry, CAS."""
    unpack = ITEM_HEAD.unpack_from
    head = ITEM_HEAD.size
    offset, end = 0, len(payload)
    while offset < end:
        if offset + head > end:
            raise SnapshotDamaged("an item cut short")
        key_length, value_length, flags, exptime, cas = unpack(payload, offset)
        offset += head
        key_end = offset + key_length
        value_end = key_end + value_length
        _check_item(key_length, value_end, end, exptime, cas)
        yield payload[offset:key_end], payload[key_end:value_end], flags, exptime, cas
        offset = value_end


def read_snapshot(path: Path) -> tuple[dict[str, Any], list[SavedItem]]:
    """A whole snapshot's header and items, for inspection and tests (it holds them all in
    memory; the node's own start uses `load_snapshot`). Raises SnapshotDamaged."""
    with open(path, "rb") as source:
        reader = _Reader(source)
        items: list[SavedItem] = []
        for cache_id, _generation, _flush_at, payloads in reader.caches():
            for payload in payloads:
                for key, value, flags, exptime, cas in _items_of(payload):
                    items.append(SavedItem(cache_id, key, value, flags, exptime, cas))
        if reader.end != (reader.cache_count, len(items)):
            raise SnapshotDamaged("counts do not match the end block")
        return reader.header, items


def load_snapshot(registry: Registry, path: Path, *, now: float) -> LoadReport | None:
    """Restore the caches `path` holds into `registry` (whose caches and generations are
    the control store's: a cache not there, or of another generation, is skipped), then
    remove the file; logs one line saying what happened. None when there is no file or it
    is damaged (then every cache is as it was: empty)."""
    started = time.perf_counter()
    try:
        source = open(path, "rb")  # noqa: SIM115 -- closed below, after the unlink
    except FileNotFoundError:
        log.info(
            "no snapshot at %s (first start, --no-warm-restart, or the last stop was not"
            " graceful): caches start empty",
            path,
            extra={"snapshot": str(path)},
        )
        return None
    except OSError as exc:
        log.warning("cannot open snapshot %s (%s): caches start empty", path, exc)
        return None
    with source:
        try:
            # First: an item read now must not come back after a crash later.
            path.unlink()
        except OSError as exc:
            log.warning("cannot remove snapshot %s (%s): caches start empty", path, exc)
            return None
        touched: list[Cache] = []
        highest_cas = 0
        # Millions of new objects and no cycle among them: the cyclic collector would only
        # walk them again and again (a fifth of the load time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            report, highest_cas = _restore(registry, _Reader(source), now, touched)
        except Exception as exc:  # SnapshotDamaged, OSError; anything else: never a crash
            for cache in touched:
                cache.empty()
            continue_cas_above(highest_cas)
            log.warning(
                "snapshot %s is damaged (%s): discarded, caches start empty",
                path,
                exc,
                extra={"snapshot": str(path)},
            )
            return None
        finally:
            if collecting:
                gc.enable()
    continue_cas_above(highest_cas)
    report.seconds = time.perf_counter() - started
    log.info(
        "restored %d items of %d caches from %s in %.2f s (%d expired or flushed while down, %d"
        " dropped to fit, %d items of %d deleted or recreated caches skipped)",
        report.items,
        report.caches,
        path,
        report.seconds,
        report.expired,
        report.dropped,
        report.skipped_items,
        report.skipped_caches,
        extra={"snapshot": str(path), "restored_items": report.items},
    )
    return report


def _restore_block(cache: Cache, payload: bytes, now: float) -> tuple[int, int, int]:
    """Restore one ITEMS block into `cache`; answers how many items it held, how many of
    them had expired, and their highest CAS. The loop every item of a start goes through:
    `_items_of` inlined."""
    unpack = ITEM_HEAD.unpack_from
    head = ITEM_HEAD.size
    restore = cache.restore
    offset, end = 0, len(payload)
    count = expired = highest = 0
    while offset < end:
        if offset + head > end:
            raise SnapshotDamaged("an item cut short")
        key_length, value_length, flags, exptime, cas = unpack(payload, offset)
        offset += head
        key_end = offset + key_length
        value_end = key_end + value_length
        _check_item(key_length, value_end, end, exptime, cas)
        count += 1
        if cas > highest:
            highest = cas
        if exptime and exptime <= now:
            expired += 1
        else:
            restore(payload[offset:key_end], payload[key_end:value_end], flags, exptime, cas, now)
        offset = value_end
    return count, expired, highest


def _check_item(key_length: int, value_end: int, end: int, exptime: float, cas: int) -> None:
    if not 0 < key_length <= KEY_MAX or value_end > end or cas == 0:
        raise SnapshotDamaged("an item that cannot be")
    if exptime != exptime or exptime < 0:  # NaN, or negative: never written
        raise SnapshotDamaged("an item that cannot be")


def _restore(
    registry: Registry, reader: _Reader, now: float, touched: list[Cache]
) -> tuple[LoadReport, int]:
    caches = expired = skipped_caches = skipped_items = 0
    highest_cas = 0
    counted = 0
    for cache_id, generation, flush_at, payloads in reader.caches():
        cache = registry.current(cache_id, generation)
        flushed = bool(flush_at) and flush_at <= now
        if cache is not None:
            touched.append(cache)
            caches += 1
            if flush_at > now:
                cache.flush_at = flush_at  # a delayed flush_all still to come
        else:
            skipped_caches += 1
        for payload in payloads:
            if cache is None or flushed:
                # Decoded all the same: a damaged block must be found whatever it belongs to.
                cas_values = [item[4] for item in _items_of(payload)]
                count = len(cas_values)
                block_cas = max(cas_values, default=0)
                gone = 0 if cache is None else count
                skipped_items += count if cache is None else 0
            else:
                count, gone, block_cas = _restore_block(cache, payload, now)
            counted += count
            expired += gone
            highest_cas = max(highest_cas, block_cas)
    if reader.end != (reader.cache_count, counted):
        raise SnapshotDamaged("counts do not match the end block")
    # What is not held was dropped: evicted to fit, over the item limit.
    held = sum(cache.curr_items for cache in {id(cache): cache for cache in touched}.values())
    dropped = counted - skipped_items - expired - held
    report = LoadReport(caches, held, expired, dropped, skipped_caches, skipped_items, 0.0)
    return report, highest_cas
