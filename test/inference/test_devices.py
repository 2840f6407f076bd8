"""Device strings and precision rules."""

from __future__ import annotations

import pytest

from recon3d_ros.errors import BackendUnavailableError, ConfigError
from recon3d_ros.inference.devices import cuda_index, resolve_device, validate_precision


@pytest.mark.parametrize(
    ("device", "has_cuda", "expected"),
    [
        ("auto", True, "cuda:0"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("CUDA", True, "cuda:0"),
        ("cuda:2", True, "cuda:2"),
        (" cpu ", False, "cpu"),
    ],
)
def test_resolve_device(device, has_cuda, expected):
    assert resolve_device(device, cuda_is_available=has_cuda) == expected


def test_cuda_without_gpu_is_an_error_not_a_silent_cpu_fallback():
    with pytest.raises(BackendUnavailableError, match="cuda:1"):
        resolve_device("cuda:1", cuda_is_available=False)


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "tpu", ""])
def test_invalid_device_strings(bad):
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device(bad, cuda_is_available=True)


def test_cuda_index():
    assert cuda_index("cuda:3") == 3 and cuda_index("cuda") == 0
    with pytest.raises(ConfigError):
        cuda_index("cpu")


def test_precision_rules():
    assert validate_precision("FP16", "tensorrt", "cuda:0") == "fp16"
    assert validate_precision("int8", "tensorrt", "cuda:0") == "int8"
    assert validate_precision("bf16", "torch", "cpu") == "bf16"
    with pytest.raises(ConfigError, match="int8"):
        validate_precision("int8", "torch", "cuda:0")
    with pytest.raises(ConfigError, match="CUDA"):
        validate_precision("fp16", "torch", "cpu")
    with pytest.raises(ConfigError, match="precision must be"):
        validate_precision("fp8", "torch", "cpu")
