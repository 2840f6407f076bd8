"""TensorRT engine cache: keys, atomic stores, stale entries and records of given engines."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from recon3d_ros.errors import ModelLoadError
from recon3d_ros.inference.tensorrt_cache import (
    EngineKey,
    calibration_fingerprint,
    check_engine_record,
    engine_cache_paths,
    find_cached_engine,
    store_engine,
    write_engine_record,
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


def test_given_engine_built_elsewhere_is_refused(tmp_path):
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


def test_written_record_is_what_the_check_reads(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    record = write_engine_record(engine, KEY)
    assert record == tmp_path / "m.engine.json"
    assert check_engine_record(engine, KEY.gpu_name, "8.7", "10.3.0")["precision"] == "fp16"
    with pytest.raises(ModelLoadError, match="NVIDIA H100"):
        check_engine_record(engine, "NVIDIA H100", "8.7", "10.3.0")


def test_calibration_fingerprint_counts_and_hashes_the_pixels():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert calibration_fingerprint([black, white]).startswith("2:")
    assert calibration_fingerprint([black, white]) == calibration_fingerprint([black, white])
    assert calibration_fingerprint([black, white]) != calibration_fingerprint([white, black])
