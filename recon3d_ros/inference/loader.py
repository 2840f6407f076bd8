"""Turn the node's ``model`` parameter into a loaded :class:`PipelineEngine`.

``model`` is a file (``.pt``/``.pth``/``.ts``, ``.onnx``, ``.engine``/``.plan``) or a preset name
(:data:`~recon3d_ros.inference.presets.PRESETS`, found in the model directories).

Where a model's config comes from, later wins (the one statement of this precedence; README and
docs/GPU.md point here):

1. the file's own metadata: the config embedded by ``recon3d export`` (ONNX metadata, checkpoint
   ``config``, TorchScript extra file), else ``ModelConfig()`` defaults;
2. the preset: the ``preset`` node parameter / ``--preset`` option, else a ``preset: NAME`` key
   in the sidecar, else the preset named as the model (a packaged preset such as ``default``
   adds nothing: its config is the one embedded in its file);
3. the sidecar YAML next to the file: ``<file>.yaml`` (e.g. ``net.onnx.yaml``) or
   ``<stem>.yaml``, flat or under ``model:``; only the keys it sets override. Besides
   :class:`ModelConfig` fields it may hold ``preset: NAME`` and ``sha256: HEX`` (the file's
   checksum, verified at load: a mismatch is a start-up error);
4. node parameters (``config_overrides``, e.g. ``input_width``); ``None`` values are ignored.

Then the file's inputs and outputs are read (ONNX): unset names pick the single image input and
the depth output, and a static input shape fixes the network input size or fails here.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from recon3d_ros.core.model_config import ModelConfig, read_config_yaml
from recon3d_ros.errors import ConfigError, ModelLoadError, Recon3dError
from recon3d_ros.inference.devices import resolve_device
from recon3d_ros.inference.engine import (
    BACKEND_SUFFIXES,
    BACKENDS,
    PipelineEngine,
    backend_for_path,
    create_runner,
)
from recon3d_ros.inference.model_files import file_sha256
from recon3d_ros.inference.presets import (
    PRESETS,
    Preset,
    find_preset_file,
    get_preset,
    model_search_dirs,
)

__all__ = [
    "ModelSource",
    "cpu_onnx_twin",
    "resolve_model",
    "load_engine",
    "sidecar_path",
    "write_sidecar",
    "verify_sha256",
    "SIDECAR_KEYS",
]

LOG = logging.getLogger(__name__)

_EXPECTED_FILES = "a TorchScript/.pt checkpoint, .onnx or TensorRT engine file"
#: Sidecar keys that are not ModelConfig fields.
SIDECAR_KEYS = ("preset", "sha256")
_PRESET_HOW = "node: -p preset:={name}; CLI: --preset {name}; sidecar: preset: {name}"


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: file, backend, config, and where the config came from."""

    path: Path
    backend: str
    config: ModelConfig
    preset: str | None
    config_layers: tuple[str, ...]


def sidecar_path(path: Path) -> Path | None:
    """``<file>.yaml`` or ``<stem>.yaml`` beside the model file, if one exists."""
    for candidate in (path.with_name(path.name + ".yaml"), path.with_suffix(".yaml")):
        if candidate.is_file():
            return candidate
    return None


def write_sidecar(path: Path, values: Mapping[str, Any]) -> Path:
    """Write ``<file>.yaml`` beside ``path``: ``values`` under ``model:`` and the file's sha256.

    ``values`` are ModelConfig fields (and ``preset``); a ``sha256`` among them is replaced by
    the file's own, which :func:`resolve_model` checks at every load.
    """
    import yaml

    body = {k: v for k, v in values.items() if k != "sha256"}
    sidecar = path.with_name(path.name + ".yaml")
    sidecar.write_text(
        yaml.safe_dump({"model": {**body, "sha256": file_sha256(path)}}, sort_keys=False)
    )
    return sidecar


def _embedded_config(path: Path) -> dict[str, Any] | None:
    suffix = path.suffix.lower()
    if suffix in BACKEND_SUFFIXES["torch"]:
        from recon3d_ros.inference.torch_backend import read_embedded_config

        return read_embedded_config(path)
    if suffix == ".onnx":
        from recon3d_ros.inference.onnx_backend import read_embedded_config as read_onnx_config

        return read_onnx_config(path)
    return None  # TensorRT engines carry no config: use the sidecar YAML


def _missing_file_error(model: str, path: Path) -> ModelLoadError:
    return ModelLoadError(
        f"model file {path} does not exist; expected {_EXPECTED_FILES}, or a preset name: "
        f"{', '.join(PRESETS)} (got model={model!r})"
    )


def _preset_file(preset: Preset) -> Path:
    found = find_preset_file(preset)
    if found is not None:
        return found
    if preset.packaged is not None:
        raise ModelLoadError(
            f"preset {preset.name!r} should ship with the package at {preset.packaged_path()}, "
            "but "
            "that file is missing; reinstall recon3d_ros (or build the weights: see docs/MODEL.md)"
        )
    dirs = ", ".join(str(d) for d in model_search_dirs())
    names = " or ".join(repr(n) for n in preset.filenames)
    raise ModelLoadError(
        f"preset {preset.name!r} needs the file {names}, not found in {dirs} "
        "(set RECON3D_MODEL_PATH to add folders). Download it yourself "
        f"({preset.source}) into one of those folders, or pass its path as the model together "
        f"with the preset ({_PRESET_HOW.format(name=preset.name)})"
    )


def verify_sha256(path: Path, expected: str, recorded_in: Path) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` hashes to ``expected`` (hex sha256)."""
    want = str(expected).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        raise ConfigError(
            f"{recorded_in}: sha256 must be 64 hex digits (sha256sum {path.name}), got "
            f"{expected!r}"
        )
    actual = file_sha256(path)
    if actual != want:
        raise ModelLoadError(
            f"model file {path} is corrupt or was replaced: its sha256 is {actual}, but "
            f"{recorded_in} records {want}. Reinstall or re-download the file (for the "
            "packaged model: reinstall recon3d_ros), or, if you replaced it on purpose, put its "
            f"new sha256 (sha256sum {path}) in {recorded_in}"
        )


def _onnx_source_hash(onnx_path: Path) -> str | None:
    """Return the sha256 of the torch file an ONNX model was exported from (``recon3d export``)."""
    from recon3d_ros.inference.onnx_backend import read_embedded_config as read_onnx_config

    sidecar = sidecar_path(onnx_path)
    config = read_config_yaml(sidecar) if sidecar is not None else read_onnx_config(onnx_path)
    extra = (config or {}).get("extra") or {}
    return extra.get("source_sha256") if isinstance(extra, Mapping) else None


def cpu_onnx_twin(torch_path: Path, onnx_path: Path | None, device: str) -> Path | None:
    """Return ``onnx_path`` if it should run instead of ``torch_path`` (CPU, same weights)."""
    if onnx_path is None or not onnx_path.is_file():
        return None
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        if resolve_device(device) != "cpu":
            return None  # on a GPU the torch path (fp16, CUDA graphs) is the faster one
    except Recon3dError:
        return None  # the runner reports device problems with the full message
    if _onnx_source_hash(onnx_path) != file_sha256(torch_path):
        LOG.warning(
            "%s was not exported from %s (stale export); running the torch model. Re-export with: "
            "recon3d export %s -o %s",
            onnx_path,
            torch_path,
            torch_path,
            onnx_path,
        )
        return None
    return onnx_path


def resolve_model(
    model: str | Path = "default",
    backend: str = "auto",
    config_overrides: Mapping[str, Any] | None = None,
    preset: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
) -> ModelSource:
    """Find the file, pick the backend and build the layered :class:`ModelConfig` (no loading).

    For a packaged preset with ``backend="auto"`` and fp32 on a CPU, its shipped ONNX export is
    chosen (onnxruntime) when it was exported from the same weights; otherwise the torch file.
    Naming ``onnxruntime`` or ``tensorrt`` for such a preset picks its ONNX export.
    ``preset`` (the node parameter / ``--preset``) applies a preset's config to the file;
    empty means none.
    """
    text = str(model).strip()
    if not text:
        raise ConfigError(
            f"model is empty; give a model file or a preset name: {', '.join(PRESETS)}"
        )
    chosen: Preset | None = get_preset(preset) if preset else None
    if text in PRESETS and not Path(text).expanduser().is_file():
        if chosen is not None and chosen.name != text:
            raise ConfigError(
                f"model {text!r} is a preset, which conflicts with preset {chosen.name!r}; give "
                "the model as a file path, or drop the preset"
            )
        chosen = PRESETS[text]
        path = _preset_file(chosen)
        if backend == "auto" and precision == "fp32":
            path = cpu_onnx_twin(path, chosen.packaged_onnx_path(), device) or path
        elif backend in ("onnxruntime", "tensorrt"):
            # Asked for an ONNX backend by name: the preset's shipped export, if it has one.
            onnx_path = chosen.packaged_onnx_path()
            if onnx_path is not None and onnx_path.is_file():
                path = onnx_path
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise _missing_file_error(text, path)
        if not path.is_file():
            raise ModelLoadError(f"model {path} is a directory; expected {_EXPECTED_FILES}")

    if backend == "auto":
        backend = backend_for_path(path)
    elif backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {backend!r}; choose 'auto' or one of {sorted(BACKENDS)}"
        )
    elif path.suffix.lower() not in BACKEND_SUFFIXES[backend]:
        raise ModelLoadError(
            f"backend {backend!r} cannot run {path.name}: it takes files ending in "
            f"{BACKEND_SUFFIXES[backend]}; use backend 'auto' or convert the model "
            "(recon3d export)"
        )

    sidecar = sidecar_path(path)
    side: dict[str, Any] = read_config_yaml(sidecar) if sidecar is not None else {}
    expected_sha = side.pop("sha256", None)
    side_preset = side.pop("preset", None)
    if expected_sha is not None and sidecar is not None:
        verify_sha256(path, expected_sha, sidecar)
    if side_preset:
        try:
            named = get_preset(str(side_preset))
        except ConfigError as exc:
            raise ConfigError(f"{sidecar}: {exc}") from exc
        if chosen is None:
            chosen = named
        elif chosen.name != named.name:
            LOG.info(
                "preset %s (parameter) wins over preset %s named in %s",
                chosen.name, named.name, sidecar,
            )

    layers: list[str] = []
    values: dict[str, Any] = {}
    embedded = _embedded_config(path)
    if embedded is not None:
        values.update(embedded)
        layers.append(f"embedded in {path.name}")
    if chosen is not None and chosen.packaged is None:
        values.update(chosen.config.to_dict())
        layers.append(f"preset {chosen.name}")
    if side:
        values.update(side)
        layers.append(str(sidecar))
    overrides = {k: v for k, v in (config_overrides or {}).items() if v is not None}
    if overrides:
        values.update(overrides)
        layers.append(f"overrides {sorted(overrides)}")
    if not layers:
        LOG.warning(
            "no model config found for %s (no embedded config, no preset, no %s.yaml): using "
            "ModelConfig() defaults, which are probably wrong for this network; see `recon3d "
            "models` for the presets",
            path,
            path.name,
        )
    origin = ", ".join(layers) or "defaults"
    try:
        config = ModelConfig.from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"model config for {path} (from {origin}): {exc}") from exc
    if path.suffix.lower() == ".onnx":
        from recon3d_ros.inference.onnx_backend import fit_config_to_io, inspect_onnx

        io = inspect_onnx(path)
        if io is not None:
            explicit = {"input_width", "input_height"} & (set(side) | set(overrides))
            config = fit_config_to_io(
                config, io.inputs, io.outputs, path, bool(explicit), f"the config ({origin})"
            )
    return ModelSource(path, backend, config, chosen.name if chosen else None, tuple(layers))


def load_engine(
    model: str | Path = "default",
    backend: str = "auto",
    device: str = "auto",
    precision: str = "fp32",
    config_overrides: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    load: bool = True,
    gpu_pipeline: bool | None = None,
    cpu_threads: int = 0,
) -> PipelineEngine:
    """Resolve ``model``, create its backend runner and (by default) load it.

    ``gpu_pipeline`` (default: on when the runner runs on CUDA and offers ``run_torch``) moves
    pre/post-processing to the GPU
    (:class:`~recon3d_ros.inference.gpu_pipeline.GpuPipelineEngine`).
    ``cpu_threads`` > 0 sets the backend's CPU threads (torch: ``torch.set_num_threads``, which
    is process-wide; onnxruntime: ``intra_op_num_threads``); 0 keeps the backend's default.
    The returned engine's ``backend``/``device``/``precision`` say what was actually chosen.
    """
    source = resolve_model(model, backend, config_overrides, preset, device, precision)
    runner = create_runner(
        source.backend, source.path, source.config, device, precision, cpu_threads
    )
    use_gpu = gpu_pipeline
    if use_gpu is None:
        use_gpu = runner.device.startswith("cuda") and hasattr(runner, "run_torch")
    if use_gpu:
        from recon3d_ros.inference.gpu_pipeline import GpuPipelineEngine

        engine: PipelineEngine = GpuPipelineEngine(runner, source.config)  # type: ignore[arg-type]
    else:
        engine = PipelineEngine(runner, source.config)
    LOG.info(
        "model %s: backend %s, device %s, precision %s, config from %s",
        source.path,
        runner.name,
        runner.device,
        runner.precision,
        ", ".join(source.config_layers) or "defaults",
    )
    if load:
        engine.load()
    return engine
