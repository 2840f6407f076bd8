"""Depth image filters, and the one rule for which depth values are valid.

:func:`valid_depth_mask` / :func:`apply_depth_range` state, once for the whole package, which
depth values are usable (REP 118: finite and > 0; here also inside an inclusive
``[min_depth, max_depth]``). The model's output, the node's depth image, the point cloud and the
offline tools all apply this rule.

:func:`remove_flying_pixels` drops the "flying pixels" that a depth network (or a ToF/stereo
sensor) produces at object silhouettes: points interpolated between foreground and background
that float in mid-air in a point cloud. Like depth_image_proc / Isaac ROS edge filters it looks
at each pixel's 4- or 8-neighbours and invalidates the pixel when the depth jump is large
relative to depth.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ConfigError, EncodingError

__all__ = ["valid_depth_mask", "apply_depth_range", "remove_flying_pixels"]


def valid_depth_mask(
    depth: npt.NDArray[np.floating], min_depth: float = 0.0, max_depth: float = math.inf
) -> npt.NDArray[np.bool_]:
    """Where ``depth`` is usable: finite, > 0 and inside ``[min_depth, max_depth]`` (inclusive).

    NaN compares False with everything, so it fails the lower bound; ``+inf`` fails the upper
    bound even when ``max_depth`` is infinite (an infinitely far point is no measurement).
    """
    z = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        valid = (z >= z.dtype.type(min_depth)) if min_depth > 0.0 else (z > 0)
        if math.isfinite(max_depth):
            valid &= z <= z.dtype.type(max_depth)
        else:
            valid &= z < np.inf
    return np.asarray(valid, dtype=bool)


def apply_depth_range(
    depth: npt.NDArray[np.floating], min_depth: float = 0.0, max_depth: float = math.inf
) -> npt.NDArray[np.float32]:
    """``depth`` as float32 with NaN wherever :func:`valid_depth_mask` is False.

    Returns the input itself (no copy) when it is float32 and every pixel is valid, the common
    case for network output, so the per-frame path pays one comparison pass.
    """
    z = np.asarray(depth)
    z = z if z.dtype == np.float32 else z.astype(np.float32)
    valid = valid_depth_mask(z, min_depth, max_depth)
    if valid.all():
        return z
    return np.where(valid, z, np.float32(np.nan))


_OFFSETS_4 = ((0, 1), (1, 0))
_OFFSETS_8 = ((0, 1), (1, 0), (1, 1), (1, -1))


_Window = tuple[slice, slice]


def _pair_slices(dy: int, dx: int, h: int, w: int) -> tuple[_Window, _Window]:
    """Return slices ``a``, ``b`` so ``img[b]`` is the ``(dy, dx)`` neighbour of ``img[a]``."""
    a_rows, b_rows = slice(0, h - dy), slice(dy, h)
    if dx >= 0:
        a_cols, b_cols = slice(0, w - dx), slice(dx, w)
    else:
        a_cols, b_cols = slice(-dx, w), slice(0, w + dx)
    return (a_rows, a_cols), (b_rows, b_cols)


def remove_flying_pixels(
    depth: npt.NDArray[np.floating],
    threshold: float,
    connectivity: int = 8,
    keep_nearer: bool = False,
) -> npt.NDArray[np.float32]:
    """Return a float32 copy of ``depth`` with NaN at depth discontinuities.

    For each pair of neighbouring valid pixels (depths ``d1``, ``d2``, both finite and > 0) the
    relative jump is ``|d1 - d2| / min(d1, d2)``. When it exceeds ``threshold``:

    * ``keep_nearer=False`` (default): **both** pixels become NaN, so a one-pixel band on each
      side of every edge is removed; this also removes intermediate flying pixels, whose jump
      to either side is large.
    * ``keep_nearer=True``: only the farther pixel of the pair becomes NaN, so foreground
      silhouettes stay intact and the background (and flying pixels behind the foreground)
      lose the edge band.

    Using the smaller depth as the reference makes the test symmetric: a pixel is flagged
    against a neighbour exactly when the neighbour is flagged against it. Invalid pixels
    (NaN, <= 0) are never compared and stay as they are (non-positive ones become NaN).

    Parameters
    ----------
    depth
        ``H x W`` depth in metres.
    threshold
        relative jump above which a pair is a discontinuity (e.g. 0.05 = 5 %).
    connectivity
        4 (left/right/up/down) or 8 (plus diagonals).
    keep_nearer
        see above.

    """
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise EncodingError(f"depth must be an H x W array, got shape {arr.shape}")
    if not threshold > 0.0:
        raise ConfigError(
            f"flying pixel threshold must be > 0 (a relative depth jump), got {threshold}"
        )
    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity}")
    out = np.array(arr, dtype=np.float32, copy=True)
    out[~(out > 0.0)] = np.nan  # NaN and non-positive depths are invalid
    h, w = out.shape
    flagged = np.zeros((h, w), dtype=bool)
    thr = np.float32(threshold)
    for dy, dx in _OFFSETS_4 if connectivity == 4 else _OFFSETS_8:
        sa, sb = _pair_slices(dy, dx, h, w)
        a, b = out[sa], out[sb]
        near = np.fmin(a, b)
        with np.errstate(invalid="ignore"):
            jump = np.abs(a - b) > thr * near  # False wherever either is NaN
        if keep_nearer:
            flagged[sa] |= jump & (a > b)
            flagged[sb] |= jump & (b > a)
        else:
            flagged[sa] |= jump
            flagged[sb] |= jump
    out[flagged] = np.nan
    return out
