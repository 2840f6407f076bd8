"""TensorRT backend: build (and cache) engines from ONNX, or load a given ``.engine``/``.plan``.

Handles the TensorRT 10.x tensor API (``num_io_tensors``, ``get_tensor_name``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) and the older bindings API
(``num_bindings``, ``set_binding_shape``, ``execute_async_v2``; TensorRT <= 8.6 / JetPack 5).
Device memory and the CUDA stream come from torch (``torch.cuda.Stream``, tensors'
``data_ptr()`` as addresses), so no pycuda is needed; with
:class:`~recon3d_ros.inference.gpu_pipeline.GpuPipelineEngine` (chosen by the loader) a frame
is uploaded once and one depth map is downloaded.

Engines are specific to the model bytes, the GPU, the TensorRT version, the precision and the
input shapes. The cache (``$RECON3D_ENGINE_CACHE`` or ``~/.cache/recon3d/engines``) keys each
engine by all of them and stores that key beside it, so a stale engine is never deserialised
and a rebuild happens only when one of them changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError
from recon3d_ros.inference.config import ModelConfig
from recon3d_ros.inference.devices import (
    BACKEND_PRECISIONS,
    cuda_index,
    resolve_device,
    validate_precision,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "TensorRTRunner",
    "EngineKey",
    "Shape",
    "ProfileShapes",
    "profile_shapes",
    "file_sha256",
    "default_cache_dir",
    "engine_cache_paths",
    "find_cached_engine",
    "store_engine",
    "build_engine",
    "calibration_batches",
    "check_engine_record",
    "make_calibrator",
]

LOG = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
ProfileShapes = tuple[Shape, Shape, Shape]  # min, opt, max (N, C, H, W)
INSTALL_HINT = (
    "install TensorRT's Python bindings (pip install tensorrt, matching your CUDA; on Jetson they "
    "come with JetPack: apt install python3-libnvinfer) or use backend 'onnxruntime'/'torch'"
)


def _import_trt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend 'tensorrt' is not available: {exc}; {INSTALL_HINT}"
        ) from exc
    return trt


def _trt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


# ---------------------------------------------------------------------------- cache keying
def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialised engine depends on: equal keys, interchangeable engines."""

    model_sha256: str
    gpu_name: str
    compute_capability: str  # "8.7"
    tensorrt_version: str
    precision: str
    input_shapes: ProfileShapes
    calibration: str = ""  # int8: fingerprint of the calibration images

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shapes"] = [list(s) for s in self.input_shapes]
        return data

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    env = os.environ.get("RECON3D_ENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "recon3d" / "engines"


def engine_cache_paths(cache_dir: Path, model_path: Path, key: EngineKey) -> tuple[Path, Path]:
    stem = f"{model_path.stem}-{key.precision}-{key.digest()}"
    return cache_dir / f"{stem}.engine", cache_dir / f"{stem}.json"


def find_cached_engine(cache_dir: Path, model_path: Path, key: EngineKey) -> Path | None:
    """Return the cached engine for ``key``; None if absent or its recorded key differs."""
    engine_path, meta_path = engine_cache_paths(cache_dir, model_path, key)
    if not engine_path.is_file():
        return None
    try:
        recorded = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        LOG.warning(
            "TensorRT engine %s has no readable key file %s: rebuilding", engine_path, meta_path
        )
        return None
    if recorded != key.to_json():
        changed = sorted(k for k in key.to_json() if recorded.get(k) != key.to_json()[k])
        LOG.warning(
            "TensorRT engine %s is stale (%s changed): rebuilding", engine_path, ", ".join(changed)
        )
        return None
    return engine_path


def store_engine(cache_dir: Path, model_path: Path, key: EngineKey, data: bytes) -> Path:
    """Write engine and key atomically (a crash mid-write never leaves a loadable half engine)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    engine_path, meta_path = engine_cache_paths(cache_dir, model_path, key)
    for path, payload in (
        (engine_path, data),
        (meta_path, json.dumps(key.to_json(), indent=1).encode()),
    ):
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    return engine_path


def check_engine_record(
    engine_path: Path, gpu_name: str, compute_capability: str, tensorrt_version: str
) -> dict[str, Any]:
    """Refuse a given engine built for another GPU/TensorRT (per its ``.json``); return the record.

    ``recon3d export --tensorrt`` writes ``OUT.engine.json``; an engine without one is tried as is
    (TensorRT itself refuses most mismatches at deserialisation).
    """
    meta = engine_path.with_name(engine_path.name + ".json")
    if not meta.is_file():
        return {}
    try:
        recorded = dict(json.loads(meta.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"cannot read the engine record {meta}: {exc}") from exc
    expected = {
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "tensorrt_version": tensorrt_version,
    }
    stale = {k: recorded.get(k) for k in expected if recorded.get(k) != expected[k]}
    if stale:
        here = {k: expected[k] for k in stale}
        raise ModelLoadError(
            f"TensorRT engine {engine_path} was built for {stale}, this machine has {here}; "
            "rebuild it here (recon3d export --tensorrt) or give the .onnx file and let the "
            "backend build and cache an engine"
        )
    return recorded


def profile_shapes(
    config: ModelConfig,
    image_sizes: Sequence[tuple[int, int]] = (),
    static_hw: tuple[int | None, int | None] = (None, None),
    max_aspect: float = 2.0,
) -> ProfileShapes:
    """Optimisation profile (min, opt, max) for the inputs ``config`` produces.

    Stretch and letterbox give one fixed size. ``keep_aspect*`` sizes depend on the camera: with
    ``image_sizes`` ((width, height) of the cameras to serve) the profile spans exactly those;
    otherwise it covers landscape and portrait up to ``max_aspect``. ``static_hw`` are the ONNX
    input's fixed height/width, if any, which always win.
    """
    if config.fixed_input_size is not None:
        h, w = config.fixed_input_size
        shape: Shape = (1, 3, static_hw[0] or h, static_hw[1] or w)
        return shape, shape, shape
    if image_sizes:
        sizes = []
        for width, height in image_sizes:
            t = config.input_transform(int(width), int(height))
            sizes.append((t.dst_height, t.dst_width))
        hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
        lo: Shape = (1, 3, min(hs), min(ws))
        opt: Shape = (1, 3, *sizes[0])
        hi: Shape = (1, 3, max(hs), max(ws))
    else:
        # The canvas sizes of square, 4:3 and max_aspect landscape/portrait cameras.
        base = 1000
        probes = [(base, base), (int(base * max_aspect), base), (base, int(base * max_aspect))]
        canvases = []
        for width, height in probes + [(base * 4 // 3, base)]:
            t = config.input_transform(width, height)
            canvases.append((t.dst_height, t.dst_width))
        lo = (1, 3, min(c[0] for c in canvases), min(c[1] for c in canvases))
        opt = (1, 3, *canvases[-1])
        hi = (1, 3, max(c[0] for c in canvases), max(c[1] for c in canvases))

    def fix(s: Shape) -> Shape:
        return (s[0], s[1], static_hw[0] or s[2], static_hw[1] or s[3])

    return fix(lo), fix(opt), fix(hi)


# ---------------------------------------------------------------------------- building
def _trt_logger(trt: Any) -> Any:
    return trt.Logger(trt.Logger.WARNING)


def _make_progress_monitor(trt: Any) -> Any | None:
    """Log build phases where TensorRT offers IProgressMonitor (10.x)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Progress(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self._last = 0.0

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None:
                LOG.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            now = time.monotonic()
            if now - self._last > 10.0:
                LOG.info("TensorRT build: %s step %d", phase_name, step)
                self._last = now
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            return None

    return _Progress()


def calibration_batches(
    config: ModelConfig, images: Iterable[npt.NDArray[np.uint8]]
) -> Iterable[npt.NDArray[np.float32]]:
    """Sample RGB frames through the model's own preprocessing (what int8 ranges must cover)."""
    from recon3d_ros.core.camera import PinholeCamera

    for rgb in images:
        h, w = rgb.shape[:2]
        yield config.preprocess(rgb, PinholeCamera.from_fov(w, h, 60.0)).tensor


def make_calibrator(
    trt: Any, batches: Iterable[npt.NDArray[np.float32]], cache_file: Path, device: str
) -> Any:
    """Create an IInt8EntropyCalibrator2 fed with preprocessed batches in torch CUDA memory."""
    import torch

    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._current: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._current = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(
                device
            )
            return [int(self._current.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: bytes) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

    return _Calibrator()


def build_engine(
    onnx_path: Path,
    precision: str,
    shapes: ProfileShapes,
    *,
    workspace_mb: int = 2048,
    calibrator: Any = None,
    input_name: str | None = None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialised engine (fp32/fp16/int8) for ``shapes``."""
    trt = _import_trt()
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if _trt_major(trt) < 10:  # explicit batch is the only mode in 10.x and the flag is gone
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelLoadError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            LOG.warning(
                "this GPU has no fast fp16; the %s engine may not be faster than fp32", precision
            )
        config.set_flag(trt.BuilderFlag.FP16)  # int8 falls back to fp16 for layers without int8
    profile = builder.create_optimization_profile()
    name = input_name or network.get_input(0).name
    profile.set_shape(name, *shapes)
    config.add_optimization_profile(profile)
    if precision == "int8":
        if calibrator is None:
            raise ConfigError("precision 'int8' needs calibration images (--calibration-images)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    monitor = _make_progress_monitor(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    LOG.info(
        "building a %s TensorRT %s engine from %s for input %s..%s (minutes on first run)",
        precision,
        trt.__version__,
        onnx_path.name,
        shapes[0],
        shapes[2],
    )
    t0 = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelLoadError(
            f"TensorRT failed to build an engine from {onnx_path}; see the TensorRT log above"
        )
    LOG.info("TensorRT engine built in %.1f s", time.monotonic() - t0)
    return bytes(serialized)


# ---------------------------------------------------------------------------- running
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
        self.trt = _import_trt()
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
        self._host_in: Any = None
        self._host_out: Any = None

    @property
    def stream(self) -> Any:
        return self._stream

    # ------------------------------------------------------------------ engine files
    def _gpu_identity(self) -> tuple[str, str]:
        import torch

        index = cuda_index(self.device)
        major, minor = torch.cuda.get_device_capability(index)
        return torch.cuda.get_device_name(index), f"{major}.{minor}"

    def _onnx_static_hw(self) -> tuple[int | None, int | None]:
        try:
            import onnx
        except ImportError:
            return None, None
        graph = onnx.load(str(self.model_path), load_external_data=False).graph
        initializers = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        wanted = [i for i in inputs if i.name == self.config.input_name] or inputs[:1]
        if not wanted:
            return None, None
        dims = wanted[0].type.tensor_type.shape.dim
        if len(dims) != 4:
            return None, None
        return (dims[2].dim_value or None, dims[3].dim_value or None)

    def _engine_bytes(self) -> bytes:
        suffix = self.model_path.suffix.lower()
        gpu_name, capability = self._gpu_identity()
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
        shapes = profile_shapes(self.config, self.image_sizes, self._onnx_static_hw())
        calibration = ""
        if self.precision == "int8":
            digest = hashlib.sha256()
            for image in self.calibration_images:
                digest.update(np.ascontiguousarray(image).tobytes())
            calibration = f"{len(self.calibration_images)}:{digest.hexdigest()[:16]}"
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
        runtime = trt.Runtime(_trt_logger(trt))
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
        self._stream = torch.cuda.Stream(device=self.device)
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
        import torch

        array = np.ascontiguousarray(tensor, dtype=np.float32)
        if self._host_in is None or tuple(self._host_in.shape) != array.shape:
            self._host_in = torch.empty(array.shape, dtype=torch.float32, pin_memory=True)
        self._host_in.numpy()[...] = array
        with torch.cuda.stream(self._stream):
            out = self.run_torch(self._host_in.to(self.device, non_blocking=True))
            if self._host_out is None or self._host_out.shape != out.shape:
                self._host_out = torch.empty(out.shape, dtype=torch.float32, pin_memory=True)
            self._host_out.copy_(out, non_blocking=True)
            self._stream.synchronize()
        return self._host_out.numpy().copy()
