"""The floor a message fill is judged by: a plain copy of the same number of bytes, timed now.

Building a 640x480 xyzrgb cloud writes 4.9 MB; how fast that can be depends on the machine's
memory bandwidth and on what else runs, so figures are given as a ratio to a memcpy of the same
byte count measured in the same run (``benchmarks/bench_pointcloud.py``, ``recon3d bench``).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from recon3d_ros.errors import ConfigError

__all__ = ["memcpy_ms"]


def memcpy_ms(nbytes: int, repeat: int = 20) -> float:
    """Median milliseconds of copying ``nbytes`` between two already-written buffers.

    Both buffers are written once before timing, so the figure is the copy alone: a copy into
    fresh memory would add its page faults and flatter any ratio taken against it.
    """
    if nbytes < 0 or repeat < 1:
        raise ConfigError(f"need nbytes >= 0 and repeat >= 1, got {nbytes} and {repeat}")
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.zeros(nbytes, dtype=np.uint8)
    np.copyto(dst, src)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(dst, src)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)
