"""Depth networks trained by this package and their checkpoint format.

A checkpoint is a ``torch.save`` dict: ``arch`` (a name in :data:`ARCHITECTURES`),
``arch_kwargs``, ``state_dict``, ``config`` (``ModelConfig.to_dict()``) and ``meta`` (how it was
made: command, seed, steps, duration_s, machine, data). ``build_model(arch, **arch_kwargs)``
rebuilds the network. :func:`read_checkpoint` is the one reader of such files: it loads with
``weights_only=True``, so no code in the file runs; :func:`load_checkpoint` does all of it and
checks the pieces.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import BackendUnavailableError, ModelLoadError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT_KEYS",
    "DEFAULT_WEIGHTS",
    "build_model",
    "import_torch",
    "load_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

# name -> "module:Class"; imported lazily so listing architectures needs no torch.
ARCHITECTURES: dict[str, str] = {
    "unet_small": "recon3d_ros.models.unet:UNetSmall",
}

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "recon3d_small.pt"

#: Keys every checkpoint has (``config`` and ``meta`` are optional for foreign-trained files).
CHECKPOINT_KEYS = ("arch", "state_dict")
EXPECTED = (
    "a TorchScript archive (torch.jit.save) or a recon3d checkpoint dict "
    "{'arch', 'arch_kwargs', 'state_dict', 'config', 'meta'} saved with torch.save"
)


def import_torch() -> Any:
    """Return ``torch``, or raise :class:`BackendUnavailableError` saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'torch' needs PyTorch: pip install torch (CPU) or the CUDA wheel / JetPack "
            "build for GPUs; or use backend 'onnxruntime' with an exported .onnx model"
        ) from exc
    return torch


def build_model(arch: str, **kwargs: Any) -> "nn.Module":
    """Instantiate architecture ``arch`` (untrained) with ``kwargs``."""
    try:
        target = ARCHITECTURES[arch]
    except KeyError:
        raise ModelLoadError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        model: nn.Module = cls(**kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"bad arguments {kwargs} for architecture {arch!r}: {exc}") from exc
    return model


def save_checkpoint(
    path: str | Path,
    model: "nn.Module",
    arch: str,
    arch_kwargs: Mapping[str, Any],
    config: ModelConfig,
    meta: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint (weights in fp32 on the CPU, so it loads anywhere); atomic rename."""
    import os

    torch = import_torch()
    net = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().to("cpu") for k, v in net.state_dict().items()}
    payload: dict[str, Any] = {
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs),
        "state_dict": state,
        "config": config.to_dict(),
        "meta": dict(meta),
    }
    if extra:
        payload.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(
    path: str | Path, required: tuple[str, ...] = CHECKPOINT_KEYS
) -> dict[str, Any]:
    """Load a checkpoint dict on the CPU (``weights_only=True``) and check its ``required`` keys.

    Also what ``--resume`` reads (weights, optimiser and RNG state): tensors, numbers, strings
    and containers are all a checkpoint holds, so no pickled code is ever needed.
    """
    torch = import_torch()
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(
            f"model file {p} does not exist or is not a file; expected {EXPECTED} (train one "
            f"with `recon3d train` or use the packaged default {DEFAULT_WEIGHTS.name})"
        )
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/...
        raise ModelLoadError(
            f"cannot read model file {p} ({type(exc).__name__}: {exc}); expected {EXPECTED}. "
            "Is it truncated, or a pickled nn.Module (not supported: save a state_dict checkpoint "
            "or a TorchScript archive)?"
        ) from exc
    if not isinstance(data, dict) or not all(k in data for k in required):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ModelLoadError(
            f"model file {p} holds {keys}, not a recon3d checkpoint (needs keys "
            f"{', '.join(required)}); expected {EXPECTED}"
        )
    return data


def model_from_checkpoint(checkpoint: Mapping[str, Any], path: str | Path) -> "nn.Module":
    """Rebuild the network a checkpoint (from :func:`read_checkpoint`) describes, in eval mode."""
    arch = checkpoint["arch"]
    kwargs = dict(checkpoint.get("arch_kwargs") or {})
    model = build_model(arch, **kwargs)
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(
            f"weights in {path} do not fit architecture {arch!r} {kwargs} as this version builds "
            f"it (the state dict does not match: {exc}); retrain it or export it again with "
            "this recon3d_ros version"
        ) from exc
    return model.eval()


def load_checkpoint(path: str | Path) -> tuple["nn.Module", ModelConfig, dict[str, Any]]:
    """Load ``(model in eval mode, ModelConfig, meta)`` from a ``recon3d train`` checkpoint."""
    checkpoint = read_checkpoint(path, CHECKPOINT_KEYS + ("config",))
    model = model_from_checkpoint(checkpoint, path)
    config = ModelConfig.from_dict(checkpoint["config"])
    return model, config, dict(checkpoint.get("meta") or {})
