"""The hook-token methods of the memory store (`MemoryStore` inherits them): the same rules
and answers as memcloud.control.sql.hooks, held in a dict under the store's one lock."""

from __future__ import annotations

import dataclasses
import threading

from memcloud.control import hooks as rules
from memcloud.control.hook_records import HookRecord, NewHook
from memcloud.control.models import CacheRecord
from memcloud.control.rules import no_cache_id

__all__ = ["MemoryHooks"]


class MemoryHooks:
    _lock: threading.Lock
    _caches: dict[int, CacheRecord]

    def _init_hooks(self) -> None:
        # Each hook with its token's digest.
        self._hooks: dict[int, tuple[HookRecord, bytes]] = {}
        self._last_hook_id = 0

    def _drop_hooks(self, cache_id: int) -> None:
        """What a deleted cache had (the caller holds the lock)."""
        for hook_id in [k for k, (h, _) in self._hooks.items() if h.cache_id == cache_id]:
            del self._hooks[hook_id]

    def _live_hook(self, hook: HookRecord) -> bool:
        cache = self._caches.get(hook.cache_id)
        return cache is not None and cache.generation == hook.generation

    def _hook(self, cache_id: int, hook_id: int) -> HookRecord:
        found = self._hooks.get(hook_id)
        if found is None or found[0].cache_id != cache_id or not self._live_hook(found[0]):
            raise rules.no_hook(cache_id, hook_id)
        return found[0]

    def create_hook(
        self, cache_id: int, *, name: str = "", prefix: str = "", now: float
    ) -> NewHook:
        label, prefix = rules.validate_hook(name, prefix)
        token = rules.new_token()
        with self._lock:
            cache = self._caches.get(cache_id)
            if cache is None:
                raise no_cache_id(cache_id)
            active = sum(
                1 for h, _ in self._hooks.values() if h.cache_id == cache_id and not h.revoked
            )
            rules.check_hook_count(active)
            self._last_hook_id += 1
            record = HookRecord(
                id=self._last_hook_id,
                cache_id=cache_id,
                name=label,
                prefix=prefix,
                hint=token[: rules.HINT_CHARS],
                created_at=now,
                generation=cache.generation,
            )
            self._hooks[record.id] = (record, rules.hash_token(token))
        return NewHook(record=record, token=token)

    def list_hooks(self, cache_id: int) -> list[HookRecord]:
        with self._lock:
            if cache_id not in self._caches:
                raise no_cache_id(cache_id)
            return [
                h
                for hook_id, (h, _) in sorted(self._hooks.items())
                if h.cache_id == cache_id and self._live_hook(h)
            ]

    def revoke_hook(self, cache_id: int, hook_id: int, now: float) -> HookRecord:
        with self._lock:
            record = self._hook(cache_id, hook_id)
            if not record.revoked:
                record = dataclasses.replace(record, revoked_at=now)
                self._hooks[hook_id] = (record, self._hooks[hook_id][1])
            revoked = sorted(
                (h for h, _ in self._hooks.values() if h.cache_id == cache_id and h.revoked),
                key=lambda h: (h.revoked_at or 0.0, h.id),
                reverse=True,
            )
            for old in revoked[rules.KEPT_REVOKED :]:
                del self._hooks[old.id]
            return record

    def use_hook(self, token: str, now: float) -> HookRecord | None:
        if not rules.is_token_form(token):
            return None
        digest = rules.hash_token(token)
        with self._lock:
            for hook_id, (record, stored) in self._hooks.items():
                if stored == digest and rules.token_matches(stored, token):
                    if not self._live_hook(record):
                        return None
                    if record.revoked:
                        return record
                    record = dataclasses.replace(record, last_used_at=now)
                    self._hooks[hook_id] = (record, stored)
                    return record
        return None
