"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers.

The provider list follows the resolved device: ``cpu`` -> CPU only; ``cuda:N`` -> TensorRT EP
(when installed and precision asks for it or it is simply available), CUDA EP, then CPU as the
fallback for unsupported nodes. The runner reports the provider it actually got.

This module also reads a model's inputs and outputs (:func:`inspect_onnx`) and picks the
tensors to use (:func:`pick_image_input`, :func:`pick_depth_output`, :func:`fit_config_to_io`):
the single image input, the depth output (never an auxiliary one such as DA3's ``sky``), and
for a static input shape the one network input size the file accepts, checked at load.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError
from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.inference.devices import cuda_index, resolve_device, validate_precision

__all__ = [
    "OnnxRunner",
    "CONFIG_METADATA_KEY",
    "read_embedded_config",
    "choose_providers",
    "TensorInfo",
    "ModelIO",
    "inspect_onnx",
    "pick_image_input",
    "pick_depth_output",
    "fit_config_to_io",
]

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


_ONNX_ELEM_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
# Outputs that are never the depth map unless named so explicitly.
_AUXILIARY = re.compile(r"sky|conf|normal|uncert|mask|logit|feat|pose|ray", re.IGNORECASE)


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: name, dims (int = static, str = symbolic, None = unknown)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def static_hw(self) -> tuple[int, int] | None:
        """``(height, width)`` when this rank-4 NCHW tensor has both fixed, else None."""
        if self.rank != 4:
            return None
        h, w = self.shape[2], self.shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return h, w
        return None

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape) or "scalar"
        return f"{self.name!r} {self.dtype} {dims}"


@dataclass(frozen=True)
class ModelIO:
    """A model file's inputs, outputs and metadata properties."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)


def _dims(value_info: Any) -> tuple[int | str | None, ...]:
    dims: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(str(d.dim_param))
        else:
            dims.append(None)
    return tuple(dims)


@functools.lru_cache(maxsize=8)
def _inspect_cached(path: str, _mtime_ns: int, _size: int) -> ModelIO:
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot parse ONNX file {path}: {exc}; is it a complete .onnx model?"
        ) from exc
    graph = model.graph
    initializers = {i.name for i in graph.initializer}

    def info(v: Any) -> TensorInfo:
        elem = v.type.tensor_type.elem_type
        return TensorInfo(v.name, _dims(v), _ONNX_ELEM_TYPES.get(elem, f"onnx type {elem}"))

    return ModelIO(
        tuple(info(v) for v in graph.input if v.name not in initializers),
        tuple(info(v) for v in graph.output),
        {p.key: p.value for p in model.metadata_props},
    )


def inspect_onnx(path: str | Path) -> ModelIO | None:
    """Read an ONNX file's inputs/outputs without its weights; None without the onnx package."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return None  # optional: the runner reads the same from its onnxruntime session
    p = Path(path)
    try:
        stat = p.stat()
    except OSError as exc:
        raise ModelLoadError(f"cannot read ONNX file {p}: {exc}") from exc
    return _inspect_cached(str(p), stat.st_mtime_ns, stat.st_size)


def read_embedded_config(path: str | Path) -> dict[str, Any] | None:
    """Return the ModelConfig dict in the ONNX metadata (``recon3d export`` writes it)."""
    io = inspect_onnx(path)
    if io is None or CONFIG_METADATA_KEY not in io.metadata:
        return None  # the sidecar YAML carries the same config
    try:
        return dict(json.loads(io.metadata[CONFIG_METADATA_KEY]))
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{path}: metadata {CONFIG_METADATA_KEY!r} is not JSON: {exc}"
        ) from exc


def _names(tensors: Sequence[TensorInfo]) -> str:
    return ", ".join(t.describe() for t in tensors) or "none"


def pick_image_input(
    inputs: Sequence[TensorInfo], wanted: str | None, path: Path | str
) -> TensorInfo:
    """Return the input named ``wanted``, else the one NCHW image input (3 or ? channels)."""
    if wanted is not None:
        for t in inputs:
            if t.name == wanted:
                return t
        raise ModelLoadError(
            f"{path}: the model config names input {wanted!r} but the model's inputs are "
            f"{_names(inputs)}; set input_name to one of them in the sidecar YAML, or leave it "
            "unset (the single image input is then used), or use the preset that matches this "
            "export (recon3d models inspect FILE)"
        )
    images = [
        t
        for t in inputs
        if t.rank == 4 and (t.shape[1] in (3, None) or isinstance(t.shape[1], str))
    ]
    if len(images) == 1:
        return images[0]
    if len(inputs) == 1:
        return inputs[0]
    raise ModelLoadError(
        f"{path}: cannot tell which input takes the image among {_names(inputs)}; set "
        "input_name in the model's sidecar YAML"
    )


def pick_depth_output(
    outputs: Sequence[TensorInfo],
    wanted: str | None,
    auxiliary: Collection[str | None],
    path: Path | str,
) -> TensorInfo:
    """Return the output named ``wanted``, else the depth map (never an auxiliary one)."""
    if wanted is not None:
        for t in outputs:
            if t.name == wanted:
                return t
        raise ModelLoadError(
            f"{path}: the model config names output {wanted!r} but the model's outputs are "
            f"{_names(outputs)}; set output_name to the depth output in the sidecar YAML, or "
            "use the preset that matches this export (recon3d models inspect FILE)"
        )
    if len(outputs) == 1:
        return outputs[0]
    candidates = [t for t in outputs if t.name not in auxiliary and not _AUXILIARY.search(t.name)]
    depthish = [t for t in candidates if re.search(r"depth|disp", t.name, re.IGNORECASE)]
    for group in (depthish, candidates):
        if len(group) == 1:
            return group[0]
    raise ModelLoadError(
        f"{path}: cannot tell which output is the depth map among {_names(outputs)}; set "
        "output_name in the model's sidecar YAML"
    )


def _static_preset_hint(image: TensorInfo) -> str:
    """`` use preset X (node: ..., CLI: ...)`` for a static input a preset feeds exactly, or ''."""
    from recon3d_ros.inference.presets import presets_with_input_size

    hw = image.static_hw
    names = presets_with_input_size(*hw) if hw else []
    if not names:
        return ""
    return f" use preset {names[0]} (node: -p preset:={names[0]}, CLI: --preset {names[0]})"


def fit_config_to_io(
    config: ModelConfig,
    inputs: Sequence[TensorInfo],
    outputs: Sequence[TensorInfo],
    path: Path | str,
    size_is_explicit: bool = True,
    origin: str = "the model config",
) -> ModelConfig:
    """Resolve the I/O names and, for a static input, the network input size (or fail).

    A static H x W input fixes the size: ``stretch``/``letterbox`` configs take it unless
    ``size_is_explicit`` (set by a sidecar or a parameter) asks for another; ``keep_aspect``
    configs cannot feed it and fail here, at load, rather than on the first frame.
    """
    sky = config.sky_output_name
    if sky is not None and sky not in {t.name for t in outputs}:
        LOG.warning(
            "%s has no output %r (outputs: %s): sky pixels are not masked", path, sky,
            _names(outputs),
        )
        sky = None
    try:
        image = pick_image_input(inputs, config.input_name, path)
        depth = pick_depth_output(outputs, config.output_name, {sky}, path)
    except ModelLoadError as exc:
        # Often a different export of the network (e.g. the static release file): say which.
        try:
            only = pick_image_input(inputs, None, path)
        except ModelLoadError:
            raise exc from None
        hint = _static_preset_hint(only)
        if not hint:
            raise
        raise ModelLoadError(f"{exc}; for this static export ({only.describe()}){hint}") from exc
    config = config.replace(input_name=image.name, output_name=depth.name, sky_output_name=sky)
    if image.rank == 4 and isinstance(image.shape[1], int) and image.shape[1] != 3:
        raise ModelLoadError(
            f"{path}: input {image.describe()} has {image.shape[1]} channels; recon3d feeds "
            "3-channel RGB images"
        )
    hw = image.static_hw
    if hw is None:
        return config
    h, w = hw
    hint = _static_preset_hint(image)
    if config.fixed_input_size is None:
        raise ConfigError(
            f"{path} is a static-size model (input {image.describe()}) but {origin} resizes "
            f"with resize_mode {config.resize_mode!r}, whose size follows each image. For a "
            f"{w}x{h} export{hint or ' use a stretch/letterbox preset'}, or set resize_mode "
            "stretch or letterbox with "
            f"input_width {w} and input_height {h} in the model's sidecar YAML, or use a "
            "dynamic-shape export"
        )
    if config.fixed_input_size == hw:
        return config
    if size_is_explicit:
        raise ConfigError(
            f"{path} only accepts a {w}x{h} input ({image.describe()}), but {origin} asks for "
            f"{config.input_width}x{config.input_height}; set input_width {w} and input_height "
            f"{h} (or 0 for the node parameters), or use a dynamic-shape export"
        )
    LOG.info("%s: static input %dx%d sets the network input size", path, w, h)
    return config.replace(input_width=w, input_height=h)


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
        self.sky_name: str | None = None
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
        # Between frames onnxruntime's pool threads spin by default: at camera rate that burned
        # 35 ms of CPU per 7 ms frame here (2 threads, 2 cores), CPU the camera driver, the ROS
        # executor and the subscribers need. Idle threads sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self.config = fit_config_to_io(
            self.config,
            [_ort_info(i) for i in inputs],
            [_ort_info(o) for o in outputs],
            self.model_path,
        )
        self.input_name = str(self.config.input_name)
        self.output_name = str(self.config.output_name)
        self.sky_name = self.config.sky_output_name
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

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._session is None:
            raise InferenceError("OnnxRunner.run called before load()")
        feed = {self.input_name: np.ascontiguousarray(tensor, dtype=self._input_dtype)}
        names = [self.output_name] + ([self.sky_name] if self.sky_name else [])
        try:
            results = self._session.run(names, feed)
        except Exception as exc:
            raise InferenceError(
                f"onnxruntime failed on an input of shape {tensor.shape}: {exc}; does the model "
                "accept this input size (fixed-size exports need resize_mode stretch/letterbox)?"
            ) from exc
        depth = np.asarray(results[0], dtype=np.float32)
        if self.sky_name:
            depth = mask_sky(depth, results[1], self.config)
        return depth


def mask_sky(
    depth: npt.NDArray[np.float32], sky: npt.NDArray[Any], config: ModelConfig
) -> npt.NDArray[np.float32]:
    """Set NaN where the auxiliary sky output says sky (REP 118: not a depth measurement)."""
    sky_arr = np.asarray(sky, dtype=np.float32)
    if sky_arr.size != depth.size:
        raise InferenceError(
            f"sky output {config.sky_output_name!r} has shape {sky_arr.shape}, depth "
            f"{depth.shape}; cannot mask sky pixels"
        )
    return np.where(config.sky_mask(sky_arr.reshape(depth.shape)), np.float32(np.nan), depth)


def _ort_info(node: Any) -> TensorInfo:
    """Describe an onnxruntime NodeArg as a :class:`TensorInfo`."""
    dims = tuple(
        d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) and d else None)
        for d in (node.shape or [])
    )
    dtype = {"tensor(float)": "float32", "tensor(float16)": "float16"}.get(node.type, node.type)
    return TensorInfo(node.name, dims, dtype)
