"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers.

The provider list follows the resolved device: ``cpu`` -> CPU only; ``cuda:N`` -> TensorRT EP
(when installed and precision asks for it or it is simply available), CUDA EP, then CPU as the
fallback for unsupported nodes. The runner reports the provider it actually got.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError
from recon3d_ros.inference.config import ModelConfig
from recon3d_ros.inference.devices import cuda_index, resolve_device, validate_precision

__all__ = ["OnnxRunner", "CONFIG_METADATA_KEY", "read_embedded_config", "choose_providers"]

LOG = logging.getLogger(__name__)

CONFIG_METADATA_KEY = "recon3d_config"  # ONNX metadata_props key holding ModelConfig JSON
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'onnxruntime' needs ONNX Runtime: pip install onnxruntime (CPU) or "
            "onnxruntime-gpu (CUDA/TensorRT providers; on Jetson the wheel from the Jetson Zoo)"
        ) from exc
    return onnxruntime


def read_embedded_config(path: str | Path) -> dict[str, Any] | None:
    """Return the ModelConfig dict in the ONNX metadata (``recon3d export`` writes it)."""
    p = Path(path)
    try:
        import onnx
    except ImportError:
        return None  # optional: the sidecar YAML carries the same config
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot parse ONNX file {p}: {exc}; is it a complete .onnx model?"
        ) from exc
    for prop in model.metadata_props:
        if prop.key == CONFIG_METADATA_KEY:
            try:
                return dict(json.loads(prop.value))
            except (ValueError, TypeError) as exc:
                raise ModelLoadError(
                    f"{p}: metadata {CONFIG_METADATA_KEY!r} is not JSON: {exc}"
                ) from exc
    return None


def _gpu_providers_usable(available: list[str]) -> bool:
    """Tell whether onnxruntime has GPU providers and (where torch can tell) a GPU exists."""
    if not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(available):
        return False
    try:
        import torch
    except ImportError:
        return True  # no second opinion: trust the onnxruntime-gpu build
    return bool(torch.cuda.is_available()) or not torch.version.cuda


def choose_providers(
    device: str, precision: str, available: list[str], cache_dir: Path | None = None
) -> list[Any]:
    """Return the execution providers (with options) for ``device``, best first."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    index = cuda_index(device)
    providers: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        trt_options: dict[str, Any] = {"device_id": index, "trt_fp16_enable": precision == "fp16"}
        if cache_dir is not None:
            trt_options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
        providers.append(("TensorrtExecutionProvider", trt_options))
    if "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": index}))
    if not providers:
        raise BackendUnavailableError(
            f"device {device!r} needs onnxruntime's CUDA or TensorRT execution provider, but this "
            f"onnxruntime only has {available}; pip install onnxruntime-gpu, or use device 'cpu'"
        )
    providers.append("CPUExecutionProvider")
    return providers


class OnnxRunner:
    """:class:`~recon3d_ros.inference.engine.NetworkRunner` on ONNX Runtime."""

    name = "onnxruntime"

    def __init__(
        self,
        model_path: Path | str,
        config: ModelConfig,
        device: str = "auto",
        precision: str = "fp32",
        *,
        intra_op_threads: int | None = None,
        trt_cache_dir: Path | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.config = config
        ort = _import_ort()
        has_gpu = _gpu_providers_usable(ort.get_available_providers())
        # CUDA here means onnxruntime's own GPU providers (a CUDA build of torch does not help).
        self.requested_device = device
        self.device = resolve_device(device, cuda_is_available=has_gpu)
        self.precision = validate_precision(precision, self.name, self.device)
        self.intra_op_threads = intra_op_threads
        self.trt_cache_dir = trt_cache_dir
        self.providers: list[str] = []
        self.input_name: str = ""
        self.output_name: str = ""
        self._input_dtype: Any = np.float32
        self._session: Any = None

    def load(self) -> None:
        ort = _import_ort()
        if not self.model_path.is_file():
            raise ModelLoadError(
                f"model file {self.model_path} does not exist or is not a file; "
                "expected an .onnx model"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Leave a core for the ROS executor and image conversion unless told otherwise.
        threads = self.intra_op_threads or max(1, min(8, (os.cpu_count() or 2) - 1))
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = choose_providers(
            self.device, self.precision, ort.get_available_providers(), self.trt_cache_dir
        )
        try:
            session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(
                f"onnxruntime cannot load {self.model_path}: {exc}; expected a valid .onnx model "
                "(re-export it, or check it with `python -m onnx.checker`)"
            ) from exc
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        self.input_name = self._pick(self.config.input_name, [i.name for i in inputs], "input")
        self.output_name = self._pick(self.config.output_name, [o.name for o in outputs], "output")
        in_type = next(i.type for i in inputs if i.name == self.input_name)
        if in_type not in _ORT_TYPES:
            raise ModelLoadError(
                f"{self.model_path}: input {self.input_name!r} has type {in_type}; expected float"
            )
        self._input_dtype = _ORT_TYPES[in_type]
        if (
            self.precision == "fp16"
            and self._input_dtype != np.float16
            and not any(p == "TensorrtExecutionProvider" for p in session.get_providers())
        ):
            raise ConfigError(
                f"precision 'fp16' with onnxruntime needs an fp16 ONNX model or the TensorRT "
                f"execution provider; {self.model_path.name} is fp32 here. Use precision 'fp32', "
                "or backend 'tensorrt'"
            )
        self.providers = list(session.get_providers())
        if self.device != "cpu" and self.providers == ["CPUExecutionProvider"]:
            # onnxruntime silently falls back to the CPU when its CUDA libraries fail to load.
            if self.requested_device != "auto":
                raise BackendUnavailableError(
                    f"onnxruntime could not start its GPU providers on {self.device} (see its "
                    "log: CUDA/cuDNN libraries missing or mismatched); fix the install or use "
                    "device 'cpu'"
                )
            LOG.warning("onnxruntime GPU providers failed to start: running on the CPU")
            self.device = "cpu"
        self._session = session
        LOG.info(
            "onnxruntime session on %s (providers %s, %d threads)",
            self.device,
            self.providers,
            threads,
        )

    def _pick(self, wanted: str | None, names: list[str], what: str) -> str:
        if wanted is None:
            return names[0]
        if wanted not in names:
            raise ModelLoadError(
                f"{self.model_path}: the model config names {what} {wanted!r} but the model's "
                f"{what}s are {names}; fix input_name/output_name in the model config"
            )
        return wanted

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._session is None:
            raise InferenceError("OnnxRunner.run called before load()")
        feed = {self.input_name: np.ascontiguousarray(tensor, dtype=self._input_dtype)}
        try:
            (out,) = self._session.run([self.output_name], feed)
        except Exception as exc:
            raise InferenceError(
                f"onnxruntime failed on an input of shape {tensor.shape}: {exc}; does the model "
                "accept this input size (fixed-size exports need resize_mode stretch/letterbox)?"
            ) from exc
        return np.asarray(out, dtype=np.float32)
