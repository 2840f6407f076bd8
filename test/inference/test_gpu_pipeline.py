"""Torch pre/post-processing (the GPU frame path), checked on the CPU against the numpy path."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.inference.engine import PipelineEngine  # noqa: E402
from recon3d_ros.inference.gpu_pipeline import (  # noqa: E402
    GpuPipelineEngine,
    preprocess_torch,
    to_metric_torch,
)
from recon3d_ros.inference.torch_backend import TorchRunner  # noqa: E402

CAMERA = PinholeCamera(120, 80, 110.0, 110.0, 59.5, 39.5)


def _smooth_image(width: int = 120, height: int = 80) -> np.ndarray:
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rgb = np.stack([u * 255 / width, v * 255 / height, (u + v) * 127 / (width + height)], axis=-1)
    return rgb.astype(np.uint8)


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "keep_aspect"])
def test_preprocess_matches_numpy_on_a_smooth_image(mode):
    config = ModelConfig(
        input_width=64, input_height=64, resize_mode=mode, short_side=56, multiple_of=14
    )
    rgb = _smooth_image()
    pre = config.preprocess(rgb, CAMERA)
    ours = preprocess_torch(torch.from_numpy(rgb), pre.transform, config).numpy()
    assert ours.shape == pre.tensor.shape
    # Different resampling (INTER_AREA vs antialiased bilinear): equal up to ~2 grey levels.
    np.testing.assert_allclose(ours, pre.tensor, atol=2.5 / (255 * 0.224))


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(
            output_kind="metric_depth", depth_scale=2.0, canonical_focal=500.0, max_depth=40.0
        ),
        ModelConfig(
            output_kind="relative_inverse_depth", depth_scale=0.5, depth_shift=-0.1, min_depth=0.2
        ),
        ModelConfig(output_kind="disparity", baseline=0.12),
    ],
)
def test_to_metric_torch_equals_numpy(config):
    raw = np.random.default_rng(0).uniform(-1.0, 20.0, (30, 40)).astype(np.float32)
    raw[0, :5] = [0.0, np.nan, np.inf, -np.inf, 1e-9]
    expected = config.to_metric(raw, CAMERA)
    ours = to_metric_torch(torch.from_numpy(raw), config, CAMERA).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours[~np.isnan(ours)], expected[~np.isnan(expected)], rtol=1e-6)


@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
def test_gpu_engine_equals_numpy_engine_on_positional_output(modules, mode):
    config = ModelConfig(input_width=64, input_height=64, resize_mode=mode, canonical_focal=50.0)
    runner = TorchRunner.from_module(modules["ramp"](), config, device="cpu")
    cpu_engine = PipelineEngine(runner, config)
    gpu_engine = GpuPipelineEngine(runner, config)
    rgb = _smooth_image()
    expected = cpu_engine.infer(rgb, CAMERA)
    got = gpu_engine.infer(rgb, CAMERA)
    assert got.shape == (80, 120)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    resized = gpu_engine.infer(rgb, CAMERA, output_size=(60, 40))
    np.testing.assert_allclose(
        resized, cpu_engine.infer(rgb, CAMERA, output_size=(60, 40)), rtol=1e-5
    )
    assert gpu_engine.timings.inference_ms >= 0.0 and not math.isnan(
        gpu_engine.timings.postprocess_ms
    )


def test_infer_torch_returns_the_same_depth_as_a_tensor(modules):
    config = ModelConfig(input_width=64, input_height=64, resize_mode="letterbox")
    runner = TorchRunner.from_module(modules["ramp"](), config, device="cpu")
    engine = GpuPipelineEngine(runner, config)
    rgb = _smooth_image()
    tensor = engine.infer_torch(rgb, CAMERA)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.device.type == "cpu" and tuple(tensor.shape) == (80, 120)
    np.testing.assert_array_equal(tensor.numpy(), engine.infer(rgb, CAMERA))
