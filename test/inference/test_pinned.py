"""Pinned host buffers: reused while the shape stays, and the staged GPU round trip.

Runs on the CPU (no page-locking there: ``pin=False``, a stand-in stream); the CUDA path
itself is covered by the torch and TensorRT runner tests on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.inference.pinned import PinnedBuffer, PinnedStaging  # noqa: E402


class CountingStream:
    """Stands in for a CUDA stream: counts the waits."""

    def __init__(self) -> None:
        self.waits = 0

    def synchronize(self) -> None:
        self.waits += 1


def test_buffer_is_reused_until_the_shape_or_dtype_changes():
    buf = PinnedBuffer(pin=False)
    first = buf.get((2, 3), torch.float32)
    assert buf.get((2, 3), torch.float32) is first
    assert tuple(buf.get((4, 3), torch.float32).shape) == (4, 3)
    assert buf.get((4, 3), torch.uint8).dtype == torch.uint8


def test_staging_runs_the_function_and_returns_a_copy_after_one_wait():
    staging = PinnedStaging(pin=False)
    stream = CountingStream()
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    out = staging.run(x, "cpu", stream, lambda t: t[:, :1] * 2.0)
    np.testing.assert_array_equal(out, x[:, :1] * 2.0)
    assert stream.waits == 1
    again = staging.run(x + 1.0, "cpu", stream, lambda t: t[:, :1] * 2.0)
    np.testing.assert_array_equal(out, x[:, :1] * 2.0)  # not overwritten by the next frame
    np.testing.assert_array_equal(again, (x[:, :1] + 1.0) * 2.0)
