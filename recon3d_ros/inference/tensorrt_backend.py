"""TensorRT backend: run an engine built (and cached) from ONNX, or a given ``.engine``/``.plan``.

Handles the TensorRT 10.x tensor API (``num_io_tensors``, ``get_tensor_name``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) and the older bindings API
(``num_bindings``, ``set_binding_shape``, ``execute_async_v2``; TensorRT <= 8.6 / JetPack 5).
Device memory and the CUDA stream come from torch (``torch.cuda.Stream``, tensors'
``data_ptr()`` as addresses), so no pycuda is needed; with
:class:`~recon3d_ros.inference.gpu_pipeline.GpuPipelineEngine` (chosen by the loader) a frame
is uploaded once and one depth map is downloaded.

An ``.onnx`` file is built into an engine by :mod:`recon3d_ros.inference.tensorrt_build` and
kept in the cache of :mod:`recon3d_ros.inference.tensorrt_cache`, keyed by everything an engine
depends on, so a rebuild happens only when one of them changed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError
from recon3d_ros.inference.devices import (
    BACKEND_PRECISIONS,
    cuda_index,
    resolve_device,
    validate_precision,
)
from recon3d_ros.inference.model_files import file_sha256
from recon3d_ros.inference.pinned import PinnedStaging
from recon3d_ros.inference.tensorrt_build import (
    build_engine,
    calibration_batches,
    import_trt,
    make_calibrator,
    onnx_static_hw,
    profile_shapes,
    trt_logger,
)
from recon3d_ros.inference.tensorrt_cache import (
    EngineKey,
    calibration_fingerprint,
    check_engine_record,
    default_cache_dir,
    find_cached_engine,
    gpu_identity,
    store_engine,
)

if TYPE_CHECKING:
    import torch

__all__ = ["TensorRTRunner"]

LOG = logging.getLogger(__name__)


def _torch_dtype(trt: Any, dtype: Any) -> "torch.dtype":
    import torch

    table = {
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.int32: torch.int32,
        trt.int8: torch.int8,
    }
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise ModelLoadError(f"unsupported TensorRT I/O data type {dtype}")
    return table[dtype]


class TensorRTRunner:
    """:class:`~recon3d_ros.inference.engine.NetworkRunner` on TensorRT (CUDA only)."""

    name = "tensorrt"

    def __init__(
        self,
        model_path: Path | str,
        config: ModelConfig,
        device: str = "auto",
        precision: str = "fp32",
        *,
        cache_dir: Path | None = None,
        workspace_mb: int = 2048,
        image_sizes: Sequence[tuple[int, int]] = (),
        calibration_images: Sequence[npt.NDArray[np.uint8]] = (),
    ) -> None:
        self.trt = import_trt()
        self.model_path = Path(model_path)
        self.config = config
        self.device = resolve_device(device)
        if self.device == "cpu":
            raise BackendUnavailableError(
                "backend 'tensorrt' runs on an NVIDIA GPU only; use device 'cuda'/'auto' on a GPU "
                "machine, or backend 'onnxruntime'/'torch' on the CPU"
            )
        self.precision = validate_precision(precision, self.name, self.device)
        self.cache_dir = cache_dir or default_cache_dir()
        self.workspace_mb = workspace_mb
        self.image_sizes = tuple(image_sizes)
        self.calibration_images = tuple(calibration_images)
        self.engine_path: Path | None = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._tensor_api = True
        self._out_buffers: dict[str, "torch.Tensor"] = {}
        self._staging = PinnedStaging()

    @property
    def stream(self) -> Any:
        return self._stream

    # ------------------------------------------------------------------ engine files
    def _engine_bytes(self) -> bytes:
        suffix = self.model_path.suffix.lower()
        gpu_name, capability = gpu_identity(self.device)
        if suffix in (".engine", ".plan"):
            record = check_engine_record(
                self.model_path, gpu_name, capability, str(self.trt.__version__)
            )
            if record.get("precision") in BACKEND_PRECISIONS[self.name]:
                self.precision = str(record["precision"])  # what the engine really runs
            self.engine_path = self.model_path
            return self.model_path.read_bytes()
        if suffix != ".onnx":
            raise ModelLoadError(
                f"backend 'tensorrt' takes .onnx, .engine or .plan files, got {self.model_path}"
            )
        static_hw = onnx_static_hw(self.model_path, self.config.input_name)
        shapes = profile_shapes(self.config, self.image_sizes, static_hw)
        calibration = ""
        if self.precision == "int8":
            calibration = calibration_fingerprint(self.calibration_images)
        key = EngineKey(
            file_sha256(self.model_path),
            gpu_name,
            capability,
            str(self.trt.__version__),
            self.precision,
            shapes,
            calibration,
        )
        cached = find_cached_engine(self.cache_dir, self.model_path, key)
        if cached is not None:
            LOG.info("using cached TensorRT engine %s", cached)
            self.engine_path = cached
            return cached.read_bytes()
        calibrator = None
        if self.precision == "int8":
            if not self.calibration_images:
                raise ConfigError(
                    "precision 'int8' needs calibration images (sample frames of your scenes)"
                )
            cache_file = self.cache_dir / f"{self.model_path.stem}-{key.digest()}.calib"
            batches = calibration_batches(self.config, self.calibration_images)
            calibrator = make_calibrator(self.trt, batches, cache_file, self.device)
        data = build_engine(
            self.model_path,
            self.precision,
            shapes,
            workspace_mb=self.workspace_mb,
            calibrator=calibrator,
            input_name=self.config.input_name,
        )
        self.engine_path = store_engine(self.cache_dir, self.model_path, key, data)
        LOG.info("cached TensorRT engine at %s", self.engine_path)
        return data

    # ------------------------------------------------------------------ load / run
    def load(self) -> None:
        import torch

        trt = self.trt
        if not self.model_path.is_file():
            raise ModelLoadError(
                f"model file {self.model_path} does not exist; expected .onnx, .engine or .plan"
            )
        torch.cuda.set_device(cuda_index(self.device))
        data = self._engine_bytes()
        runtime = trt.Runtime(trt_logger(trt))
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise ModelLoadError(
                f"TensorRT {trt.__version__} cannot deserialise {self.engine_path}: engines only "
                "load "
                "with the TensorRT version and GPU they were built for; rebuild it"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        self._tensor_api = hasattr(engine, "num_io_tensors")
        if self._tensor_api:
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            self._inputs = [
                n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
            ]
        else:
            names = [engine.get_binding_name(i) for i in range(engine.num_bindings)]
            self._inputs = [n for i, n in enumerate(names) if engine.binding_is_input(i)]
        self._outputs = [n for n in names if n not in self._inputs]
        for wanted, available, what in (
            (self.config.input_name, self._inputs, "input"),
            (self.config.output_name, self._outputs, "output"),
        ):
            if wanted is not None and wanted not in available:
                raise ModelLoadError(
                    f"{self.model_path}: no {what} named {wanted!r}; the engine has {available}"
                )
        stream: Any = torch.cuda.Stream  # a class without annotations (torch 2.x)
        self._stream = stream(device=self.device)
        LOG.info(
            "TensorRT %s engine %s on %s (inputs %s, outputs %s)",
            self.precision,
            self.engine_path,
            self.device,
            self._inputs,
            self._outputs,
        )

    @property
    def _input_name(self) -> str:
        if self.config.input_name:
            return self.config.input_name
        from recon3d_ros.inference.onnx_backend import TensorInfo, pick_image_input

        infos = [TensorInfo(n, (None,) * 4) for n in self._inputs]
        return pick_image_input(infos, None, self.model_path).name

    @property
    def _output_name(self) -> str:
        if self.config.output_name:
            return self.config.output_name
        from recon3d_ros.inference.onnx_backend import TensorInfo, pick_depth_output

        infos = [TensorInfo(n, ()) for n in self._outputs]
        return pick_depth_output(infos, None, {self.config.sky_output_name}, self.model_path).name

    def _dtype(self, name: str) -> "torch.dtype":
        if self._tensor_api:
            return _torch_dtype(self.trt, self._engine.get_tensor_dtype(name))
        return _torch_dtype(
            self.trt, self._engine.get_binding_dtype(self._engine.get_binding_index(name))
        )

    def run_torch(self, tensor: "torch.Tensor") -> "torch.Tensor":
        """Run on a CUDA tensor (1 x 3 x h x w); returns the depth output (float32, on the GPU).

        Must be called with :attr:`stream` current (GpuPipelineEngine and :meth:`run` do); the
        returned tensor is reused by the next call.
        """
        import torch

        if self._context is None:
            raise InferenceError("TensorRTRunner.run called before load()")
        engine, context = self._engine, self._context
        x = tensor.to(device=self.device, dtype=self._dtype(self._input_name)).contiguous()
        stream = torch.cuda.current_stream(x.device)
        if self._tensor_api:
            if not context.set_input_shape(self._input_name, tuple(x.shape)):
                raise InferenceError(
                    f"input shape {tuple(x.shape)} is outside the engine's optimisation profile"
                )
            context.set_tensor_address(self._input_name, int(x.data_ptr()))
            for name in self._outputs:
                out = self._output_buffer(name, tuple(context.get_tensor_shape(name)))
                context.set_tensor_address(name, int(out.data_ptr()))
            ok = context.execute_async_v3(stream.cuda_stream)
        else:
            bindings = [0] * engine.num_bindings
            index = engine.get_binding_index(self._input_name)
            if not context.set_binding_shape(index, tuple(x.shape)):
                raise InferenceError(
                    f"input shape {tuple(x.shape)} is outside the engine's optimisation profile"
                )
            bindings[index] = int(x.data_ptr())
            for name in self._outputs:
                i = engine.get_binding_index(name)
                out = self._output_buffer(name, tuple(context.get_binding_shape(i)))
                bindings[i] = int(out.data_ptr())
            ok = context.execute_async_v2(bindings, stream.cuda_stream)
        if not ok:
            raise InferenceError("TensorRT execution failed; see the TensorRT log")
        depth = self._out_buffers[self._output_name].float()
        sky_name = self.config.sky_output_name
        if sky_name is not None and sky_name in self._out_buffers:
            # Sky is not depth (REP 118: NaN); ModelConfig.sky_mask's rule, on the GPU.
            sky = self._out_buffers[sky_name].float().reshape(depth.shape)
            depth = depth.masked_fill(~(sky < self.config.sky_threshold), float("nan"))
        return depth

    def _output_buffer(self, name: str, shape: tuple[int, ...]) -> "torch.Tensor":
        import torch

        buf = self._out_buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = torch.empty(shape, dtype=self._dtype(name), device=self.device)
            self._out_buffers[name] = buf
        return buf

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        array = np.ascontiguousarray(tensor, dtype=np.float32)
        return self._staging.run(array, self.device, self._stream, self.run_torch)
