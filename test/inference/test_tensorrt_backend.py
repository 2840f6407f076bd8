"""TensorRT backend: engine cache keying and profiles everywhere; build/run where TensorRT is."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest

from recon3d_ros.errors import BackendUnavailableError
from recon3d_ros.inference.config import ModelConfig
from recon3d_ros.inference.tensorrt_backend import (
    EngineKey,
    engine_cache_paths,
    file_sha256,
    find_cached_engine,
    profile_shapes,
    store_engine,
)

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

KEY = EngineKey("ab" * 32, "NVIDIA Jetson Orin", "8.7", "10.3.0", "fp16", ((1, 3, 518, 518),) * 3)


@pytest.mark.parametrize(
    "change",
    [
        {"model_sha256": "cd" * 32},
        {"gpu_name": "NVIDIA H100"},
        {"compute_capability": "9.0"},
        {"tensorrt_version": "8.6.2"},
        {"precision": "int8"},
        {"input_shapes": ((1, 3, 518, 700),) * 3},
        {"calibration": "16:abcd"},
    ],
)
def test_every_key_field_changes_the_digest(change):
    other = dataclasses.replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert dataclasses.replace(KEY).digest() == KEY.digest()  # same fields -> same key


def test_cache_roundtrip_and_stale_files_are_not_loaded(tmp_path):
    model = tmp_path / "net.onnx"
    cache = tmp_path / "cache"
    assert find_cached_engine(cache, model, KEY) is None
    path = store_engine(cache, model, KEY, b"engine-bytes")
    assert find_cached_engine(cache, model, KEY) == path and path.read_bytes() == b"engine-bytes"
    assert not list(cache.glob("*.tmp*")), "atomic write leaves no temporary files"
    # Same file name but a key recorded for another TensorRT version: stale, never loaded.
    _, meta = engine_cache_paths(cache, model, KEY)
    recorded = json.loads(meta.read_text())
    recorded["tensorrt_version"] = "8.6.1"
    meta.write_text(json.dumps(recorded))
    assert find_cached_engine(cache, model, KEY) is None
    meta.unlink()
    assert find_cached_engine(cache, model, KEY) is None  # no key file: not trusted either
    # Another precision lives next to it without clashing.
    fp32 = dataclasses.replace(KEY, precision="fp32")
    assert engine_cache_paths(cache, model, fp32)[0] != path


def test_file_hash_tracks_content(tmp_path):
    a = tmp_path / "a.onnx"
    a.write_bytes(b"x" * 3_000_000)
    first = file_sha256(a)
    a.write_bytes(b"x" * 2_999_999 + b"y")
    assert file_sha256(a) != first and len(first) == 64


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


def test_calibration_batches_use_the_model_preprocessing():
    from recon3d_ros.inference.tensorrt_backend import calibration_batches

    config = ModelConfig(input_width=64, input_height=48, resize_mode="letterbox")
    images = [np.full((120, 200, 3), v, np.uint8) for v in (0, 255)]
    batches = list(calibration_batches(config, images))
    assert [b.shape for b in batches] == [(1, 3, 48, 64)] * 2
    # A white frame normalises to (1 - mean) / std in the content rows, padding stays black.
    white = batches[1]
    assert white[0, 0, 24, 32] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert white[0, 0, 0, 32] == pytest.approx(-0.485 / 0.229, rel=1e-5)


def test_given_engine_built_elsewhere_is_refused(tmp_path):
    from recon3d_ros.errors import ModelLoadError
    from recon3d_ros.inference.tensorrt_backend import check_engine_record

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    assert (
        check_engine_record(engine, "Orin", "8.7", "10.3.0") == {}
    )  # no record: TensorRT decides
    record = {
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "tensorrt_version": "10.3.0",
        "precision": "fp16",
    }
    (tmp_path / "m.engine.json").write_text(json.dumps(record))
    assert check_engine_record(engine, "Orin", "8.7", "10.3.0")["precision"] == "fp16"
    with pytest.raises(ModelLoadError, match="rebuild"):
        check_engine_record(engine, "NVIDIA RTX 4090", "8.9", "10.3.0")
    with pytest.raises(ModelLoadError, match="8.6.2"):
        check_engine_record(engine, "Orin", "8.7", "8.6.2")
