"""Standard surface reconstruction metrics between a predicted and a ground-truth point set.

accuracy: distances from each predicted point to the nearest ground-truth point (mean, median);
completeness: from each ground-truth point to the nearest predicted point; Chamfer distance:
the mean of the two means; precision / recall / F-score at a threshold: the share of predicted
(ground-truth) points within it of the other set, and their harmonic mean (Knapitsch et al.,
Tanks and Temples, 2017).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ReconstructionError
from recon3d_ros.reconstruction._open3d import open3d

__all__ = ["nearest_distances", "surface_metrics"]


def _points(points: npt.NDArray[np.floating], what: str) -> npt.NDArray[np.float64]:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    p = p[np.isfinite(p).all(axis=1)]
    if p.shape[0] == 0:
        raise ReconstructionError(f"{what} has no finite point; metrics need both point sets")
    return p


def nearest_distances(
    query: npt.NDArray[np.floating], target: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Distance from each ``query`` point to its nearest ``target`` point."""
    q, t = _points(query, "query"), _points(target, "target")
    try:
        from scipy.spatial import cKDTree  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        o3d = open3d()
        qc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(q))
        tc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(t))
        return np.asarray(qc.compute_point_cloud_distance(tc), dtype=np.float64)
    dist, _ = cKDTree(t).query(q, k=1)
    return np.asarray(dist, dtype=np.float64)


def surface_metrics(
    pred_points: npt.NDArray[np.floating],
    gt_points: npt.NDArray[np.floating],
    thresholds: Sequence[float] = (0.02, 0.05),
) -> dict[str, Any]:
    """Accuracy, completeness, Chamfer and precision / recall / F-score per threshold (metres).

    Keys: ``accuracy_mean``, ``accuracy_median``, ``completeness_mean``,
    ``completeness_median``, ``chamfer``, ``pred_points``, ``gt_points`` and, per threshold
    ``t`` in cm (e.g. ``2cm``), ``precision_2cm``, ``recall_2cm``, ``fscore_2cm``.
    """
    to_gt = nearest_distances(pred_points, gt_points)
    to_pred = nearest_distances(gt_points, pred_points)
    out: dict[str, Any] = {
        "accuracy_mean": float(to_gt.mean()),
        "accuracy_median": float(np.median(to_gt)),
        "completeness_mean": float(to_pred.mean()),
        "completeness_median": float(np.median(to_pred)),
        "chamfer": float((to_gt.mean() + to_pred.mean()) / 2.0),
        "pred_points": int(to_gt.size),
        "gt_points": int(to_pred.size),
    }
    for t in thresholds:
        name = f"{t * 100:g}cm"
        precision = float((to_gt <= t).mean())
        recall = float((to_pred <= t).mean())
        total = precision + recall
        out[f"precision_{name}"] = precision
        out[f"recall_{name}"] = recall
        out[f"fscore_{name}"] = 2 * precision * recall / total if total > 0 else 0.0
    return out
