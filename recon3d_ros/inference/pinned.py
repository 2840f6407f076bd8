"""Host buffers in page-locked (pinned) memory, reused frame after frame.

A copy between the GPU and pageable host memory is synchronous and staged by the driver;
from pinned memory it runs asynchronously on a stream at full bus speed. Allocating pinned
memory is slow, so each buffer is kept while the frame shape stays the same (cameras rarely
change resolution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

__all__ = ["PinnedBuffer", "PinnedStaging"]


class PinnedBuffer:
    """One host tensor, pinned when ``pin`` (a CUDA machine), reallocated on a new shape."""

    def __init__(self, pin: bool = True) -> None:
        self.pin = pin
        self._tensor: torch.Tensor | None = None

    def get(self, shape: tuple[int, ...], dtype: "torch.dtype") -> "torch.Tensor":
        """Return a tensor of ``shape`` and ``dtype``; its contents are the last frame's."""
        import torch

        buf = self._tensor
        if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
            buf = self._tensor = torch.empty(shape, dtype=dtype, pin_memory=self.pin)
        return buf


class PinnedStaging:
    """Run a GPU function on a float32 host array: pinned upload, run, pinned download, wait."""

    def __init__(self, pin: bool = True) -> None:
        self.host_in = PinnedBuffer(pin)
        self.host_out = PinnedBuffer(pin)

    def run(
        self,
        array: npt.NDArray[np.float32],
        device: str,
        stream: Any,
        run_torch: Callable[["torch.Tensor"], "torch.Tensor"],
    ) -> npt.NDArray[np.float32]:
        """``run_torch`` on ``array`` uploaded to ``device``; all copies queue on ``stream``.

        Returns a new array: the pinned output buffer is reused by the next call.
        """
        import torch

        host_in = self.host_in.get(array.shape, torch.float32)
        host_in.numpy()[...] = array
        with torch.inference_mode(), torch.cuda.stream(stream):
            out = run_torch(host_in.to(device, non_blocking=True))
            host_out = self.host_out.get(tuple(out.shape), torch.float32)
            host_out.copy_(out, non_blocking=True)
            stream.synchronize()
        result: npt.NDArray[np.float32] = host_out.numpy().copy()
        return result
