"""A small thread-safe least-recently-used cache for per-camera tables (rays, remap maps).

Building a value (a ray grid, rectification maps) takes milliseconds, so it happens outside
the lock: two threads that miss the same key at once may both build it, and the second one
stored wins; a lookup never waits for another thread's build.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Callable, Generic, Hashable, TypeVar

from recon3d_ros.errors import ConfigError

__all__ = ["LruCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Keep the ``size`` most recently used values; :meth:`get` builds what is missing."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigError(f"cache size must be >= 1, got {size}")
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = Lock()

    def get(self, key: K, build: Callable[[], V]) -> V:
        """Return the value of ``key``, calling ``build()`` (outside the lock) on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
