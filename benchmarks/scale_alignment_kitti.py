"""How close sparse-LiDAR scale alignment gets a relative depth map on a real KITTI frame.

Half of the LiDAR points (projected into the colour camera) fit the scale and shift; the other
half measure the result. Two predictions are evaluated:

* ``synthetic``: a relative disparity made from the LiDAR ground truth itself with a known
  wrong scale and shift, 5 % multiplicative noise and 10 % gross outliers in the *reference*
  (stated so: it shows the estimator, not a network);
* ``model``: the packaged default network's depth, treated as relative (when it is installed).

Usage: python benchmarks/scale_alignment_kitti.py [--data /work/shared/data/rgbd/kitti]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import Recon3dError
from recon3d_ros.inference.scale import (
    apply_scale_shift,
    disparity_from_depth,
    fit_scale_shift,
    project_points,
    sample_at,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rgbd" / "kitti"


def load_frame(folder: Path) -> tuple[np.ndarray, PinholeCamera, np.ndarray, np.ndarray]:
    """RGB image, camera, LiDAR points (N x 3, LiDAR frame) and the LiDAR -> camera 4x4."""
    import cv2

    calib = json.loads((folder / "000008_calib.json").read_text())
    p = np.asarray(calib["cam2img"], dtype=np.float64)
    k = p[:3, :3]
    # cam2img = K [R|t] of the colour camera relative to the reference camera: recover t.
    t = np.linalg.solve(k, p[:3, 3])
    cam_from_ref = np.eye(4)
    cam_from_ref[:3, 3] = t
    extrinsic = cam_from_ref @ np.asarray(calib["lidar2cam"], dtype=np.float64)
    bgr = cv2.imread(str(folder / "000008.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(folder / "000008.png")
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    camera = PinholeCamera(rgb.shape[1], rgb.shape[0], k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    points = np.fromfile(folder / "000008.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    return rgb, camera, points, extrinsic


def metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(pred) & (pred > 0)
    p, g = pred[ok], gt[ok]
    ratio = np.maximum(p / g, g / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "rmse_m": float(np.sqrt(np.mean((p - g) ** 2))),
        "delta1": float(np.mean(ratio < 1.25)),
        "valid": float(ok.mean()),
    }


def least_squares(d: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    a = np.stack([d, np.ones_like(d)], axis=1)
    s, b = np.linalg.lstsq(a, 1.0 / z, rcond=None)[0]
    return float(s), float(b)


def evaluate(
    name: str,
    disp: np.ndarray,
    z_fit_ref: np.ndarray,
    fit_idx: np.ndarray,
    eval_idx: np.ndarray,
    z_true: np.ndarray,
) -> None:
    valid = np.isfinite(disp) & (disp > 0)
    if not valid.all():
        print(f"\n[{name}] prediction valid (finite, in range) at {valid.mean():.1%} of points")
    fit_idx, eval_idx = fit_idx[valid[fit_idx]], eval_idx[valid[eval_idx]]
    print(f"\n[{name}] fit on {fit_idx.size} points, evaluated on {eval_idx.size} held-out points")
    rows: list[tuple[str, dict[str, float], str]] = []
    raw = np.where(disp[eval_idx] > 0, 1.0 / disp[eval_idx], np.nan)
    rows.append(("unaligned (1/disparity)", metrics(raw, z_true[eval_idx]), ""))
    med = np.nanmedian(z_fit_ref[fit_idx] * disp[fit_idx])  # median depth ratio on the fit half
    rows.append(("median scaling", metrics(raw * med, z_true[eval_idx]), f"factor {med:.4g}"))
    s_ls, b_ls = least_squares(disp[fit_idx], z_fit_ref[fit_idx])
    rows.append(
        (
            "plain least squares",
            metrics(apply_scale_shift(disp[eval_idx], s_ls, b_ls), z_true[eval_idx]),
            f"s={s_ls:.4g} b={b_ls:.4g}",
        )
    )
    for label, scale_only in (("robust scale+shift", False), ("robust scale only", True)):
        fit = fit_scale_shift(disp[fit_idx], z_fit_ref[fit_idx], scale_only=scale_only)
        if fit is None:
            rows.append(
                (
                    label,
                    {"abs_rel": np.nan, "rmse_m": np.nan, "delta1": np.nan, "valid": 0.0},
                    "no fit",
                )
            )
            continue
        rows.append(
            (
                label,
                metrics(fit.apply(disp[eval_idx]), z_true[eval_idx]),
                f"s={fit.scale:.4g} b={fit.shift:.4g} inliers={fit.inliers}",
            )
        )
    print(f"  {'method':26s} {'AbsRel':>8s} {'RMSE m':>8s} {'d<1.25':>7s}  notes")
    for label, m, note in rows:
        print(f"  {label:26s} {m['abs_rel']:8.4f} {m['rmse_m']:8.3f} {m['delta1']:7.3f}  {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--model", default="default", help="model for the 'model' run (preset or file)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.data / "000008.bin").is_file():
        print(f"KITTI frame not found in {args.data}; pass --data", file=sys.stderr)
        return 2
    rgb, camera, points, extrinsic = load_frame(args.data)
    u, v, z = project_points(points, extrinsic, camera)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(z.size)
    half = z.size // 2
    fit_idx, eval_idx = np.sort(order[:half]), np.sort(order[half:])
    print(
        f"KITTI 000008: {z.size} LiDAR points in the {camera.width}x{camera.height} image, "
        f"depth {z.min():.1f}-{z.max():.1f} m"
    )

    # Synthetic relative prediction: wrong scale/shift, 5 % noise; 10 % of the reference corrupted.
    true_scale, true_shift = 0.043, 0.004
    disp_syn = (1.0 / z - true_shift) / true_scale * (1.0 + 0.05 * rng.standard_normal(z.size))
    z_ref = z.copy()
    corrupt = rng.random(z.size) < 0.10
    z_ref[corrupt] = rng.uniform(
        1.0, 5.0, corrupt.sum()
    )  # e.g. points seen through the windscreen
    print(
        f"synthetic: relative disparity = (1/z - {true_shift}) / {true_scale} x (1 + 5% noise); "
        f"{corrupt.mean():.0%} of the reference depths replaced by 1-5 m outliers"
    )
    evaluate("synthetic relative disparity", disp_syn, z_ref, fit_idx, eval_idx, z)

    try:
        from recon3d_ros.inference.loader import load_engine

        engine = load_engine(args.model, device="cpu")
    except Recon3dError as exc:
        print(f"\n[model] skipped: {exc}")
        return 0
    depth = engine.infer(rgb, camera)
    disp_model = sample_at(disparity_from_depth(depth), u, v)
    print(
        f"\nmodel {args.model!r}: {engine.config.name}, {engine.config.output_kind}, "
        f"input {engine.config.input_width}x{engine.config.input_height} "
        f"({engine.config.resize_mode})"
    )
    evaluate(f"model {args.model}", disp_model, z, fit_idx, eval_idx, z)
    return 0


if __name__ == "__main__":
    sys.exit(main())
