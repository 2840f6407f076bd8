"""Keep monocular depth's scale consistent from frame to frame before it is fused.

A monocular network's metric scale drifts from frame to frame; fused as is, a 0.8x frame puts
a second copy of every surface ~20 % nearer (a ghost ~1 m in front of a wall 5 m away). The
fix is to rescale each new depth so it agrees with what the map already holds (the map's depth
rendered from the new pose) or with the previous frame, on the pixels both see.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ConfigError

__all__ = ["consistent_scale", "MAX_LOG_DEVIATION"]

#: Pixels whose log ratio is farther than this from the median are outliers (new surfaces,
#: occlusions, the map's holes): exp(0.2) = 22 % off.
MAX_LOG_DEVIATION = 0.2


def consistent_scale(
    depth: npt.NDArray[np.floating],
    reference: npt.NDArray[np.floating],
    min_pixels: int = 500,
) -> tuple[float | None, int]:
    """Robust median of ``reference / depth`` over pixels valid in both, and the pixels used.

    Valid means finite and > 0. The median is taken twice: over every valid pair, then over the
    pairs within :data:`MAX_LOG_DEVIATION` (in log) of the first, so surfaces only one of them
    sees move it little. Returns ``(None, n)`` when fewer than ``min_pixels`` pairs remain.
    """
    d = np.asarray(depth, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if d.shape != r.shape:
        raise ConfigError(f"depth {d.shape} and reference {r.shape} must have the same shape")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & np.isfinite(r) & (d > 0) & (r > 0)
    n = int(valid.sum())
    if n < max(1, min_pixels):
        return None, n
    log_ratio = np.log(r[valid]) - np.log(d[valid])
    first = float(np.median(log_ratio))
    inliers = log_ratio[np.abs(log_ratio - first) <= MAX_LOG_DEVIATION]
    if inliers.size < max(1, min_pixels):
        return None, int(inliers.size)
    return float(np.exp(np.median(inliers))), int(inliers.size)
