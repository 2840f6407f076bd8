"""TensorRT backend: a clear error without TensorRT; build, cache and run where TensorRT is."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import BackendUnavailableError

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


needs_trt_gpu = pytest.mark.skipif(
    not (HAS_TRT and _cuda()), reason="needs TensorRT and a CUDA GPU (neither is installed here)"
)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_missing_tensorrt_names_backend_and_install(tmp_path):
    from recon3d_ros.inference.engine import create_runner

    with pytest.raises(BackendUnavailableError) as info:
        create_runner("tensorrt", tmp_path / "m.onnx", ModelConfig(), "auto", "fp16")
    assert "tensorrt" in str(info.value) and "pip install tensorrt" in str(info.value)


@needs_trt_gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_cache_and_run_matches_onnxruntime(tiny, modules, tmp_path, precision):
    from recon3d_ros.inference.onnx_backend import OnnxRunner
    from recon3d_ros.inference.tensorrt_backend import TensorRTRunner

    config = ModelConfig(input_width=64, input_height=48)
    path = tiny.onnx(modules["conv"](), "net.onnx")
    runner = TensorRTRunner(
        path, config, device="cuda", precision=precision, cache_dir=tmp_path / "c"
    )
    runner.load()
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 64)).astype(np.float32)
    ref = OnnxRunner(path, config, device="cpu")
    ref.load()
    tol = 1e-4 if precision == "fp32" else 2e-2
    np.testing.assert_allclose(runner.run(x), ref.run(x), rtol=tol, atol=tol)
    again = TensorRTRunner(
        path, config, device="cuda", precision=precision, cache_dir=tmp_path / "c"
    )
    again.load()
    assert again.engine_path == runner.engine_path  # cache hit, no rebuild
