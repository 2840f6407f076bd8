"""TensorRT engine files: the cache of built engines and the record beside a given engine.

Engines are specific to the model bytes, the GPU, the TensorRT version, the precision and the
input shapes. The cache (``$RECON3D_ENGINE_CACHE`` or ``~/.cache/recon3d/engines``) keys each
engine by all of them (:class:`EngineKey`) and stores that key beside it, so a stale engine is
never deserialised and a rebuild happens only when one of them changed. An engine built by
``recon3d export --tensorrt`` carries the same facts in ``OUT.engine.json``
(:func:`write_engine_record`), checked before it is loaded (:func:`check_engine_record`).
No TensorRT import here: the cache logic runs (and is tested) anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ModelLoadError
from recon3d_ros.inference.model_files import user_cache_dir

__all__ = [
    "Shape",
    "ProfileShapes",
    "EngineKey",
    "calibration_fingerprint",
    "default_cache_dir",
    "engine_cache_paths",
    "find_cached_engine",
    "store_engine",
    "gpu_identity",
    "engine_record_path",
    "write_engine_record",
    "check_engine_record",
]

LOG = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
ProfileShapes = tuple[Shape, Shape, Shape]  # min, opt, max (N, C, H, W)


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


def calibration_fingerprint(images: Sequence[npt.NDArray[np.uint8]]) -> str:
    """``count:hash`` of int8 calibration images (other images, other int8 ranges)."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return f"{len(images)}:{digest.hexdigest()[:16]}"


def default_cache_dir() -> Path:
    env = os.environ.get("RECON3D_ENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    return user_cache_dir("engines")


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


def gpu_identity(device: str) -> tuple[str, str]:
    """``(GPU name, compute capability "major.minor")`` of a resolved ``cuda:N`` device."""
    import torch

    from recon3d_ros.inference.devices import cuda_index

    index = cuda_index(device)
    major, minor = torch.cuda.get_device_capability(index)
    return str(torch.cuda.get_device_name(index)), f"{major}.{minor}"


def engine_record_path(engine_path: Path) -> Path:
    """``OUT.engine.json``: what a given engine was built for."""
    return engine_path.with_name(engine_path.name + ".json")


def write_engine_record(engine_path: Path, key: EngineKey) -> Path:
    """Write the record :func:`check_engine_record` reads beside an exported engine."""
    path = engine_record_path(engine_path)
    path.write_text(json.dumps(key.to_json(), indent=1))
    return path


def check_engine_record(
    engine_path: Path, gpu_name: str, compute_capability: str, tensorrt_version: str
) -> dict[str, Any]:
    """Refuse a given engine built for another GPU/TensorRT (per its ``.json``); return the record.

    ``recon3d export --tensorrt`` writes ``OUT.engine.json``; an engine without one is tried as is
    (TensorRT itself refuses most mismatches at deserialisation).
    """
    meta = engine_record_path(engine_path)
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
