"""ModelConfig: preprocessing, the inverse mapping, and raw-output to metric depth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.config import ModelConfig, load_config_yaml

CAM = PinholeCamera(width=64, height=48, fx=50.0, fy=50.0, cx=31.5, cy=23.5)


def test_preprocess_normalises_with_mean_and_std():
    cfg = ModelConfig(input_width=32, input_height=24, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    rgb = np.full((48, 64, 3), (255, 0, 51), dtype=np.uint8)
    pre = cfg.preprocess(rgb, CAM)
    assert pre.tensor.shape == (1, 3, 24, 32)
    assert pre.tensor.dtype == np.float32
    np.testing.assert_allclose(pre.tensor[0, 0], (1.0 - 0.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(pre.tensor[0, 1], (0.0 - 0.25) / 0.25, rtol=1e-6)
    np.testing.assert_allclose(pre.tensor[0, 2], 51 / 255.0, rtol=1e-5)


def test_stretch_net_camera_scales_intrinsics():
    cfg = ModelConfig(input_width=32, input_height=24)
    pre = cfg.preprocess(np.zeros((48, 64, 3), np.uint8), CAM)
    assert pre.net_camera.fx == pytest.approx(25.0)
    assert pre.net_camera.cx == pytest.approx((31.5 + 0.5) * 0.5 - 0.5)


def test_letterbox_postprocess_removes_padding():
    # A 64x32 image letterboxed into 32x32 occupies rows 8..23; the raw map encodes the row index.
    cam = PinholeCamera(64, 32, 40.0, 40.0, 31.5, 15.5)
    cfg = ModelConfig(input_width=32, input_height=32, resize_mode="letterbox")
    pre = cfg.preprocess(np.zeros((32, 64, 3), np.uint8), cam)
    assert (pre.transform.top, pre.transform.content_height) == (8, 16)
    raw = np.repeat(np.arange(32, dtype=np.float32)[:, None] + 1.0, 32, axis=1)
    raw[:8] = 1000.0  # padding rows must never leak into the output
    raw[24:] = 1000.0
    depth = cfg.postprocess(raw, pre)
    assert depth.shape == (32, 64)
    assert np.nanmax(depth) <= 24.0
    assert np.nanmin(depth) >= 9.0


def test_canonical_focal_rescales_with_the_network_focal_length():
    cfg = ModelConfig(input_width=32, input_height=24, canonical_focal=100.0)
    raw = np.full((24, 32), 2.0, np.float32)
    pre_a = cfg.preprocess(np.zeros((48, 64, 3), np.uint8), CAM)
    wide = PinholeCamera(64, 48, 100.0, 100.0, 31.5, 23.5)
    pre_b = cfg.preprocess(np.zeros((48, 64, 3), np.uint8), wide)
    # Net focal 25 px vs 50 px: the same raw output means twice the depth for the longer lens.
    np.testing.assert_allclose(cfg.postprocess(raw, pre_a), 2.0 * 25.0 / 100.0)
    np.testing.assert_allclose(cfg.postprocess(raw, pre_b), 2.0 * 50.0 / 100.0)


def test_relative_inverse_depth_uses_scale_and_shift_and_marks_nonpositive_invalid():
    cfg = ModelConfig(
        input_width=4,
        input_height=2,
        output_kind="relative_inverse_depth",
        depth_scale=0.5,
        depth_shift=0.1,
    )
    cam = PinholeCamera(4, 2, 3.0, 3.0, 1.5, 0.5)
    pre = cfg.preprocess(np.zeros((2, 4, 3), np.uint8), cam)
    raw = np.array([[1.0, 2.0, 3.0, -1.0], [0.0, 1.0, 1.0, 1.0]], np.float32)
    depth = cfg.postprocess(raw, pre)
    assert depth[0, 0] == pytest.approx(1.0 / 0.6)
    assert depth[0, 2] == pytest.approx(1.0 / 1.6)
    assert math.isnan(depth[0, 3])
    assert depth[1, 0] == pytest.approx(10.0)


def test_disparity_uses_focal_times_baseline():
    cfg = ModelConfig(input_width=4, input_height=2, output_kind="disparity", baseline=0.1)
    cam = PinholeCamera(4, 2, 30.0, 30.0, 1.5, 0.5)
    pre = cfg.preprocess(np.zeros((2, 4, 3), np.uint8), cam)
    depth = cfg.postprocess(np.full((2, 4), 3.0, np.float32), pre)
    np.testing.assert_allclose(depth, 30.0 * 0.1 / 3.0, rtol=1e-6)


def test_max_depth_invalidates_far_pixels():
    cfg = ModelConfig(input_width=2, input_height=1, max_depth=5.0)
    cam = PinholeCamera(2, 1, 1.0, 1.0, 0.5, 0.0)
    pre = cfg.preprocess(np.zeros((1, 2, 3), np.uint8), cam)
    depth = cfg.postprocess(np.array([[4.0, 6.0]], np.float32), pre)
    assert depth[0, 0] == pytest.approx(4.0)
    assert math.isnan(depth[0, 1])


def test_output_size_override_resizes_output():
    cfg = ModelConfig(input_width=32, input_height=24)
    pre = cfg.preprocess(np.zeros((48, 64, 3), np.uint8), CAM)
    depth = cfg.postprocess(np.ones((24, 32), np.float32), pre, width=16, height=12)
    assert depth.shape == (12, 16)


def test_keep_aspect_rounds_to_multiple():
    cfg = ModelConfig(resize_mode="keep_aspect", short_side=518, multiple_of=14)
    t = cfg.input_transform(640, 480)
    assert t.dst_height == 518 and t.dst_width % 14 == 0
    assert abs(t.dst_width - 640 * 518 / 480) <= 7


@pytest.mark.parametrize(
    "bad",
    [
        {"resize_mode": "crop"},
        {"output_kind": "normals"},
        {"std": (0.0, 1.0, 1.0)},
        {"output_kind": "disparity"},
        {"min_depth": 5.0, "max_depth": 1.0},
        {"resize_mode": "keep_aspect"},
        {"not_a_field": 1},
    ],
)
def test_invalid_configs_are_rejected(bad):
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(bad)


def test_dict_round_trip_and_yaml_sidecar(tmp_path):
    cfg = ModelConfig(
        name="x", input_width=128, input_height=96, canonical_focal=500.0, max_depth=20.0
    )
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    inf_cfg = ModelConfig.from_dict(ModelConfig().to_dict())
    assert math.isinf(inf_cfg.max_depth)
    path = tmp_path / "m.yaml"
    path.write_text(
        "model:\n  input_width: 64\n  input_height: 48\n  output_kind: relative_inverse_depth\n"
    )
    loaded = load_config_yaml(path)
    assert (loaded.input_width, loaded.output_kind) == (64, "relative_inverse_depth")
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError):
        load_config_yaml(path)
