"""Known depth networks: their pre/post-processing, I/O names and where the file comes from.

Nothing is downloaded at run time. Apart from ``default`` (shipped in the package), users fetch
a preset's ONNX file themselves and either pass its path together with ``preset=<name>`` or put
it, under the file name listed here, in a model directory (``$RECON3D_MODEL_PATH``, a
``os.pathsep``-separated list, then ``~/.cache/recon3d/models``) and pass the preset name.

Relative presets publish ``depth = 1 / inverse_depth`` (``depth_scale`` 1, ``depth_shift`` 0):
only the ratio of depths is meaningful until :mod:`recon3d_ros.inference.scale` (or fixed
``depth_scale``/``depth_shift`` overrides) gives it metres.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import recon3d_ros
from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig

__all__ = ["Preset", "PRESETS", "get_preset", "model_search_dirs", "find_preset_file"]


@dataclass(frozen=True)
class Preset:
    """A network family recon3d knows how to feed and read."""

    name: str
    config: ModelConfig
    filename: str | None = None  # what to look for in the model directories
    packaged: str | None = None  # path inside the recon3d_ros package (shipped weights)
    # Its ONNX export, shipped too: onnxruntime runs small CNNs several times faster than eager
    # torch on a CPU, so the loader uses it there (if it was exported from these weights).
    packaged_onnx: str | None = None
    output_rank: int = 3  # 3: 1 x h x w, 4: 1 x 1 x h x w
    fixed_size: tuple[int, int] | None = None  # (height, width) when the export is static
    source: str = ""
    notes: str = ""

    def packaged_path(self) -> Path | None:
        if self.packaged is None:
            return None
        return Path(recon3d_ros.__file__).parent / self.packaged

    def packaged_onnx_path(self) -> Path | None:
        if self.packaged_onnx is None:
            return None
        return Path(recon3d_ros.__file__).parent / self.packaged_onnx


def _preset(name: str, filename: str | None, **kwargs: object) -> Preset:
    preset_keys = {"packaged", "packaged_onnx", "output_rank", "fixed_size", "source", "notes"}
    preset_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in preset_keys}
    config = ModelConfig(name=name, **kwargs)  # type: ignore[arg-type]
    return Preset(
        name=name,
        config=config,
        filename=filename,
        **preset_kwargs,  # type: ignore[arg-type]
    )


_DA_V2_INPUT: dict[str, Any] = {
    "resize_mode": "keep_aspect",
    "short_side": 518,
    "multiple_of": 14,
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "input_name": "image",
    "output_name": "depth",
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="default",
            # The shipped network's real config is embedded in its checkpoint (it wins).
            config=ModelConfig(name="default", description="recon3d_small, packaged"),
            packaged="models/weights/recon3d_small.pt",
            packaged_onnx="models/weights/recon3d_small.onnx",
            source="shipped with recon3d_ros (trained on synthetic scenes; see docs/MODEL.md)",
            notes="metric depth; config embedded in the checkpoint",
        ),
        _preset(
            "depth_anything_v2_small",
            "depth_anything_v2_vits.onnx",
            output_kind="relative_inverse_depth",
            **_DA_V2_INPUT,
            description="Depth Anything V2 Small (relative inverse depth)",
            source="https://github.com/fabio-sim/Depth-Anything-ONNX/releases "
            "(depth_anything_v2_vits.onnx)",
            notes="affine-invariant inverse depth: needs scale alignment or "
            "depth_scale/depth_shift",
        ),
        _preset(
            "depth_anything_v2_metric_indoor_small",
            "depth_anything_v2_vits_indoor_dynamic.onnx",
            output_kind="metric_depth",
            max_depth=20.0,
            **_DA_V2_INPUT,
            description="Depth Anything V2 Metric Hypersim Small (metres, up to 20 m)",
            source="https://github.com/fabio-sim/Depth-Anything-ONNX/releases",
        ),
        _preset(
            "depth_anything_v2_metric_outdoor_small",
            "depth_anything_v2_vits_outdoor_dynamic.onnx",
            output_kind="metric_depth",
            max_depth=80.0,
            **_DA_V2_INPUT,
            description="Depth Anything V2 Metric VKITTI Small (metres, up to 80 m)",
            source="https://github.com/fabio-sim/Depth-Anything-ONNX/releases",
        ),
        _preset(
            "midas_v21_small",
            "midas_v21_small_256.onnx",
            input_width=256,
            input_height=256,
            resize_mode="stretch",
            output_kind="relative_inverse_depth",
            fixed_size=(256, 256),
            description="MiDaS v2.1 Small 256x256 (relative inverse depth)",
            source="https://github.com/isl-org/MiDaS/releases/tag/v2_1 "
            "(model-small.onnx; rename it)",
            notes="I/O names differ between exports, so the model's first input/output are used",
        ),
        _preset(
            "depth_anything_3_metric",
            "da3metric_large.onnx",
            resize_mode="keep_aspect",
            short_side=378,
            multiple_of=14,
            output_kind="metric_depth",
            canonical_focal=300.0,
            input_name="pixel_values",
            output_name="depth",
            description="Depth Anything 3 Metric Large (metres = out * focal / 300)",
            source="https://huggingface.co/depth-anything/DA3METRIC-LARGE (export to ONNX)",
            notes="DA3 resizes the longer side to 504; short side 378 gives exactly that at 4:3",
        ),
        _preset(
            "metric3d_v2_small",
            "metric3d_vit_small.onnx",
            input_width=1064,
            input_height=616,
            resize_mode="letterbox",
            # Metric3D publishes mean (123.675, 116.28, 103.53) and std (58.395, 57.12, 57.375) in
            # 0-255 units; divided by 255 these are exactly the ImageNet values used here.
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            output_kind="metric_depth",
            canonical_focal=1000.0,
            max_depth=300.0,
            input_name="image",
            output_name="pred_depth",
            output_rank=4,
            fixed_size=(616, 1064),
            description="Metric3D v2 ViT-S (canonical focal 1000 px, input 616x1064)",
            source="https://github.com/YvanYin/Metric3D (onnx export of metric3d_vit_small)",
            notes="Metric3D pads with the mean colour; this letterbox pads black (border only)",
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}"
        ) from None


def model_search_dirs() -> list[Path]:
    """Where preset files are looked for, in order."""
    dirs = [
        Path(d).expanduser()
        for d in os.environ.get("RECON3D_MODEL_PATH", "").split(os.pathsep)
        if d
    ]
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "recon3d" / "models"
    return dirs + [cache]


def find_preset_file(preset: Preset) -> Path | None:
    """Return the preset's file: packaged, else the first in :func:`model_search_dirs`."""
    packaged = preset.packaged_path()
    if packaged is not None:
        return packaged if packaged.is_file() else None
    if preset.filename is None:
        return None
    for directory in model_search_dirs():
        candidate = directory / preset.filename
        if candidate.is_file():
            return candidate
    return None
