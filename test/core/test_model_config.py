"""ModelConfig: preprocessing, the inverse mapping, and raw-output to metric depth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError
from recon3d_ros.core.model_config import ModelConfig, load_config_yaml

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


# ----------------------------------------------------------------------------- upstream knobs
def test_input_range_leaves_normalisation_to_the_graph():
    rgb = np.full((4, 4, 3), (255, 51, 0), dtype=np.uint8)
    cam = PinholeCamera(4, 4, 3.0, 3.0, 1.5, 1.5)
    unit = ModelConfig(input_width=4, input_height=4, input_range="0-1").preprocess(rgb, cam)
    np.testing.assert_allclose(unit.tensor[0, :, 0, 0], [1.0, 0.2, 0.0], rtol=1e-6)
    byte = ModelConfig(input_width=4, input_height=4, input_range="0-255").preprocess(rgb, cam)
    np.testing.assert_array_equal(byte.tensor[0, :, 0, 0], [255.0, 51.0, 0.0])


def test_letterbox_pads_with_the_pad_colour_in_the_graphs_units():
    # 8x4 into 8x8: rows 2..5 hold the image; the rest is the pad colour (uint8 canvas: rounded).
    cfg = ModelConfig(
        input_width=8, input_height=8, resize_mode="letterbox", input_range="0-255",
        pad_color=(123.675, 116.28, 103.53),
    )
    pre = cfg.preprocess(np.zeros((4, 8, 3), np.uint8), PinholeCamera(8, 4, 5.0, 5.0, 3.5, 1.5))
    np.testing.assert_array_equal(pre.tensor[0, :, 0, 0], [124.0, 116.0, 104.0])
    np.testing.assert_array_equal(pre.tensor[0, :, 4, 4], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(cfg.pad_value, [124.0, 116.0, 104.0])


def test_letterbox_floor_rounding_truncates_the_content_size_like_int():
    # 1001x700 into 1064x616: scale 0.88, width 880.88 -> int 880 (round would give 881).
    floor = ModelConfig(input_width=1064, input_height=616, resize_mode="letterbox",
                        size_rounding="floor").input_transform(1001, 700)
    near = ModelConfig(input_width=1064, input_height=616, resize_mode="letterbox")
    assert (floor.content_width, floor.left) == (880, 92)
    assert near.input_transform(1001, 700).content_width == 881


@pytest.mark.parametrize(
    "size, expected",
    [((640, 480), (504, 378)), ((1920, 1080), (504, 280)), ((480, 640), (378, 504))],
)
def test_keep_aspect_long_matches_depth_anything_3s_rule(size, expected):
    # DA3 input_processor: longer side 504 (round), then the nearest multiple of 14 (ties up):
    # 1920x1080 -> 504x283.5 -> 284 -> 280.
    cfg = ModelConfig(resize_mode="keep_aspect_long", long_side=504, multiple_of=14)
    t = cfg.input_transform(*size)
    assert (t.dst_width, t.dst_height) == expected


@pytest.mark.parametrize(
    "size, expected",
    [((640, 480), (686, 518)), ((320, 240), (518, 392)), ((1920, 1080), (924, 518))],
)
def test_keep_aspect_nearest_scales_as_little_as_possible(size, expected):
    # transformers DPT: 320x240 towards 518x518 takes the width scale (1.62, nearer 1 than 2.16).
    cfg = ModelConfig(input_width=518, input_height=518, resize_mode="keep_aspect_nearest",
                      multiple_of=14)
    t = cfg.input_transform(*size)
    assert (t.dst_width, t.dst_height) == expected


def test_keep_aspect_never_goes_below_the_shorter_side():
    # Resize(lower_bound): 511 rounds down to 504 < 511, so it is ceiled to 518.
    cfg = ModelConfig(resize_mode="keep_aspect", short_side=511, multiple_of=14)
    assert cfg.input_transform(511, 511).dst_height == 518


def test_float_resize_keeps_cubic_overshoot_that_uint8_clips():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, 4:] = 255
    cam = PinholeCamera(8, 8, 5.0, 5.0, 3.5, 3.5)
    kwargs = {"input_width": 20, "input_height": 20, "interpolation": "cubic",
              "input_range": "0-255"}
    as_float = ModelConfig(resize_dtype="float32", **kwargs).preprocess(rgb, cam).tensor
    as_uint8 = ModelConfig(**kwargs).preprocess(rgb, cam).tensor
    assert as_float.max() > 255.5 and as_float.min() < -0.5
    assert as_uint8.max() == 255.0 and as_uint8.min() == 0.0


def test_focal_rule_mean_of_fx_and_fy():
    cfg = ModelConfig(input_width=4, input_height=2, canonical_focal=300.0,
                      focal_rule="mean_fx_fy")
    cam = PinholeCamera(4, 2, 600.0, 300.0, 1.5, 0.5)
    pre = cfg.preprocess(np.zeros((2, 4, 3), np.uint8), cam)
    depth = cfg.postprocess(np.full((2, 4), 2.0, np.float32), pre)
    np.testing.assert_allclose(depth, 2.0 * 450.0 / 300.0, rtol=1e-6)


def test_sky_mask_follows_depth_anything_3s_threshold():
    cfg = ModelConfig(sky_output_name="sky", sky_threshold=0.3)
    np.testing.assert_array_equal(
        cfg.sky_mask(np.array([0.0, 0.29, 0.3, 0.9, np.nan])), [False, False, True, True, True]
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"interpolation": "lanczos"},
        {"input_range": "0-65535"},
        {"focal_rule": "fy"},
        {"resize_mode": "keep_aspect_long"},
        {"pad_color": (0, 0, 300)},
        {"pad_color": (0, 0)},
        {"resize_dtype": "float16"},
        {"multiple_of": 0},
    ],
)
def test_invalid_upstream_knobs_are_rejected(bad):
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(bad)
