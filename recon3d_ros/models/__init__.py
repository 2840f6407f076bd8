"""Depth networks trained by this package and their checkpoint format.

A checkpoint is a ``torch.save`` dict: ``arch`` (a name in :data:`ARCHITECTURES`),
``arch_kwargs``, ``state_dict``, ``config`` (``ModelConfig.to_dict()``) and ``meta`` (how it was
made: command, seed, steps, duration_s, machine, data). ``build_model(arch, **arch_kwargs)``
rebuilds the network; :func:`load_checkpoint` does all of it and checks the pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recon3d_ros.errors import ModelLoadError
from recon3d_ros.inference.config import ModelConfig

__all__ = ["ARCHITECTURES", "DEFAULT_WEIGHTS", "build_model", "load_checkpoint", "save_checkpoint"]

# name -> "module:Class"; imported lazily so listing architectures needs no torch.
ARCHITECTURES: dict[str, str] = {
    "unet_small": "recon3d_ros.models.unet:UNetSmall",
}

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "recon3d_small.pt"


def build_model(arch: str, **kwargs: Any):
    """Instantiate architecture ``arch`` (untrained) with ``kwargs``."""
    import importlib

    try:
        target = ARCHITECTURES[arch]
    except KeyError:
        raise ModelLoadError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"bad arguments {kwargs} for architecture {arch!r}: {exc}") from exc


def save_checkpoint(
    path: str | Path,
    model,
    arch: str,
    arch_kwargs: dict[str, Any],
    config: ModelConfig,
    meta: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint (weights in fp32 on the CPU, so it loads anywhere); atomic rename."""
    import os

    import torch

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


def load_checkpoint(path: str | Path, map_location: str = "cpu"):
    """Load ``(model in eval mode, ModelConfig, meta)`` from a ``recon3d train`` checkpoint."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"model checkpoint {path} does not exist; train one with `recon3d train` "
            f"or use the packaged default ({DEFAULT_WEIGHTS.name})"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ModelLoadError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or not {"arch", "state_dict", "config"} <= set(ckpt):
        raise ModelLoadError(
            f"{path} is not a recon3d checkpoint (needs keys arch, state_dict, config); "
            "for a TorchScript or ONNX file use the matching backend with a model config YAML"
        )
    model = build_model(ckpt["arch"], **ckpt.get("arch_kwargs", {}))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ModelLoadError(
            f"weights in {path} do not fit architecture {ckpt['arch']!r}: {exc}"
        ) from exc
    model.eval()
    config = ModelConfig.from_dict(ckpt["config"])
    return model, config, dict(ckpt.get("meta", {}))
