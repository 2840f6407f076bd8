"""Pairing images with CameraInfo by stamp (no rclpy; the node wraps these in a lock).

Drivers publish ``image`` and ``camera_info`` with the same stamp but in either order, and some
publish CameraInfo at a lower rate. :class:`CameraInfoBuffer` keeps the most recent CameraInfo
messages by stamp and answers "the one with this stamp, else the nearest within a tolerance".
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["CameraInfoBuffer"]

T = TypeVar("T")


class CameraInfoBuffer(Generic[T]):
    """The last ``capacity`` CameraInfo messages, keyed by stamp in nanoseconds."""

    def __init__(self, capacity: int = 30) -> None:
        self._items: deque[tuple[int, T]] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def newest_stamp(self) -> int | None:
        return self._items[-1][0] if self._items else None

    def add(self, stamp_ns: int, info: T) -> bool:
        """Store ``info``; returns True when its stamp went backwards (the buffer is reset then).

        A stamp older than the newest one means the source restarted (a bag looping, a
        simulator reset): the stored messages belong to the old timeline and are dropped.
        """
        went_back = bool(self._items) and stamp_ns < self._items[-1][0]
        if went_back:
            self._items.clear()
        if self._items and self._items[-1][0] == stamp_ns:
            self._items[-1] = (stamp_ns, info)
        else:
            self._items.append((stamp_ns, info))
        return went_back

    def match(self, stamp_ns: int, tolerance_ns: int) -> T | None:
        """Return the message with ``stamp_ns``, else the nearest one within ``tolerance_ns``."""
        best: T | None = None
        best_gap = tolerance_ns + 1
        for item_stamp, info in reversed(self._items):
            gap = abs(item_stamp - stamp_ns)
            if gap == 0:
                return info
            if gap < best_gap:
                best, best_gap = info, gap
        return best

    def clear(self) -> None:
        self._items.clear()
