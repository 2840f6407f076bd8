"""Score a depth engine on RGB-D frames in three modes, next to two naive baselines.

Modes: ``metric`` (the prediction as is), ``median`` (per-image median scaling) and
``scale_shift`` (least-squares scale and shift in disparity space). Baselines: a constant depth
(the training data's median) and a ground-plane prior (a level camera at a typical height
looking at an infinite floor, capped at a maximum distance). A model that does not beat both
clearly has learnt nothing about the image.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import DatasetError
from recon3d_ros.evaluation.dataset import RgbdFrame
from recon3d_ros.inference.pipeline import FramePipeline

__all__ = [
    "MODES",
    "TRAIN_MEDIAN_DEPTH",
    "constant_baseline",
    "ground_plane_baseline",
    "score_prediction",
    "evaluate_frames",
    "evaluate_predictor",
]

MODES = ("metric", "median", "scale_shift")
# Median valid pixel depth (< 80 m) of the synthetic training frames (cache seeds 1e6.., measured):
# the constant baseline predicts it everywhere.
TRAIN_MEDIAN_DEPTH = 2.8
PLANE_HEIGHT = 1.5  # metres: a handheld / robot-mast camera
PLANE_CAP = 10.0  # metres: where the floor prior stops (horizon and above)


def constant_baseline(
    camera: PinholeCamera, depth: float = TRAIN_MEDIAN_DEPTH
) -> npt.NDArray[np.float32]:
    return np.full((camera.height, camera.width), depth, dtype=np.float32)


def ground_plane_baseline(
    camera: PinholeCamera, height: float = PLANE_HEIGHT, cap: float = PLANE_CAP
) -> npt.NDArray[np.float32]:
    """Z-depth of a floor ``height`` below a level camera, ``height * fy / (v - cy)``, capped."""
    v = np.arange(camera.height, dtype=np.float64)[:, None] - camera.cy
    with np.errstate(divide="ignore"):
        z = np.where(v > 0, height * camera.fy / np.maximum(v, 1e-9), cap)
    z = np.minimum(z, cap)
    return np.broadcast_to(z, (camera.height, camera.width)).astype(np.float32)


def score_prediction(
    pred: npt.NDArray[np.floating],
    gt: npt.NDArray[np.floating],
    min_depth: float,
    max_depth: float,
) -> dict[str, dict[str, float]]:
    """Metrics of one prediction in every mode (``nan`` values where a mode cannot be fitted)."""
    from recon3d_ros.core.metrics import (
        align_median,
        align_scale_shift_disparity,
        depth_metrics,
        valid_mask,
    )

    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, np.float32)
    mask = valid_mask(pred, gt, min_depth, max_depth)
    out: dict[str, dict[str, float]] = {"metric": depth_metrics(pred, gt, min_depth, max_depth)}
    out["median"] = depth_metrics(align_median(pred, gt, mask), gt, min_depth, max_depth)
    try:
        aligned = align_scale_shift_disparity(pred, gt, mask, input_is_disparity=False)
    except DatasetError:
        # A constant prediction has no unique scale: the least-squares answer is the shift alone,
        # i.e. the constant 1 / mean(1 / gt).
        aligned = np.full_like(pred, 1.0 / float(np.mean(1.0 / gt[mask].astype(np.float64))))
    out["scale_shift"] = depth_metrics(aligned, gt, min_depth, max_depth)
    return out


def _mean_modes(rows: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    result = {}
    for mode in MODES:
        keys = rows[0][mode].keys()
        result[mode] = {k: float(np.mean([r[mode][k] for r in rows])) for k in keys}
    return result


def evaluate_predictor(
    predict: Callable[[RgbdFrame], npt.NDArray[np.floating]],
    frames: Sequence[RgbdFrame],
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], list[npt.NDArray[np.float32]]]:
    """Score ``predict`` over ``frames``: mean metrics per mode, per-frame records, predictions."""
    if not frames:
        raise DatasetError("no frames to evaluate")
    rows, records, preds = [], [], []
    for fr in frames:
        pred = np.asarray(predict(fr), np.float32)
        if pred.shape != fr.depth_m.shape:
            import cv2

            pred = cv2.resize(
                pred, (fr.depth_m.shape[1], fr.depth_m.shape[0]), interpolation=cv2.INTER_LINEAR
            )
        scores = score_prediction(pred, fr.depth_m, min_depth, max_depth)
        rows.append(scores)
        records.append({"name": fr.name, **scores})
        preds.append(pred)
    return _mean_modes(rows), records, preds


def evaluate_frames(
    pipeline: FramePipeline,
    frames: Sequence[RgbdFrame],
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    baselines: bool = True,
    constant_depth: float = TRAIN_MEDIAN_DEPTH,
    plane_height: float = PLANE_HEIGHT,
    plane_cap: float = PLANE_CAP,
) -> dict[str, Any]:
    """Score what ``pipeline`` (the node's frame path) predicts on ``frames``, with the baselines.

    Returns ``{"metric": {...}, "median": {...}, "scale_shift": {...}, "frames": [...],
    "baselines": {...}}``.

    Mode objects hold means over frames; ``frames`` holds each frame's metrics in every mode plus
    its inference time; ``_predictions`` (not JSON) keeps the depth maps for plotting.
    """
    import time

    times: list[float] = []

    def model_predict(fr: RgbdFrame) -> npt.NDArray[np.float32]:
        t0 = time.perf_counter()
        depth = pipeline.process(fr.rgb, fr.camera).depth
        times.append((time.perf_counter() - t0) * 1e3)
        return depth

    means, records, preds = evaluate_predictor(model_predict, frames, min_depth, max_depth)
    for rec, ms in zip(records, times):
        rec["infer_ms"] = round(ms, 2)
    result: dict[str, Any] = {**means, "frames": records}
    if baselines:
        const, _, _ = evaluate_predictor(
            lambda fr: constant_baseline(fr.camera, constant_depth), frames, min_depth, max_depth
        )
        plane, _, _ = evaluate_predictor(
            lambda fr: ground_plane_baseline(fr.camera, plane_height, plane_cap),
            frames,
            min_depth,
            max_depth,
        )
        result["baselines"] = {
            "constant": {"depth_m": constant_depth, **const},
            "ground_plane": {"height_m": plane_height, "cap_m": plane_cap, **plane},
        }
    result["_predictions"] = preds
    return result
