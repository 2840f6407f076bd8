"""The engine interface, the suffix -> backend table and the pipeline engine's stages."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import ModelLoadError
from recon3d_ros.inference.engine import (
    BACKEND_SUFFIXES,
    BACKENDS,
    DepthEngine,
    PipelineEngine,
    StageTimings,
    backend_for_path,
)


class ConstantRunner:
    """A runner whose raw output is 2.0 everywhere (no network, no runtime)."""

    name, device, precision = "fake", "cpu", "fp32"

    def load(self) -> None:
        self.loaded = True

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return tensor[:, :1] * 0.0 + 2.0


@pytest.mark.parametrize(
    "name, backend",
    [
        ("net.pt", "torch"),
        ("net.PTH", "torch"),
        ("net.ts", "torch"),
        ("net.onnx", "onnxruntime"),  # tensorrt takes it too, but only when asked for
        ("net.engine", "tensorrt"),
        ("net.plan", "tensorrt"),
    ],
)
def test_default_backend_of_each_suffix(name, backend):
    assert backend_for_path(name) == backend
    assert name.lower()[name.rfind("."):] in BACKEND_SUFFIXES[backend]


def test_unknown_suffix_names_every_known_one():
    with pytest.raises(ModelLoadError) as info:
        backend_for_path("weights.bin")
    for suffix in (".pt", ".pth", ".ts", ".onnx", ".engine", ".plan"):
        assert f"'{suffix}'" in str(info.value)
    assert set(BACKEND_SUFFIXES) == set(BACKENDS)


def test_pipeline_engine_is_a_depth_engine_with_output_size_and_timings():
    config = ModelConfig(input_width=8, input_height=6)
    engine = PipelineEngine(ConstantRunner(), config)
    assert isinstance(engine, DepthEngine)
    assert "output_size" in inspect.signature(DepthEngine.infer).parameters
    rgb = np.zeros((12, 16, 3), np.uint8)
    depth = engine.infer(rgb, PinholeCamera.from_fov(16, 12, 60.0), output_size=(4, 3))
    assert depth.shape == (3, 4) and np.all(depth == 2.0)
    assert isinstance(engine.timings, StageTimings) and engine.timings.inference_ms >= 0.0
    assert (engine.backend, engine.device, engine.precision) == ("fake", "cpu", "fp32")


def test_gpu_pipeline_engine_is_a_depth_engine():
    pytest.importorskip("torch")
    from recon3d_ros.inference.gpu_pipeline import GpuPipelineEngine

    engine = GpuPipelineEngine(ConstantRunner(), ModelConfig())  # type: ignore[arg-type]
    assert isinstance(engine, DepthEngine)
