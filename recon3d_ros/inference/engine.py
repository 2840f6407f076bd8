"""The depth-engine interface and the backend registry.

A backend only runs a network (``NetworkRunner``: a normalised NCHW array in, a raw map out).
:class:`PipelineEngine` wraps any runner with its model's :class:`ModelConfig` pre/post
processing, so every backend yields the same thing: metric depth on the image's pixel grid.
:class:`DepthEngine` is that interface, what the node and the frame pipeline take;
:class:`PipelineEngine` and its GPU twin
(:class:`~recon3d_ros.inference.gpu_pipeline.GpuPipelineEngine`) implement it.
Backends are named in :data:`BACKENDS` and imported lazily, so a missing runtime (TensorRT on a
laptop, ONNX Runtime on a minimal robot image) only matters when that backend is asked for;
:data:`BACKEND_SUFFIXES` says which model files each one runs.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import BackendUnavailableError, ConfigError, ModelLoadError

__all__ = [
    "DepthEngine",
    "NetworkRunner",
    "PipelineEngine",
    "StageTimings",
    "BACKENDS",
    "BACKEND_SUFFIXES",
    "CPU_THREAD_OPTIONS",
    "backend_for_path",
    "create_runner",
]


@dataclass
class StageTimings:
    """Wall-clock milliseconds of the last ``infer`` call, per stage."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0


@runtime_checkable
class DepthEngine(Protocol):
    """Metric depth from RGB: ``load()`` once, then ``infer()`` per frame.

    ``timings`` holds the stages of the last :meth:`infer` call; ``backend``, ``device`` and
    ``precision`` say what was actually chosen (after ``auto`` and fallbacks).
    """

    config: ModelConfig
    timings: StageTimings

    @property
    def backend(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def precision(self) -> str: ...

    def load(self) -> None: ...

    def infer(
        self,
        rgb: npt.NDArray[np.uint8],
        camera: PinholeCamera,
        output_size: tuple[int, int] | None = None,
    ) -> npt.NDArray[np.float32]:
        """RGB uint8 H x W x 3 and its camera to depth float32 metres (NaN invalid).

        The depth has the image's size, or ``output_size`` ``(width, height)`` when given.
        """
        ...


class NetworkRunner(Protocol):
    """What a backend implements: run the network on a prepared input."""

    name: str
    device: str
    precision: str

    def load(self) -> None: ...

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run on a 1 x 3 x h x w normalised input; return the raw output map."""
        ...


class PipelineEngine:
    """A :class:`DepthEngine` made of a model config and a backend runner."""

    def __init__(self, runner: NetworkRunner, config: ModelConfig) -> None:
        self.runner = runner
        self.config = config
        self.timings = StageTimings()
        self._loaded = False

    @property
    def backend(self) -> str:
        return self.runner.name

    @property
    def device(self) -> str:
        return self.runner.device

    @property
    def precision(self) -> str:
        return self.runner.precision

    def load(self) -> None:
        if not self._loaded:
            self.runner.load()
            self._loaded = True

    def infer(
        self,
        rgb: npt.NDArray[np.uint8],
        camera: PinholeCamera,
        output_size: tuple[int, int] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Depth for ``rgb``; ``output_size`` ``(width, height)`` overrides the image's size."""
        if not self._loaded:
            self.load()
        t0 = time.perf_counter()
        pre = self.config.preprocess(rgb, camera)
        t1 = time.perf_counter()
        raw = self.runner.run(pre.tensor)
        t2 = time.perf_counter()
        width, height = output_size if output_size is not None else (None, None)
        depth = self.config.postprocess(raw, pre, width, height)
        t3 = time.perf_counter()
        self.timings = StageTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return depth


# Backend name -> "module:RunnerClass"; imported only when asked for.
BACKENDS: dict[str, str] = {
    "torch": "recon3d_ros.inference.torch_backend:TorchRunner",
    "onnxruntime": "recon3d_ros.inference.onnx_backend:OnnxRunner",
    "tensorrt": "recon3d_ros.inference.tensorrt_backend:TensorRTRunner",
}

#: The model files each backend runs, by suffix. A suffix's default backend is the first one
#: here that takes it: an ``.onnx`` runs on onnxruntime unless tensorrt is asked for (which
#: builds it into a cached engine).
BACKEND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "torch": (".pt", ".pth", ".ts"),
    "onnxruntime": (".onnx",),
    "tensorrt": (".onnx", ".engine", ".plan"),
}


def backend_for_path(path: str | Path) -> str:
    """Return the default backend for a model file, from its suffix."""
    suffix = Path(path).suffix.lower()
    for backend, suffixes in BACKEND_SUFFIXES.items():
        if suffix in suffixes:
            return backend
    known = sorted({s for suffixes in BACKEND_SUFFIXES.values() for s in suffixes})
    raise ModelLoadError(
        f"cannot tell which backend runs {path}: expected a file ending in {known} "
        "(TorchScript/state dict, ONNX or a TensorRT engine)"
    )


#: The runner keyword that sets a backend's CPU thread count (TensorRT computes on the GPU).
CPU_THREAD_OPTIONS: dict[str, str] = {"torch": "cpu_threads", "onnxruntime": "intra_op_threads"}


def create_runner(
    backend: str,
    model_path: str | Path,
    config: ModelConfig,
    device: str,
    precision: str,
    cpu_threads: int = 0,
) -> NetworkRunner:
    """Instantiate backend ``backend`` (not yet loaded); ``cpu_threads`` 0 = its default."""
    if cpu_threads < 0:
        raise ConfigError(
            f"cpu_threads must be >= 0 (0 = the backend's default), got {cpu_threads}"
        )
    try:
        target = BACKENDS[backend]
    except KeyError:
        raise ConfigError(
            f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}"
        ) from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except BackendUnavailableError:
        raise
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {backend!r} cannot be imported ({exc}); install its runtime or pick another "
            f"backend from {sorted(BACKENDS)}"
        ) from exc
    runner_cls = getattr(module, class_name)
    options: dict[str, int] = {}
    if cpu_threads > 0 and backend in CPU_THREAD_OPTIONS:
        options[CPU_THREAD_OPTIONS[backend]] = int(cpu_threads)
    runner: NetworkRunner = runner_cls(
        Path(model_path), config, device=device, precision=precision, **options
    )
    return runner
