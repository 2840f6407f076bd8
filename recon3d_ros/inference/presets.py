"""Known depth networks: their pre/post-processing, I/O names and where the file comes from.

Nothing is downloaded at run time. Apart from ``default`` (shipped in the package), users fetch
a preset's ONNX file themselves and either

* put it, under the file name listed here (``filename``, or one of ``also_found_as``), in a
  model directory: ``$RECON3D_MODEL_PATH`` (an ``os.pathsep``-separated list), then
  ``$XDG_CACHE_HOME/recon3d/models`` (``~/.cache/recon3d/models``), and pass the preset name as
  the model; or
* pass its path as the model together with the preset (node ``preset:=NAME``, CLI
  ``--preset NAME``, or ``preset: NAME`` in the file's sidecar YAML).

``recon3d models`` lists the presets, where each file is looked for and which are present.

Every preset reproduces the upstream runner named in its ``upstream`` field (resize rule,
interpolation, normalisation inside or outside the graph, pad colour, focal rule, outputs);
``test/inference/test_preset_contracts.py`` checks each against an independent
reimplementation of that upstream code. Relative presets publish ``depth = 1 / inverse_depth``
(``depth_scale`` 1, ``depth_shift`` 0): only the ratio of depths is meaningful until
:mod:`recon3d_ros.inference.scale` (or fixed ``depth_scale``/``depth_shift``) gives metres.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import recon3d_ros
from recon3d_ros.core.model_config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.model_files import user_cache_dir

__all__ = [
    "Preset",
    "PRESETS",
    "get_preset",
    "model_search_dirs",
    "find_preset_file",
    "presets_with_input_size",
]


@dataclass(frozen=True)
class Preset:
    """A network family recon3d knows how to feed and read."""

    name: str
    config: ModelConfig
    filename: str | None = None  # what to look for in the model directories (may hold a '/')
    also_found_as: tuple[str, ...] = ()  # other names of the same network (variants, old names)
    packaged: str | None = None  # path inside the recon3d_ros package (shipped weights)
    # Its ONNX export, shipped too: onnxruntime runs small CNNs several times faster than eager
    # torch on a CPU, so the loader uses it there (if it was exported from these weights).
    packaged_onnx: str | None = None
    source: str = ""  # where to download (or how to export) the file
    upstream: str = ""  # the upstream code this preset reproduces (repository: file)
    notes: str = ""

    @property
    def filenames(self) -> tuple[str, ...]:
        """Every name the preset's file is looked for under, preferred first."""
        return ((self.filename,) if self.filename else ()) + self.also_found_as

    def packaged_path(self) -> Path | None:
        if self.packaged is None:
            return None
        return Path(recon3d_ros.__file__).parent / self.packaged

    def packaged_onnx_path(self) -> Path | None:
        if self.packaged_onnx is None:
            return None
        return Path(recon3d_ros.__file__).parent / self.packaged_onnx


def _preset(name: str, filename: str | None, **kwargs: Any) -> Preset:
    preset_keys = {"also_found_as", "packaged", "packaged_onnx", "source", "upstream", "notes"}
    preset_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in preset_keys}
    config = ModelConfig(name=name, **kwargs)
    return Preset(name=name, config=config, filename=filename, **preset_kwargs)


_FABIO = "https://github.com/fabio-sim/Depth-Anything-ONNX/releases"
# Depth Anything V2's own input (DepthAnything/Depth-Anything-V2 depth_anything_v2/dpt.py
# image2tensor, also metric_depth/depth_anything_v2/dpt.py): x / 255 as float, Resize(518, 518,
# keep_aspect_ratio, ensure_multiple_of=14, lower_bound, cv2.INTER_CUBIC), ImageNet mean/std.
_DA_V2_DYNAMIC: dict[str, Any] = {
    "resize_mode": "keep_aspect",
    "short_side": 518,
    "multiple_of": 14,
    "interpolation": "cubic",
    "resize_dtype": "float32",
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "input_name": "image",  # fabio-sim dynamo.py export (TorchScript exporter)
    "output_name": "depth",
}
_DA_V2_UPSTREAM = (
    "DepthAnything/Depth-Anything-V2: depth_anything_v2/dpt.py (image2tensor); "
    "fabio-sim/Depth-Anything-ONNX: dynamo.py (export -b 0 -h 0 -w 0)"
)
_DA_V2_METRIC_UPSTREAM = _DA_V2_UPSTREAM.replace(
    "depth_anything_v2/dpt.py", "metric_depth/depth_anything_v2/dpt.py"
)
_HF_VARIANTS = tuple(
    f"depth-anything-v2-small/onnx/model_{v}.onnx"
    for v in ("fp16", "quantized", "int8", "uint8", "q4", "q4f16", "bnb4")
)

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
            notes="metric depth; config embedded in the checkpoint; sha256 in the sidecars",
        ),
        _preset(
            "depth_anything_v2_small",
            "depth_anything_v2_vits.onnx",
            # The v2.0.0 release file is a static 1x3x518x518 torch.onnx.dynamo_export graph, and
            # that release's `dynamo.py infer` stretches every image to 518x518 (INTER_CUBIC on
            # x / 255). Its tensor names come from the dynamo exporter ('l_x_' for the input), so
            # they are left for the loader to pick.
            input_width=518,
            input_height=518,
            resize_mode="stretch",
            interpolation="cubic",
            resize_dtype="float32",
            output_kind="relative_inverse_depth",
            description="Depth Anything V2 Small, static 518x518 release file (relative)",
            source=f"{_FABIO} (v2.0.0: depth_anything_v2_vits.onnx)",
            upstream="fabio-sim/Depth-Anything-ONNX: dynamo.py at v2.0.0 (export, infer)",
            notes="affine-invariant inverse depth: needs scale alignment or "
            "depth_scale/depth_shift; for upstream's aspect-keeping input use the dynamic export "
            "(depth_anything_v2_small_dynamic)",
        ),
        _preset(
            "depth_anything_v2_small_dynamic",
            "depth_anything_v2_vits_dynamic.onnx",
            output_kind="relative_inverse_depth",
            **_DA_V2_DYNAMIC,
            description="Depth Anything V2 Small, dynamic-shape export (relative)",
            source=f"{_FABIO} (depth_anything_v2_vits_dynamic.onnx), or: python dynamo.py export "
            "--encoder vits -b 0 -h 0 -w 0 -o depth_anything_v2_vits_dynamic.onnx",
            upstream=_DA_V2_UPSTREAM,
            notes="affine-invariant inverse depth: needs scale alignment",
        ),
        _preset(
            "depth_anything_v2_metric_indoor_small",
            "depth_anything_v2_vits_indoor_dynamic.onnx",
            output_kind="metric_depth",
            max_depth=20.0,
            **_DA_V2_DYNAMIC,
            description="Depth Anything V2 Metric Hypersim Small (metres, up to 20 m)",
            source=f"{_FABIO} (depth_anything_v2_vits_indoor_dynamic.onnx), or dynamo.py export "
            "--encoder vits --metric indoor -b 0 -h 0 -w 0",
            upstream=_DA_V2_METRIC_UPSTREAM,
        ),
        _preset(
            "depth_anything_v2_metric_outdoor_small",
            "depth_anything_v2_vits_outdoor_dynamic.onnx",
            output_kind="metric_depth",
            max_depth=80.0,
            **_DA_V2_DYNAMIC,
            description="Depth Anything V2 Metric VKITTI Small (metres, up to 80 m)",
            source=f"{_FABIO} (depth_anything_v2_vits_outdoor_dynamic.onnx), or dynamo.py "
            "export --encoder vits --metric outdoor -b 0 -h 0 -w 0",
            upstream=_DA_V2_METRIC_UPSTREAM,
        ),
        _preset(
            "depth_anything_v2_small_hf",
            "depth-anything-v2-small/onnx/model.onnx",
            also_found_as=_HF_VARIANTS,
            # preprocessor_config.json: DPTImageProcessor, size 518x518, keep_aspect_ratio,
            # ensure_multiple_of 14, resample 3 (bicubic), rescale 1/255, ImageNet mean/std.
            input_width=518,
            input_height=518,
            resize_mode="keep_aspect_nearest",
            multiple_of=14,
            interpolation="cubic_antialias",
            resize_dtype="uint8",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_name="pixel_values",
            output_name="predicted_depth",
            output_kind="relative_inverse_depth",
            description="Depth Anything V2 Small, Hugging Face onnx-community export (relative; "
            "fp32/fp16/int8/q4 variants)",
            source="https://huggingface.co/onnx-community/depth-anything-v2-small: download "
            "the repository into a model directory as depth-anything-v2-small/ (it holds "
            "onnx/model.onnx and its model_fp16/_quantized/_int8/_q4 variants)",
            upstream="huggingface/transformers: models/dpt/image_processing_dpt.py "
            "(get_resize_output_image_size); onnx-community/depth-anything-v2-small: "
            "preprocessor_config.json; huggingface/optimum: exporters/onnx/base.py",
            notes="affine-invariant inverse depth; the first variant found is used: pass the "
            "path of another with the preset",
        ),
        _preset(
            "midas_v21_small",
            "model-small.onnx",
            also_found_as=("midas_v21_small_256.onnx",),
            # tf/run_onnx.py: utils.read_image (RGB / 255), Resize(256, 256, keep_aspect_ratio
            # False, INTER_CUBIC) on those floats, no normalisation: the export normalises in
            # the graph (tf/make_onnx_model.py MidasNet_preprocessing).
            input_width=256,
            input_height=256,
            resize_mode="stretch",
            interpolation="cubic",
            resize_dtype="float32",
            input_range="0-1",
            output_kind="relative_inverse_depth",
            description="MiDaS v2.1 Small 256x256 (relative inverse depth)",
            source="https://github.com/isl-org/MiDaS/releases/tag/v2_1 (model-small.onnx)",
            upstream="isl-org/MiDaS: tf/run_onnx.py, tf/make_onnx_model.py, tf/utils.py",
            notes="tensor names differ between exports: the loader picks the single input and "
            "output",
        ),
        _preset(
            "depth_anything_3_metric",
            "DA3METRIC-LARGE.onnx",
            # ika-rwth-aachen/ros2-depth-anything-v3-trt: onnx/export.py writes a static graph
            # (default 1x3x280x504) with input 'image' and outputs 'depth' and 'sky'; its node
            # (tensorrt_depth_anything.cpp) stretches the 8-bit image to that size with
            # INTER_CUBIC, normalises with ImageNet, and takes metres = depth * focal / 300,
            # focal = mean of the resized fx and fy. Any export size works: the file's static
            # input shape replaces 504x280 at load. DA3's compute_sky_mask: non-sky = sky < 0.3.
            input_width=504,
            input_height=280,
            resize_mode="stretch",
            interpolation="cubic",
            resize_dtype="uint8",
            output_kind="metric_depth",
            canonical_focal=300.0,
            focal_rule="mean_fx_fy",
            input_name="image",
            output_name="depth",
            sky_output_name="sky",
            sky_threshold=0.3,
            description="Depth Anything 3 Metric Large, ika export (metres = out * focal / 300; "
            "sky is NaN)",
            source="https://huggingface.co/TillBeemelmanns/Depth-Anything-V3-ONNX, or "
            "ika-rwth-aachen/ros2-depth-anything-v3-trt onnx/export.py --model-dir "
            "DA3METRIC-LARGE (writes DA3METRIC-LARGE.onnx)",
            upstream="ika-rwth-aachen/ros2-depth-anything-v3-trt: onnx/export.py, "
            "depth_anything_v3/src/tensorrt_depth_anything/tensorrt_depth_anything.cpp; "
            "ByteDance-Seed/Depth-Anything-3: README.md (focal rule), utils/alignment.py "
            "(compute_sky_mask)",
            notes="a static export cannot keep DA3's aspect-preserving 504 input; like the ika "
            "node this stretches to the exported size",
        ),
        _preset(
            "metric3d_v2_small",
            "metric3d_vit_small.onnx",
            # onnx/metric3d_onnx_export.py: input 'image' in 0-255 units (mean/std subtracted in
            # the graph), output 'pred_depth', static 1x3x616x1064. onnx/test_onnx.py and
            # hubconf.py: scale = min(616 / h, 1064 / w), cv2.resize to int(w * scale) x
            # int(h * scale) with INTER_LINEAR, pad with (123.675, 116.28, 103.53); metres =
            # out * fx_scaled / 1000, clamped to [0, 300] (here: > 300 m is NaN, REP 118).
            input_width=1064,
            input_height=616,
            resize_mode="letterbox",
            size_rounding="floor",
            interpolation="linear",
            resize_dtype="uint8",
            input_range="0-255",
            pad_color=(123.675, 116.28, 103.53),
            output_kind="metric_depth",
            canonical_focal=1000.0,
            focal_rule="fx",
            max_depth=300.0,
            input_name="image",
            output_name="pred_depth",
            description="Metric3D v2 ViT-S (canonical focal 1000 px, input 616x1064)",
            source="https://github.com/YvanYin/Metric3D: python onnx/metric3d_onnx_export.py "
            "metric3d_vit_small (writes metric3d_vit_small.onnx)",
            upstream="YvanYin/Metric3D: onnx/metric3d_onnx_export.py, onnx/test_onnx.py, "
            "hubconf.py",
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)} "
            "(recon3d models lists them)"
        ) from None


def model_search_dirs() -> list[Path]:
    """Where preset files are looked for, in order."""
    dirs = [
        Path(d).expanduser()
        for d in os.environ.get("RECON3D_MODEL_PATH", "").split(os.pathsep)
        if d
    ]
    return dirs + [user_cache_dir("models")]


def find_preset_file(preset: Preset) -> Path | None:
    """Return the preset's file: packaged, else the first hit in :func:`model_search_dirs`.

    Directories are searched in order; within one, ``filenames`` in order.
    """
    packaged = preset.packaged_path()
    if packaged is not None:
        return packaged if packaged.is_file() else None
    for directory in model_search_dirs():
        for name in preset.filenames:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def presets_with_input_size(height: int, width: int) -> list[str]:
    """Public presets that feed exactly ``height`` x ``width`` (suggestions for static files)."""
    return [
        p.name
        for p in PRESETS.values()
        if p.packaged is None and p.config.fixed_input_size == (height, width)
    ]
