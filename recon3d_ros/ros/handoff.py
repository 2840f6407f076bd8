"""A one-deep hand-over between two threads of a node (no rclpy).

The depth node runs a frame in two stages: the network stage (decode, preprocess, inference,
metric depth: mostly in ONNX Runtime, OpenCV and numpy, which release the GIL) and the publish
stage (building the messages and serialising several MB through rclpy, which holds it). With
one thread for both, a frame that arrives while the previous one is being published waits for
it; with two, the network stage starts the next frame while the publish stage sends the last,
so on two or more cores the node's rate is set by the slower stage instead of their sum.

``put`` blocks while the previous item has not been taken: the publish stage never falls
behind by more than one frame, and frames pile up nowhere (the node's keep-newest input slot
drops the stale ones instead).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """Hand one item at a time from a producer thread to a consumer thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Wait until the previous item was taken, then offer ``item``; False once closed."""
        with self._cond:
            while self._item is not None and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._item = item
            self._cond.notify_all()
            return True

    def take(self, timeout: float | None = None) -> T | None:
        """Return the offered item, or None after ``timeout`` seconds or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake both sides for good: ``put`` returns False, ``take`` returns what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
