"""Keep freed megabyte buffers in the process for reuse (glibc malloc; no rclpy, no launch).

Why: every large message costs a process several fresh buffers of its size (the Python
message's ``data``, rmw's C message, the serialized payload). glibc serves a request above its
mmap threshold (128 KiB at start, raised by itself only up to the size of the last freed
block) with a new ``mmap`` and returns it with ``munmap`` on free, and it trims freed memory at
the top of the heap once more than twice that threshold is free. So each 4.9 MB cloud is
page-faulted in again, 1,200 faults of 4 KiB, each zeroed by the kernel. Measured here (2-core
VM, a 640x480 xyzrgb cloud at 30 Hz between two rclpy processes with the shipped DDS profile):
a subscriber used 14.7-18.0 ms of CPU per message, mostly ``memcpy`` into fresh pages, and
6.4 ms with the thresholds below; stamp-to-receipt fell from 16-21 ms to 9.7 ms (p50).

What: an mmap threshold of 32 MiB (the largest glibc accepts on 64-bit: its
``DEFAULT_MMAP_THRESHOLD_MAX``), so buffers up to a 1280x720 xyzrgb cloud (14.7 MB) come from
the heap and are reused; and a trim threshold of 128 MiB, so up to that much freed heap stays
mapped. Cost: a process may keep up to 128 MiB of freed memory per malloc arena (one per thread
that allocates) instead of returning it. Larger buffers (a 1920x1080 xyzrgb cloud is 33.2 MB)
are still mapped per use.

How: the node executables call :func:`keep_large_buffers` before ``rclpy.init`` (``mallopt``,
this process only); the launch files, the demo/bench harness and the benchmarks put
:data:`TUNABLES` in ``GLIBC_TUNABLES`` of the processes they start (:func:`apply_tunables`),
so rviz2 started by the launch file gets it too. A subscriber started elsewhere (Nav2, your
own rviz2) gets it from ``GLIBC_TUNABLES`` in its environment (README "Performance"). Malloc
settings of the user's own (``glibc.malloc.*`` in ``GLIBC_TUNABLES``, ``MALLOC_*_`` variables)
win: nothing is changed then. Elsewhere than glibc (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Mapping, MutableMapping

__all__ = [
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "TUNABLES",
    "TUNABLES_ENV",
    "user_tunes_malloc",
    "tunables_for",
    "apply_tunables",
    "keep_large_buffers",
]

TUNABLES_ENV = "GLIBC_TUNABLES"
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 128 * 1024 * 1024
TUNABLES = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
            f"glibc.malloc.trim_threshold={TRIM_THRESHOLD}")
# glibc's older spelling of the same settings (mallopt(3)), still read at start-up.
_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
               "MALLOC_MMAP_MAX_")
# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _is_glibc_linux() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def user_tunes_malloc(env: Mapping[str, str]) -> bool:
    """Return True when ``env`` already holds malloc settings of its own (those win)."""
    tunables = env.get(TUNABLES_ENV, "")
    return "glibc.malloc." in tunables or any(env.get(k, "").strip() for k in _MALLOC_ENV)


def tunables_for(env: Mapping[str, str], requested: bool = True) -> str | None:
    """Return the ``GLIBC_TUNABLES`` value a child started with ``env`` should get, or None.

    None (leave it alone) when not ``requested``, off glibc Linux, or when ``env`` tunes malloc
    itself. Tunables of other glibc parts already in ``env`` are kept, ours appended.
    """
    if not requested or not _is_glibc_linux() or user_tunes_malloc(env):
        return None
    existing = env.get(TUNABLES_ENV, "").strip().strip(":")
    return f"{existing}:{TUNABLES}" if existing else TUNABLES


def apply_tunables(env: MutableMapping[str, str], requested: bool = True) -> str | None:
    """Set ``GLIBC_TUNABLES`` in ``env`` as :func:`tunables_for` decides; returns what it set."""
    value = tunables_for(env, requested)
    if value is not None:
        env[TUNABLES_ENV] = value
    return value


def keep_large_buffers(env: Mapping[str, str] | None = None) -> bool:
    """Apply the thresholds to this process with ``mallopt``; True when they were applied.

    Affects allocations from now on, so call it first thing in ``main``. Does nothing (False)
    off glibc Linux or when ``env`` (default: this process's environment) tunes malloc.
    """
    if not _is_glibc_linux() or user_tunes_malloc(os.environ if env is None else env):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # a static or unusual libc: leave malloc as it is
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting either fixes both thresholds (no dynamic ones).
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
