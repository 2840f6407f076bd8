"""Building TensorRT engines from ONNX: optimisation profiles, int8 calibration, the builder.

Handles TensorRT 10.x (explicit batch only, ``IProgressMonitor``) and the older 8.x builder
(``EXPLICIT_BATCH`` flag; JetPack 5). :func:`build_engine` returns the serialised engine;
where it is stored is :mod:`recon3d_ros.inference.tensorrt_cache`'s job, and running it
:mod:`recon3d_ros.inference.tensorrt_backend`'s.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import BackendUnavailableError, ConfigError, ModelLoadError
from recon3d_ros.inference.tensorrt_cache import ProfileShapes, Shape

__all__ = [
    "INSTALL_HINT",
    "import_trt",
    "trt_logger",
    "onnx_static_hw",
    "profile_shapes",
    "calibration_batches",
    "make_calibrator",
    "build_engine",
    "build_engine_file",
]

LOG = logging.getLogger(__name__)

INSTALL_HINT = (
    "install TensorRT's Python bindings (pip install tensorrt, matching your CUDA; on Jetson they "
    "come with JetPack: apt install python3-libnvinfer) or use backend 'onnxruntime'/'torch'"
)


def import_trt() -> Any:
    """Return ``tensorrt``, or raise :class:`BackendUnavailableError` saying how to install it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend 'tensorrt' is not available: {exc}; {INSTALL_HINT}"
        ) from exc
    return trt


def _trt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def trt_logger(trt: Any) -> Any:
    """Return the TensorRT logger both the builder and the runtime use (warnings and errors)."""
    return trt.Logger(trt.Logger.WARNING)


def onnx_static_hw(path: Path, input_name: str | None) -> tuple[int | None, int | None]:
    """Return the fixed ``(height, width)`` of an ONNX image input (None: dynamic or unknown)."""
    from recon3d_ros.inference.onnx_backend import inspect_onnx

    io = inspect_onnx(path)
    if io is None or not io.inputs:
        return None, None
    image = next((t for t in io.inputs if t.name == input_name), io.inputs[0])
    if image.rank != 4:
        return None, None
    h, w = image.shape[2], image.shape[3]
    return (h if isinstance(h, int) else None, w if isinstance(w, int) else None)


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


def _make_progress_monitor(trt: Any) -> Any | None:
    """Log build phases where TensorRT offers IProgressMonitor (10.x)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Progress(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)  # pybind11 bases want the explicit call
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
) -> Iterator[npt.NDArray[np.float32]]:
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

    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]
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
    trt = import_trt()
    logger = trt_logger(trt)
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


def build_engine_file(
    onnx_path: Path,
    config: ModelConfig,
    precision: str,
    image_size: tuple[int, int],
    *,
    workspace_mb: int = 2048,
    calibration_images: Sequence[npt.NDArray[np.uint8]] = (),
) -> Path:
    """Build ``OUT.engine`` beside ``onnx_path`` on GPU 0 for ``image_size`` cameras.

    Also writes ``OUT.engine.json`` (what it was built for, checked before it is loaded
    elsewhere) and the sidecar ``OUT.engine.yaml`` (``config`` and the engine's sha256: an
    engine carries no config of its own). int8 calibrates on ``calibration_images``.
    """
    import torch

    from recon3d_ros.inference.loader import write_sidecar
    from recon3d_ros.inference.model_files import file_sha256
    from recon3d_ros.inference.tensorrt_cache import (
        EngineKey,
        calibration_fingerprint,
        gpu_identity,
        write_engine_record,
    )

    trt = import_trt()
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "--tensorrt needs a CUDA GPU; run the export on the target machine"
        )
    calibrator = None
    calibration = ""
    if precision == "int8":
        if not calibration_images:
            raise ConfigError(
                "--precision int8 needs --calibration-images FOLDER (sample frames of your scenes)"
            )
        batches = calibration_batches(config, calibration_images)
        calibrator = make_calibrator(trt, batches, onnx_path.with_suffix(".calib"), "cuda:0")
        calibration = calibration_fingerprint(calibration_images)
    shapes = profile_shapes(config, [image_size])
    data = build_engine(
        onnx_path,
        precision,
        shapes,
        workspace_mb=workspace_mb,
        calibrator=calibrator,
        input_name=config.input_name,
    )
    engine_path = onnx_path.with_suffix(".engine")
    engine_path.write_bytes(data)
    gpu_name, capability = gpu_identity("cuda:0")
    key = EngineKey(
        file_sha256(onnx_path),
        gpu_name,
        capability,
        str(trt.__version__),
        precision,
        shapes,
        calibration,
    )
    write_engine_record(engine_path, key)
    write_sidecar(engine_path, config.to_dict())
    return engine_path
