"""Evaluation: perfect predictions score perfectly, baselines are what they say, JSON shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.evaluation.dataset import RgbdFrame
from recon3d_ros.evaluation.evaluate import (
    MODES,
    constant_baseline,
    evaluate_frames,
    ground_plane_baseline,
    score_prediction,
)
from recon3d_ros.inference.engine import StageTimings
from recon3d_ros.inference.pipeline import FramePipeline


def _frames():
    rng = np.random.default_rng(0)
    cam = PinholeCamera(16, 12, 20.0, 20.0, 7.5, 5.5)
    out = []
    for i in range(2):
        depth = rng.uniform(1.0, 5.0, (12, 16)).astype(np.float32)
        depth[0, :3] = np.nan
        out.append(RgbdFrame(np.zeros((12, 16, 3), np.uint8), depth, cam, str(i)))
    return out


class _OracleEngine:
    """A depth engine that predicts the ground truth (times ``scale``)."""

    def __init__(self, frames, scale=1.0):
        self.by_id = {id(f.rgb): f for f in frames}
        self.scale = scale
        self.timings = StageTimings()

    def infer(self, rgb, camera, output_size=None):
        gt = self.by_id[id(rgb)].depth_m
        return np.where(np.isfinite(gt), gt * self.scale, 3.0).astype(np.float32)


def _Oracle(frames, scale=1.0):  # noqa: N802 - reads like the engine it wraps
    return FramePipeline(_OracleEngine(frames, scale))


def test_perfect_prediction_is_perfect_in_every_mode():
    frames = _frames()
    res = evaluate_frames(_Oracle(frames), frames)
    for mode in MODES:
        assert res[mode]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
        assert res[mode]["rmse"] == pytest.approx(0.0, abs=1e-5)
        assert res[mode]["delta1"] == 1.0
    assert len(res["frames"]) == 2 and res["frames"][0]["name"] == "0"


def test_scaled_prediction_is_fixed_by_alignment_only():
    frames = _frames()
    res = evaluate_frames(_Oracle(frames, 2.0), frames)
    assert res["metric"]["abs_rel"] == pytest.approx(1.0, rel=1e-5)
    assert res["median"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert res["scale_shift"]["abs_rel"] == pytest.approx(0.0, abs=1e-5)


def test_result_is_json_serialisable_with_baselines():
    frames = _frames()
    res = evaluate_frames(_Oracle(frames), frames, constant_depth=2.5)
    preds = res.pop("_predictions")
    assert len(preds) == 2 and preds[0].shape == (12, 16)
    text = json.dumps(res)
    back = json.loads(text)
    assert set(back) == {"metric", "median", "scale_shift", "frames", "baselines"}
    assert set(back["baselines"]) == {"constant", "ground_plane"}
    assert back["baselines"]["constant"]["depth_m"] == 2.5
    for key in (
        "abs_rel",
        "sq_rel",
        "rmse",
        "rmse_log",
        "mae",
        "mse",
        "delta1",
        "delta2",
        "delta3",
    ):
        assert key in back["metric"]


def test_constant_baseline_scores():
    frames = _frames()
    res = evaluate_frames(_Oracle(frames), frames, constant_depth=3.0)
    gt = np.concatenate([f.depth_m[np.isfinite(f.depth_m)] for f in frames])
    # Per-frame means averaged; both frames have the same valid count, so the pooled mean matches.
    assert res["baselines"]["constant"]["metric"]["abs_rel"] == pytest.approx(
        np.mean(np.abs(3.0 - gt) / gt), rel=1e-5
    )


def test_ground_plane_baseline_geometry():
    cam = PinholeCamera(8, 9, 10.0, 10.0, 3.5, 4.0)
    z = ground_plane_baseline(cam, height=1.5, cap=10.0)
    assert z.shape == (9, 8)
    assert z[8, 0] == pytest.approx(1.5 * 10.0 / 4.0)  # 4 rows below the horizon
    assert z[0, 0] == 10.0 and z[4, 0] == 10.0  # at and above the horizon: the cap
    assert np.all(np.diff(z[5:, 0]) < 0)  # nearer towards the bottom of the image
    assert np.all(constant_baseline(cam, 2.0) == 2.0)


def test_score_prediction_handles_a_constant_in_scale_shift_mode():
    gt = np.array([[1.0, 2.0], [4.0, 4.0]], np.float32)
    s = score_prediction(np.full_like(gt, 7.0), gt, 1e-3, 80.0)
    # The least-squares shift-only fit of a constant in disparity space: 1 / mean(1 / gt).
    best = 1.0 / np.mean(1.0 / gt)
    assert s["scale_shift"]["mae"] == pytest.approx(np.mean(np.abs(best - gt)), rel=1e-5)


def test_constant_reference_on_kinect_room():
    """Reference: a constant 2.5 m scores AbsRel 0.42 and delta1 0.33 on kinect_room."""
    from pathlib import Path

    from recon3d_ros.evaluation.dataset import load_rgbd_folder

    folder = (
        Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rgbd" / "kinect_room"
    )
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (shared evaluation data lives outside the repo)")
    frames = load_rgbd_folder(folder)
    res = evaluate_frames(_Oracle(frames), frames, constant_depth=2.5)
    const = res["baselines"]["constant"]["metric"]
    assert const["abs_rel"] == pytest.approx(0.42, abs=0.01)
    assert const["delta1"] == pytest.approx(0.33, abs=0.01)
