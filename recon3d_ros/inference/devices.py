"""Device and precision choice for the inference backends.

``device`` is ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. ``"auto"`` means CUDA when this
process can use a GPU, else the CPU; it is resolved once, when a runner is created, and the
result is reported back (``runner.device``) so the node can log what it actually got.
"""

from __future__ import annotations

import re

from recon3d_ros.errors import BackendUnavailableError, ConfigError

__all__ = [
    "PRECISIONS",
    "BACKEND_PRECISIONS",
    "cuda_available",
    "resolve_device",
    "validate_precision",
    "cuda_index",
]

PRECISIONS = ("fp32", "fp16", "bf16", "int8")

# What each backend can honour. int8 needs a calibrated TensorRT engine; bf16 is a torch feature.
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "fp16"),
    "tensorrt": ("fp32", "fp16", "int8"),
}

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def cuda_available() -> bool:
    """Whether a CUDA GPU is usable from this process (torch's view; False without torch)."""
    try:
        import torch
    except ImportError:
        return _onnxruntime_has_cuda()
    return bool(torch.cuda.is_available())


def _onnxruntime_has_cuda() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_device(device: str = "auto", *, cuda_is_available: bool | None = None) -> str:
    """``"auto"``/``"cpu"``/``"cuda"``/``"cuda:N"`` to a concrete ``"cpu"`` or ``"cuda:N"``.

    ``cuda_is_available`` overrides the probe (for backends that know better, and tests).
    Asking for CUDA where there is none raises :class:`BackendUnavailableError` instead of
    silently running on the CPU at a tenth of the expected rate.
    """
    text = str(device).strip().lower()
    if not _DEVICE_RE.match(text):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if text == "cpu":
        return "cpu"
    available = cuda_available() if cuda_is_available is None else cuda_is_available
    if text == "auto":
        return "cuda:0" if available else "cpu"
    if not available:
        raise BackendUnavailableError(
            f"device {device!r} was requested but no CUDA GPU is usable here (no GPU, no "
            "driver, or "
            "a CPU-only torch/onnxruntime build); install the CUDA build of the runtime or set "
            "device to 'cpu' or 'auto'"
        )
    return text if ":" in text else "cuda:0"


def cuda_index(device: str) -> int:
    """GPU ordinal of a resolved ``"cuda:N"`` device."""
    if not device.startswith("cuda"):
        raise ConfigError(f"{device!r} is not a CUDA device")
    return int(device.split(":", 1)[1]) if ":" in device else 0


def validate_precision(precision: str, backend: str, device: str) -> str:
    """Check ``precision`` is one ``backend`` can run on the (resolved) ``device``."""
    text = str(precision).strip().lower()
    if text not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    allowed = BACKEND_PRECISIONS.get(backend, PRECISIONS)
    if text not in allowed:
        hint = " (int8 needs the tensorrt backend and a calibration set)" if text == "int8" else ""
        raise ConfigError(
            f"backend {backend!r} cannot run precision {text!r}{hint}; choose one of {allowed}"
        )
    if text == "fp16" and device == "cpu" and backend == "torch":
        raise ConfigError(
            "precision 'fp16' needs a CUDA device with the torch backend; on the CPU use 'fp32' "
            "(or 'bf16' on CPUs with AVX512-BF16/AMX)"
        )
    return text
