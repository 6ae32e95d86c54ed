"""The meta commands' execution (`mg ms md ma mn me`) for a text connection's session: the
parser (protocol/meta.py) made the command and the gate allowed it; this runs it on the
session's own cache and writes memcached 1.6's reply bytes, flag by flag in the order the
client sent them (memcached's own order, side effects included: `mg k t T30` shows the
old TTL, `mg k T30 t` the new one).

No await, no I/O: called per command by TextSession (text_session.py) on the hot path.
"""

from __future__ import annotations

import binascii
import math
from typing import Final

from memcloud.protocol import replies
from memcloud.protocol.meta import MA, MD, ME, MG, MN, MS, MetaCommand
from memcloud.service import Session
from memcloud.storage.cache import Cache, absolute_exptime
from memcloud.storage.item import FETCHED, ITEM_OVERHEAD, KEY_BINARY, STALE, TOKEN_SENT, Item
from memcloud.storage.meta import (
    bump,
    mark_stale,
    set_cas,
    set_expiry,
    store_stale,
    vivify,
)
from memcloud.storage.results import ArithResult, StoreMode, StoreResult

__all__ = ["execute_meta", "meta_get_plain"]

_MN: Final = b"MN\r\n"
_EN: Final = b"EN\r\n"
_HD: Final = b"HD"
_CRLF: Final = b"\r\n"
_MS_MODES: Final = {
    0: StoreMode.SET,
    ord("S"): StoreMode.SET,
    ord("E"): StoreMode.ADD,
    ord("A"): StoreMode.APPEND,
    ord("P"): StoreMode.PREPEND,
    ord("R"): StoreMode.REPLACE,
}
_MS_CODES: Final = {
    StoreResult.STORED: b"HD",
    StoreResult.NOT_STORED: b"NS",
    StoreResult.EXISTS: b"EX",
    StoreResult.NOT_FOUND: b"NF",
}
_VA_LINES: dict[int, bytes] = {}
_VA_LINES_MAX: Final = 4096
_OUT_OF_MEMORY: Final = b"SERVER_ERROR out of memory storing object\r\n"
_ARITH_NO_MEMORY: Final = b"SERVER_ERROR out of memory\r\n"
_ARITH_OUT_OF_MEMORY: Final = b"SERVER_ERROR Out of memory allocating new item\r\n"


def execute_meta(session: Session, command: MetaCommand, now: float, out: list[bytes]) -> int:
    """Run one meta command; answers the value bytes it put in `out` (the session counts
    them against its reply batch)."""
    verb = command.verb
    if verb == MN:
        out.append(_MN)
        return 0
    cache = session.cache
    assert cache is not None  # the gate let it through: the session is logged in
    if verb == MG:
        return _mg(cache, command, now, out)
    if verb == MS:
        _ms(cache, command, now, out)
    elif verb == MD:
        _md(cache, command, now, out)
    elif verb == MA:
        _ma(cache, command, now, out)
    elif verb == ME:
        _me(cache, command, now, out)
    return 0


def meta_get_plain(cache: Cache, key: bytes, now: float) -> bytes:
    """The reply to `mg <key> v`, the most frequent meta read, counted and bumped as a get
    (`Cache.get`); a stale item or one whose recache win was given shows its marks."""
    item = cache.get(key, now)
    if item is None:
        return _EN
    value = item.value
    meta = item.meta
    if not meta & (STALE | TOKEN_SENT):
        return b"".join((_va_line(len(value)), value, _CRLF))
    marks = b" Z" if meta & TOKEN_SENT else b""
    if meta & STALE:
        marks += b" X" if meta & TOKEN_SENT else b" X W"
        item.meta = meta | TOKEN_SENT
    return b"VA %d%s\r\n%s\r\n" % (len(value), marks, value)


def _va_line(length: int) -> bytes:
    """`VA <length>\r\n`, kept formatted per length (as replies.value_suffix keeps the text
    get's): `%` formatting on every hit cost more than the rest of the reply. Bounded."""
    line = _VA_LINES.get(length)
    if line is None:
        if len(_VA_LINES) >= _VA_LINES_MAX:
            _VA_LINES.clear()
        line = _VA_LINES[length] = b"VA %d\r\n" % length
    return line


def _key_flag(key: bytes, binary: bool) -> bytes:
    """memcached's META_KEY: ` k<key>`, or ` k<base64 key> b` for a binary key."""
    if binary:
        return b" k" + binascii.b2a_base64(key, newline=False) + b" b"
    return b" k" + key


def _echo(command: MetaCommand, out: list[bytes], code: bytes) -> None:
    """A reply without an item: the code, then the opaque and key flags as sent."""
    parts = [code]
    for token in command.flags:
        letter = token[0]
        if letter == 79:  # O
            parts.append(b" " + token)
        elif letter == 107:  # k
            parts.append(_key_flag(command.key, command.binary))
    parts.append(_CRLF)
    out.append(b"".join(parts))


def _ttl(item: Item, now: float) -> bytes:
    exptime = item.exptime
    return b"-1" if exptime == 0 else b"%d" % math.ceil(exptime - now)


def _mg(cache: Cache, command: MetaCommand, now: float, out: list[bytes]) -> int:
    key = command.key
    stats = cache.stats
    item = cache.peek(key, now)
    created = False
    if item is None and command.vivify_ttl is not None:
        item = vivify(cache, key, KEY_BINARY if command.binary else 0, now)
        if item is not None:
            created = True
            if command.explicit_cas:
                set_cas(cache, key, item, command.explicit_cas)
    if item is None:
        if command.late_error:
            out.append(command.late_error)
            return 0
        stats.cmd_get += 1
        stats.get_misses += 1
        if not command.quiet:
            _echo(command, out, b"EN")
        return 0
    meta = item.meta  # before this read: `h` shows whether it was fetched before
    value = item.value
    parts = [b"VA %d" % len(value) if command.want_value else _HD]
    won = False
    touched = False
    for token in command.flags:
        letter = token[0]
        if letter == 84:  # T
            touched = True
            set_expiry(cache, key, item, command.new_ttl or 0, now)
        elif letter == 78:  # N
            if created:
                set_expiry(cache, key, item, command.vivify_ttl or 0, now)
                won = True
        elif letter == 82:  # R
            recache = absolute_exptime(command.recache_ttl or 0, now)
            if not meta & TOKEN_SENT and not created and item.exptime and item.exptime < recache:
                won = True
        elif letter == 115:  # s
            parts.append(b" s%d" % len(value))
        elif letter == 116:  # t
            parts.append(b" t" + _ttl(item, now))
        elif letter == 99:  # c
            parts.append(b" c%d" % item.cas)
        elif letter == 102:  # f
            parts.append(b" f%d" % item.flags)
        elif letter == 108:  # l
            parts.append(b" l%d" % int(now - item.bumped))
        elif letter == 104:  # h
            parts.append(b" h1" if meta & FETCHED else b" h0")
        elif letter == 79:  # O
            parts.append(b" " + token)
        elif letter == 107:  # k
            parts.append(_key_flag(key, bool(meta & KEY_BINARY)))
    if command.late_error:
        out.append(command.late_error)
        return 0
    if meta & TOKEN_SENT:
        parts.append(b" Z")
    if meta & STALE:
        parts.append(b" X")
        if not meta & TOKEN_SENT:
            won = True
    if won:
        parts.append(b" W")
        item.meta |= TOKEN_SENT
    if not command.no_bump:
        bump(cache, key, item, now)
    if touched:
        stats.cmd_touch += 1
        stats.touch_hits += 1
    else:
        stats.cmd_get += 1
        stats.get_hits += 1
    parts.append(_CRLF)
    if command.want_value:
        parts.append(value)
        parts.append(_CRLF)
    out.append(b"".join(parts))
    return len(value)


def _ms(cache: Cache, command: MetaCommand, now: float, out: list[bytes]) -> None:
    key = command.key
    mode = _MS_MODES[command.mode]
    compare = command.compare_cas
    if compare is not None and (mode is StoreMode.SET or mode is StoreMode.REPLACE):
        mode = StoreMode.CAS  # memcached: a CAS'd set or replace is a cas
    old = cache.peek(key, now) if command.invalidate and mode is StoreMode.CAS else None
    if old is not None and compare and compare < old.cas:
        result, cas = store_stale(cache, key, command.value, command.user_flags, old, now)
    else:
        result, cas = cache.store(
            mode, key, command.value, command.user_flags, command.new_ttl or 0, now, compare or 0
        )
    if result is StoreResult.STORED:
        item = cache.items.get(key)  # None: stored already expired (a negative TTL)
        if item is not None:
            if command.binary:
                item.meta |= KEY_BINARY
            if command.explicit_cas:
                set_cas(cache, key, item, command.explicit_cas)
                cas = item.cas
    elif result is StoreResult.NO_MEMORY:
        out.append(_OUT_OF_MEMORY)
        return
    elif result is StoreResult.TOO_LARGE:
        if mode is not StoreMode.APPEND and mode is not StoreMode.PREPEND:
            out.append(replies.TOO_LARGE)
            return
        result = StoreResult.NOT_STORED  # memcached: growth past the limit is not stored
    if result is StoreResult.STORED and command.quiet:
        return
    parts = [_MS_CODES[result]]
    for token in command.flags:
        letter = token[0]
        if letter == 79:  # O
            parts.append(b" " + token)
        elif letter == 107:  # k
            parts.append(_key_flag(key, command.binary))
        elif letter == 99:  # c
            parts.append(b" c%d" % cas)
    parts.append(_CRLF)
    out.append(b"".join(parts))


def _md(cache: Cache, command: MetaCommand, now: float, out: list[bytes]) -> None:
    key = command.key
    stats = cache.stats
    item = cache.peek(key, now)
    compare = command.compare_cas
    if item is None:
        cache.delete(key, now)  # counted as a delete miss
        code = b"NF"
    elif compare is not None and item.cas != compare:
        stats.cmd_delete += 1
        stats.delete_misses += 1  # as memcached counts a CAS mismatch
        code = b"EX"
    elif command.invalidate:
        stats.cmd_delete += 1
        if command.new_ttl is not None:
            set_expiry(cache, key, item, command.new_ttl, now)
        mark_stale(cache, key, item, command.explicit_cas or 0)
        code = _HD
    else:
        cache.delete(key, now)
        code = _HD
    if code == _HD and command.quiet:
        return
    _echo(command, out, code)


def _ma(cache: Cache, command: MetaCommand, now: float, out: list[bytes]) -> None:
    key = command.key
    incr = command.mode != 68 and command.mode != 45  # D, -
    created = False
    item = cache.peek(key, now)
    if item is None and command.vivify_ttl is not None:
        cache.create_counter(key, command.initial, 0, now)
        item = cache.items.get(key)
        if item is None:
            out.append(_ARITH_OUT_OF_MEMORY)
            return
        created = True
        number = command.initial
    else:
        result = cache.arith(key, command.delta, incr, now, command.compare_cas or 0)
        if result is ArithResult.NON_NUMERIC:
            out.append(replies.NON_NUMERIC)
            return
        if not isinstance(result, int):
            if command.late_error:
                out.append(command.late_error)
            else:
                _echo(command, out, b"EX" if result is ArithResult.EXISTS else b"NF")
            return
        number = result
        stored = cache.items.get(key)
        if stored is None:  # the new value found no memory: the old one is gone too
            out.append(_ARITH_NO_MEMORY)
            return
        item = stored
    if command.binary:
        item.meta |= KEY_BINARY
    if command.explicit_cas:
        set_cas(cache, key, item, command.explicit_cas)
    digits = b"%d" % number
    parts = [b"VA %d" % len(digits) if command.want_value else _HD]
    for token in command.flags:
        letter = token[0]
        if letter == 99:  # c
            parts.append(b" c%d" % item.cas)
        elif letter == 116:  # t
            parts.append(b" t" + _ttl(item, now))
        elif letter == 84:  # T
            set_expiry(cache, key, item, command.new_ttl or 0, now)
        elif letter == 78:  # N
            if created:
                set_expiry(cache, key, item, command.vivify_ttl or 0, now)
        elif letter == 79:  # O
            parts.append(b" " + token)
        elif letter == 107:  # k
            parts.append(_key_flag(key, command.binary))
    if command.late_error:
        out.append(command.late_error)
        return
    if command.quiet and not created:
        return  # memcached hides a successful delta under `q` (not a created counter)
    parts.append(_CRLF)
    if command.want_value:
        parts.append(digits)
        parts.append(_CRLF)
    out.append(b"".join(parts))


def _me(cache: Cache, command: MetaCommand, now: float, out: list[bytes]) -> None:
    """memcached's meta debug line for one item of the caller's own cache. memcloud has no
    slab classes (cls is always 1) and its size is its own accounting of the item."""
    key = command.key
    item = cache.peek(key, now)
    if item is None:
        out.append(_EN)
        return
    shown = binascii.b2a_base64(key, newline=False) if item.meta & KEY_BINARY else key
    exp = -1 if item.exptime == 0 else math.ceil(item.exptime - now)
    out.append(
        b"ME %s exp=%d la=%d cas=%d fetch=%s cls=1 size=%d\r\n"
        % (
            shown,
            exp,
            int(now - item.bumped),
            item.cas,
            b"yes" if item.meta & FETCHED else b"no",
            len(key) + len(item.value) + ITEM_OVERHEAD,
        )
    )
