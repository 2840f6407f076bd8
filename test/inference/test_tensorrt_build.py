"""TensorRT engine building: optimisation profiles and int8 calibration input (no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.inference.tensorrt_build import calibration_batches, profile_shapes


def test_profiles_for_fixed_and_camera_dependent_inputs():
    fixed = ModelConfig(input_width=320, input_height=240, resize_mode="letterbox")
    assert profile_shapes(fixed) == ((1, 3, 240, 320),) * 3
    dynamic = ModelConfig(resize_mode="keep_aspect", short_side=518, multiple_of=14)
    lo, opt, hi = profile_shapes(dynamic, image_sizes=[(640, 480), (1242, 375)])
    assert opt == (1, 3, 518, 686)  # 640x480 -> 690.7 -> multiple of 14
    assert (
        lo[2:] == (518, 686)
        and hi[2] == 518
        and hi[3] == dynamic.input_transform(1242, 375).dst_width
    )
    lo, opt, hi = profile_shapes(dynamic)
    assert lo == (1, 3, 518, 518) and hi == (1, 3, 1036, 1036)
    assert all(d % 14 == 0 for d in opt[2:])
    assert profile_shapes(dynamic, static_hw=(518, 518)) == ((1, 3, 518, 518),) * 3


def test_calibration_batches_use_the_model_preprocessing():
    config = ModelConfig(input_width=64, input_height=48, resize_mode="letterbox")
    images = [np.full((120, 200, 3), v, np.uint8) for v in (0, 255)]
    batches = list(calibration_batches(config, images))
    assert [b.shape for b in batches] == [(1, 3, 48, 64)] * 2
    # A white frame normalises to (1 - mean) / std in the content rows, padding stays black.
    white = batches[1]
    assert white[0, 0, 24, 32] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert white[0, 0, 0, 32] == pytest.approx(-0.485 / 0.229, rel=1e-5)


def test_static_onnx_input_size_is_read_from_the_file(tiny, modules):
    pytest.importorskip("onnx")
    from recon3d_ros.inference.tensorrt_build import onnx_static_hw

    static = tiny.onnx(modules["conv"](), "static.onnx", size=(40, 56), dynamic=False)
    dynamic = tiny.onnx(modules["conv"](), "dynamic.onnx", size=(40, 56))
    assert onnx_static_hw(static, None) == (40, 56)
    assert onnx_static_hw(static, "image") == (40, 56)
    assert onnx_static_hw(dynamic, None) == (None, None)
