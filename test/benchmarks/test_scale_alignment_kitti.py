"""Sparse scale alignment on the real KITTI frame (skipped where the shared data is absent)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.inference.scale import fit_scale_shift, project_points

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale_alignment_kitti.py"
KITTI = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd" / "kitti"

pytestmark = pytest.mark.skipif(
    not (KITTI / "000008.bin").is_file(), reason=f"KITTI sample frame not found at {KITTI}"
)


def _load():
    spec = importlib.util.spec_from_file_location("scale_alignment_kitti", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lidar_projects_into_the_colour_camera_as_documented():
    rgb, camera, points, extrinsic = _load().load_frame(KITTI)
    assert rgb.shape == (375, 1242, 3) and camera.fx == pytest.approx(721.5377)
    u, v, z = project_points(points, extrinsic, camera)
    # The data README: about 17k points land inside the image, depth 2.6 m to 76.6 m.
    assert 16_000 < z.size < 18_500
    assert z.min() == pytest.approx(2.6, abs=0.1) and z.max() == pytest.approx(76.6, abs=0.2)
    # Ground returns sit in the lower image: far points are higher up (smaller v) on average.
    near, far = v[z < 10].mean(), v[z > 40].mean()
    assert near > far


def test_held_out_points_after_alignment_match_the_lidar():
    _, camera, points, extrinsic = _load().load_frame(KITTI)
    _, _, z = project_points(points, extrinsic, camera)
    rng = np.random.default_rng(0)
    disp = (1.0 / z - 0.004) / 0.043 * (1.0 + 0.03 * rng.standard_normal(z.size))
    reference = z.copy()
    bad = rng.random(z.size) < 0.15
    reference[bad] = rng.uniform(1.0, 5.0, bad.sum())
    fit_half, eval_half = np.arange(z.size) % 2 == 0, np.arange(z.size) % 2 == 1
    fit = fit_scale_shift(disp[fit_half], reference[fit_half])
    assert fit is not None
    pred = fit.apply(disp[eval_half])
    abs_rel = np.mean(np.abs(pred - z[eval_half]) / z[eval_half])
    assert abs_rel < 0.04  # 3 % noise on the prediction sets the floor
