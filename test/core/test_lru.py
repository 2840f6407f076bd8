"""LruCache: builds what is missing once, keeps the most recently used, clears."""

from __future__ import annotations

import threading

import pytest

from recon3d_ros.core.lru import LruCache
from recon3d_ros.errors import ConfigError


def test_hits_do_not_rebuild_and_the_least_recently_used_goes_first():
    cache: LruCache[str, list[str]] = LruCache(2)
    built: list[str] = []

    def build(key: str) -> list[str]:
        built.append(key)
        return [key]

    a = cache.get("a", lambda: build("a"))
    assert cache.get("a", lambda: build("a")) is a
    cache.get("b", lambda: build("b"))
    cache.get("a", lambda: build("a"))  # a is now the most recent: b goes next
    cache.get("c", lambda: build("c"))
    assert len(cache) == 2
    assert cache.get("a", lambda: build("a")) is a
    cache.get("b", lambda: build("b"))
    assert built == ["a", "b", "c", "b"]
    cache.clear()
    assert len(cache) == 0
    assert cache.get("a", lambda: build("a")) is not a


def test_a_build_does_not_hold_the_lock():
    """A slow build of one key must not block a lookup of another (maps take milliseconds)."""
    cache: LruCache[str, str] = LruCache(4)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5.0)
        return "slow"

    worker = threading.Thread(target=lambda: cache.get("slow", slow))
    worker.start()
    assert started.wait(5.0)
    fast: list[str] = []
    lookup = threading.Thread(target=lambda: fast.append(cache.get("fast", lambda: "fast")))
    lookup.start()
    lookup.join(5.0)
    release.set()
    assert fast == ["fast"], "the lookup waited for another key's build"
    worker.join(5.0)
    assert cache.get("slow", lambda: "rebuilt") == "slow"


def test_size_must_be_positive():
    with pytest.raises(ConfigError, match="size"):
        LruCache(0)
