"""PNG panels for ``recon3d eval --out``.

Per frame: image | ground truth | prediction | error; and a bar chart of AbsRel / delta1 for
the model and the baselines (OpenCV drawing only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["colorize_depth", "frame_panel", "summary_plot"]


def colorize_depth(depth: npt.NDArray[np.floating], lo: float, hi: float) -> npt.NDArray[np.uint8]:
    """BGR turbo colouring on a log scale between ``lo`` and ``hi`` metres; black where invalid."""
    import cv2

    d = np.asarray(depth, np.float32)
    valid = np.isfinite(d) & (d > 0)
    t = np.zeros_like(d)
    t[valid] = (np.log(np.clip(d[valid], lo, hi)) - np.log(lo)) / max(
        1e-6, np.log(hi) - np.log(lo)
    )
    img = cv2.applyColorMap((t * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[~valid] = 0
    return img


def _label(img: npt.NDArray[np.uint8], text: str) -> npt.NDArray[np.uint8]:
    import cv2

    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def frame_panel(
    rgb: npt.NDArray[np.uint8],
    gt: npt.NDArray[np.floating],
    pred: npt.NDArray[np.floating],
    scores: dict[str, float],
    title: str,
) -> npt.NDArray[np.uint8]:
    """One row: the image, the ground truth, the prediction and the relative error (0 to 50 %)."""
    import cv2

    valid_gt = gt[np.isfinite(gt) & (gt > 0)]
    lo, hi = (
        (float(np.percentile(valid_gt, 1)), float(np.percentile(valid_gt, 99)))
        if valid_gt.size
        else (0.5, 10.0)
    )
    lo, hi = max(0.1, lo * 0.8), max(hi * 1.2, lo * 1.5)
    gt_img = colorize_depth(gt, lo, hi)
    if (
        valid_gt.size and valid_gt.size < 0.2 * gt.size
    ):  # sparse LiDAR: fatten the points to be seen
        gt_img = cv2.dilate(gt_img, np.ones((3, 3), np.uint8))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(pred - gt) / gt
    err = np.clip(np.nan_to_num(rel, nan=0.0) / 0.5, 0, 1)
    err_img = cv2.applyColorMap((err * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    err_img[~(np.isfinite(rel))] = 0
    tiles = [
        _label(np.ascontiguousarray(rgb[..., ::-1]), title),
        _label(gt_img, f"ground truth {lo:.1f}-{hi:.1f} m"),
        _label(
            colorize_depth(pred, lo, hi),
            f"prediction  AbsRel {scores['abs_rel']:.3f}  d1 {scores['delta1']:.2f}",
        ),
        _label(err_img, "|error| / depth, 0-50%"),
    ]
    return np.concatenate(tiles, axis=1)


def summary_plot(rows: Sequence[tuple[str, dict[str, Any]]], path: str | Path) -> Path:
    """Draw a bar chart of AbsRel and delta1 per set.

    For each (set name, eval result): metric-mode figures of the model and both baselines, plus
    the model's median-scaled ones.
    """
    import cv2

    series = [
        ("model", (40, 160, 40)),
        ("median-scaled", (160, 200, 60)),
        ("constant", (60, 60, 200)),
        ("ground plane", (200, 120, 40)),
    ]
    bar_w, gap, group_pad = 18, 4, 40
    metrics = ("abs_rel", "delta1")
    group_w = len(series) * (bar_w + gap) + group_pad
    width = max(600, 80 + len(rows) * len(metrics) * group_w)
    height = 360
    img = np.full((height, width, 3), 255, np.uint8)
    base, top = height - 60, 40
    cv2.line(img, (60, base), (width - 10, base), (0, 0, 0), 1)
    for k in range(6):
        y = int(base - (base - top) * k / 5)
        cv2.putText(
            img,
            f"{k / 5:.1f}",
            (20, y + 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        cv2.line(img, (58, y), (width - 10, y), (220, 220, 220), 1)
    x = 70
    for name, res in rows:
        for metric in metrics:
            values = [
                res["metric"][metric],
                res["median"][metric],
                res.get("baselines", {}).get("constant", {}).get("metric", {}).get(metric, np.nan),
                res.get("baselines", {})
                .get("ground_plane", {})
                .get("metric", {})
                .get(metric, np.nan),
            ]
            for (label, color), v in zip(series, values):
                if np.isfinite(v):
                    h = int((base - top) * min(1.0, float(v)))
                    cv2.rectangle(img, (x, base - h), (x + bar_w, base), color, -1)
                x += bar_w + gap
            cv2.putText(
                img,
                f"{name}",
                (x - group_w + group_pad - 6, base + 18),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
            cv2.putText(
                img,
                metric,
                (x - group_w + group_pad - 6, base + 34),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (80, 80, 80),
                1,
                cv2.LINE_AA,
            )
            x += group_pad
    lx = 70
    for label, color in series:
        cv2.rectangle(img, (lx, 12), (lx + 12, 24), color, -1)
        cv2.putText(
            img, label, (lx + 16, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
        lx += 30 + 9 * len(label)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path
