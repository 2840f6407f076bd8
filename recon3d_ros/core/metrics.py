"""Monocular depth evaluation metrics and the standard alignments.

The metric definitions follow Eigen et al. (2014) as used by the KITTI/NYU benchmarks, MiDaS,
ZoeDepth and Depth Anything evaluations:

* ``abs_rel = mean(|p - g| / g)``, ``sq_rel = mean((p - g)^2 / g)``
* ``mae = mean(|p - g|)``, ``mse = mean((p - g)^2)``, ``rmse = sqrt(mse)``
* ``rmse_log = sqrt(mean((ln p - ln g)^2))``
* ``delta_k = fraction of max(p / g, g / p) < 1.25^k`` for k = 1, 2, 3

Relative-depth models are aligned to ground truth before scoring: by a median scale
(:func:`align_median`, monodepth2 style) or by a least-squares scale and shift in disparity
space (:func:`align_scale_shift_disparity`, MiDaS / Depth Anything style).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import DatasetError

__all__ = [
    "DELTA_BASE",
    "METRIC_NAMES",
    "valid_mask",
    "depth_metrics",
    "align_median",
    "align_scale_shift_disparity",
]

DELTA_BASE = 1.25
METRIC_NAMES = (
    "abs_rel", "sq_rel", "rmse", "rmse_log", "mae", "mse", "delta1", "delta2", "delta3",
    "valid_pixels",
)


def _same_shape(pred: npt.NDArray[Any], gt: npt.NDArray[Any]) -> None:
    if pred.shape != gt.shape:
        raise DatasetError(
            f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}; resize "
            "the prediction to the ground-truth resolution before scoring"
        )


def valid_mask(
    pred: npt.NDArray[np.floating],
    gt: npt.NDArray[np.floating],
    min_depth: float = 1e-3,
    max_depth: float = math.inf,
) -> npt.NDArray[np.bool_]:
    """Pixels where ``min_depth < gt < max_depth`` (finite) and ``pred`` is finite and > 0."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    _same_shape(pred, gt)
    with np.errstate(invalid="ignore"):
        mask: npt.NDArray[np.bool_] = (
            np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred) & (pred > 0)
        )
    return mask


def depth_metrics(
    pred: npt.NDArray[np.floating],
    gt: npt.NDArray[np.floating],
    min_depth: float = 1e-3,
    max_depth: float = math.inf,
    mask: npt.NDArray[np.bool_] | None = None,
) -> dict[str, float]:
    """Compute the standard depth metrics over the valid pixels (see module doc) in float64.

    ``mask`` optionally restricts the evaluation further (e.g. the Eigen crop).

    Raises
    ------
    DatasetError
        shapes differ or no pixel is valid.

    """
    valid = valid_mask(pred, gt, min_depth, max_depth)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        _same_shape(mask, valid)
        valid &= mask
    n = int(valid.sum())
    if n == 0:
        raise DatasetError(
            f"no valid pixel to evaluate: ground truth must be finite in ({min_depth}, "
            f"{max_depth}) m where the prediction is finite and > 0; check the depth scale "
            "(millimetres vs metres) and the invalid-depth value of the dataset"
        )
    p = np.asarray(pred, dtype=np.float64)[valid]
    g = np.asarray(gt, dtype=np.float64)[valid]
    diff = p - g
    sq = diff * diff
    ratio = np.maximum(p / g, g / p)
    log_diff = np.log(p) - np.log(g)
    mse = float(sq.mean())
    return {
        "abs_rel": float((np.abs(diff) / g).mean()),
        "sq_rel": float((sq / g).mean()),
        "rmse": math.sqrt(mse),
        "rmse_log": math.sqrt(float((log_diff * log_diff).mean())),
        "mae": float(np.abs(diff).mean()),
        "mse": mse,
        "delta1": float((ratio < DELTA_BASE).mean()),
        "delta2": float((ratio < DELTA_BASE**2).mean()),
        "delta3": float((ratio < DELTA_BASE**3).mean()),
        "valid_pixels": float(n),
    }


def _fit_mask(
    pred: npt.NDArray[Any],
    gt: npt.NDArray[Any],
    mask: npt.NDArray[Any] | None,
    pred_positive: bool,
) -> npt.NDArray[np.bool_]:
    _same_shape(pred, gt)
    with np.errstate(invalid="ignore"):
        m: npt.NDArray[np.bool_] = np.isfinite(gt) & (gt > 0) & np.isfinite(pred)
        if pred_positive:
            m &= pred > 0
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        _same_shape(mask, m)
        m &= mask
    if not m.any():
        raise DatasetError(
            "no pixel to align on: the mask, the ground truth (finite, > 0) and the "
            "prediction (finite) have no pixel in common"
        )
    return m


def align_median(
    pred: npt.NDArray[np.floating],
    gt: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float32]:
    """``pred * median(gt) / median(pred)`` with medians over ``mask`` (and valid pixels).

    Raises
    ------
    DatasetError
        no common valid pixel.

    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    m = _fit_mask(pred, gt, mask, pred_positive=True)
    scale = float(np.median(gt[m].astype(np.float64))) / float(
        np.median(pred[m].astype(np.float64))
    )
    return (pred.astype(np.float64) * scale).astype(np.float32)


def align_scale_shift_disparity(
    pred: npt.NDArray[np.floating],
    gt: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | None,
    input_is_disparity: bool,
    depth_cap: float | None = None,
) -> npt.NDArray[np.float32]:
    """Least-squares ``s, t`` with ``s * pred_disp + t ~ 1 / gt``; returns the aligned **depth**.

    ``pred`` is a disparity / relative inverse depth (``input_is_disparity=True``) or a depth
    (inverted first; non-positive depths are left out of the fit and come back NaN). As in the
    MiDaS evaluation, aligned disparities below ``1 / depth_cap`` (including non-positive ones,
    which a shift can produce) are clamped to it, so the output depth is finite, positive and at
    most ``depth_cap``; ``depth_cap`` defaults to the largest ground-truth depth in the fit.

    Raises
    ------
    DatasetError
        fewer than 2 pixels to fit, or a constant prediction (no unique scale).

    """
    pred64 = np.asarray(pred, dtype=np.float64)
    gt64 = np.asarray(gt, dtype=np.float64)
    if input_is_disparity:
        disp = pred64
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            disp = np.where(pred64 > 0, 1.0 / pred64, np.nan)
    fit = _fit_mask(disp, gt64, mask, pred_positive=False)
    x = disp[fit]
    y = 1.0 / gt64[fit]
    if x.size < 2 or np.ptp(x) == 0.0:
        raise DatasetError(
            f"cannot fit scale and shift on {x.size} pixel(s) with a prediction range of "
            f"{float(np.ptp(x)) if x.size else 0.0}: the prediction is constant over the mask"
        )
    a = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, y, rcond=None)
    cap = float(gt64[fit].max()) if depth_cap is None else float(depth_cap)
    if not cap > 0:
        raise DatasetError(f"depth_cap must be > 0, got {cap}")
    aligned = scale * disp + shift
    with np.errstate(invalid="ignore"):
        aligned = np.where(np.isfinite(aligned), np.maximum(aligned, 1.0 / cap), np.nan)
    return (1.0 / aligned).astype(np.float32)
