"""A depth model's pre- and post-processing, kept with the model (as timm's PretrainedCfg).

The node never hard-codes a network's input size or normalisation: it asks the model's
:class:`ModelConfig` to turn an RGB image into a network input and the raw output back into
metric depth on the image's pixel grid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import (
    ImageTransform,
    PinholeCamera,
    keep_aspect_transform,
    letterbox_transform,
    stretch_transform,
)
from recon3d_ros.errors import ConfigError

__all__ = ["ModelConfig", "ResizeMode", "OutputKind", "Preprocessed", "load_config_yaml"]

ResizeMode = Literal["stretch", "letterbox", "keep_aspect"]
OutputKind = Literal["metric_depth", "relative_inverse_depth", "disparity"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessed:
    """A network input plus what is needed to map its output back to the image."""

    tensor: npt.NDArray[np.float32]  # 1 x 3 x h x w, normalised
    transform: ImageTransform
    net_camera: PinholeCamera  # intrinsics of the network input canvas


@dataclass(frozen=True)
class ModelConfig:
    """Everything about a depth network that is not its weights.

    ``output_kind``:
      * ``metric_depth``: metres along z (times ``depth_scale``); with ``canonical_focal`` set the
        network predicts depth for a camera of that focal length (Metric3D-style), rescaled here by
        ``fx_input / canonical_focal`` so one model serves any intrinsics.
      * ``relative_inverse_depth``: affine-invariant inverse depth (MiDaS, Depth Anything);
        metric depth = 1 / (depth_scale * out + depth_shift), from fixed or aligned scale/shift.
      * ``disparity``: stereo-style disparity in input pixels; depth = fx_input * baseline / out.
    """

    name: str = "custom"
    input_width: int = 320
    input_height: int = 240
    resize_mode: ResizeMode = "stretch"
    short_side: int = 0  # keep_aspect only: target length of the shorter side
    multiple_of: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output_kind: OutputKind = "metric_depth"
    canonical_focal: float | None = None
    depth_scale: float = 1.0
    depth_shift: float = 0.0
    baseline: float = 0.0
    min_depth: float = 0.0
    max_depth: float = math.inf
    input_name: str | None = None
    output_name: str | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resize_mode not in get_args(ResizeMode):
            raise ConfigError(
                f"resize_mode must be one of {get_args(ResizeMode)}, got {self.resize_mode!r}"
            )
        if self.output_kind not in get_args(OutputKind):
            raise ConfigError(
                f"output_kind must be one of {get_args(OutputKind)}, got {self.output_kind!r}"
            )
        if self.resize_mode == "keep_aspect":
            if self.short_side <= 0:
                raise ConfigError("resize_mode 'keep_aspect' needs short_side > 0 (e.g. 518)")
        elif self.input_width <= 0 or self.input_height <= 0:
            raise ConfigError(
                f"input size must be positive, got {self.input_width}x{self.input_height}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"mean/std need 3 values with std > 0, got {self.mean} / {self.std}")
        if self.canonical_focal is not None and self.canonical_focal <= 0:
            raise ConfigError(f"canonical_focal must be > 0, got {self.canonical_focal}")
        if self.output_kind == "disparity" and self.baseline <= 0:
            raise ConfigError("output_kind 'disparity' needs baseline > 0 (metres)")
        if not (0.0 <= self.min_depth < self.max_depth):
            raise ConfigError(
                f"need 0 <= min_depth < max_depth, got {self.min_depth} and {self.max_depth}"
            )

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
        kwargs = dict(values)
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        if kwargs.get("max_depth") is None and "max_depth" in kwargs:
            kwargs["max_depth"] = math.inf
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"invalid model config: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mean"] = list(self.mean)
        out["std"] = list(self.std)
        out["extra"] = dict(self.extra)
        if math.isinf(self.max_depth):
            out["max_depth"] = None
        return out

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ processing
    def input_transform(self, width: int, height: int) -> ImageTransform:
        """Where a ``width`` x ``height`` image lands in the network input."""
        if self.resize_mode == "stretch":
            return stretch_transform(width, height, self.input_width, self.input_height)
        if self.resize_mode == "letterbox":
            return letterbox_transform(width, height, self.input_width, self.input_height)
        return keep_aspect_transform(width, height, self.short_side, self.multiple_of)

    @functools.cached_property
    def normalisation(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``(scale, offset)`` with ``x * scale + offset == (x / 255 - mean) / std`` per channel.

        Computed once per config (a frozen dataclass), not once per frame.
        """
        scale = np.asarray([1.0 / (255.0 * s) for s in self.std], dtype=np.float32)
        offset = np.asarray([-m / s for m, s in zip(self.mean, self.std)], dtype=np.float32)
        return scale, offset

    def preprocess(self, rgb: npt.NDArray[np.uint8], camera: PinholeCamera) -> Preprocessed:
        """RGB uint8 H x W x 3 to a normalised 1 x 3 x h x w float32 network input."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ConfigError(f"expected an H x W x 3 RGB image, got shape {rgb.shape}")
        height, width = rgb.shape[:2]
        transform = self.input_transform(width, height)
        net = transform.apply_image(rgb).astype(np.float32)
        scale, offset = self.normalisation
        net = net * scale + offset
        tensor = np.ascontiguousarray(net.transpose(2, 0, 1)[None])
        return Preprocessed(tensor, transform, transform.apply_camera(camera))

    def to_metric(
        self, raw: npt.NDArray[np.floating], net_camera: PinholeCamera
    ) -> npt.NDArray[np.float32]:
        """Raw network output (h x w, network grid) to metres along z, NaN where invalid."""
        out = np.asarray(raw, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.output_kind == "metric_depth":
                depth = out * np.float32(self.depth_scale)
                if self.canonical_focal is not None:
                    depth = depth * np.float32(net_camera.fx / self.canonical_focal)
            elif self.output_kind == "relative_inverse_depth":
                inv = out * np.float32(self.depth_scale) + np.float32(self.depth_shift)
                depth = np.where(inv > 0, 1.0 / inv, np.nan).astype(np.float32)
            else:  # disparity
                depth = np.where(
                    out > 0, np.float32(net_camera.fx * self.baseline) / out, np.nan
                ).astype(np.float32)
            invalid = ~np.isfinite(depth) | (depth <= self.min_depth) | (depth > self.max_depth)
        depth = np.asarray(depth, dtype=np.float32)
        depth[invalid] = np.nan
        return depth

    def postprocess(
        self,
        raw: npt.NDArray[np.floating],
        pre: Preprocessed,
        width: int | None = None,
        height: int | None = None,
    ) -> npt.NDArray[np.float32]:
        """Convert raw network output to metric depth on the source grid (or width x height)."""
        grid = np.asarray(raw)
        # Drop batch/channel axes of size 1 (N x 1 x h x w, N x h x w, h x w x 1), never h or w.
        while grid.ndim > 2 and grid.shape[0] == 1:
            grid = grid[0]
        if grid.ndim == 3 and grid.shape[-1] == 1:
            grid = grid[..., 0]
        if grid.ndim != 2:
            raise ConfigError(f"depth output must squeeze to 2-D, got shape {np.shape(raw)}")
        t = pre.transform
        if grid.shape != (t.dst_height, t.dst_width):
            # Networks with a stride-limited head may return a smaller map: bring it to the canvas.
            import cv2

            grid = cv2.resize(
                grid.astype(np.float32),
                (t.dst_width, t.dst_height),
                interpolation=cv2.INTER_LINEAR,
            )
        # Resample the raw output, then convert: the conversion factors (canonical focal,
        # disparity) refer to the focal length the network saw, i.e. the canvas camera's.
        raw_src = t.invert_image(grid.astype(np.float32), width, height)
        return self.to_metric(raw_src, pre.net_camera)


def load_config_yaml(path: str | Path) -> ModelConfig:
    """Read a sidecar YAML (``model: {...}`` or a flat mapping) into a :class:`ModelConfig`."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read model config {p}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        raise ConfigError(f"model config {p} must be a YAML mapping of ModelConfig fields")
    return ModelConfig.from_dict(data)
