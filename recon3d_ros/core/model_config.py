"""A depth model's pre- and post-processing, kept with the model (as timm's PretrainedCfg).

Numpy and the camera model only (OpenCV and, for one filter, torch are imported when used), so
both the networks (:mod:`recon3d_ros.models`) and the backends (:mod:`recon3d_ros.inference`)
build on it without importing each other.

The node never hard-codes a network's input size or normalisation: it asks the model's
:class:`ModelConfig` to turn an RGB image into a network input and the raw output back into
metric depth on the image's pixel grid.

The knobs mirror what upstream depth networks do before and after their forward pass, so a
preset can reproduce an upstream runner exactly: the resize policy (stretch, letterbox, shorter
or longer side, or Hugging Face's "scale as little as possible"), the interpolation and whether
it runs on the uint8 image or on floats, normalisation done in the graph (``input_range``),
the letterbox pad colour, the focal length a camera-aware metric model is scaled with, and an
auxiliary sky output that marks pixels as not depth.
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
    resize_image,
    round_to_multiple,
    stretch_transform,
)
from recon3d_ros.core.filters import apply_depth_range
from recon3d_ros.errors import ConfigError

__all__ = [
    "ModelConfig",
    "ResizeMode",
    "OutputKind",
    "Interpolation",
    "InputRange",
    "FocalRule",
    "Preprocessed",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "read_config_yaml",
    "load_config_yaml",
]

ResizeMode = Literal[
    "stretch", "letterbox", "keep_aspect", "keep_aspect_long", "keep_aspect_nearest"
]
OutputKind = Literal["metric_depth", "relative_inverse_depth", "disparity"]
# area_linear: INTER_AREA when shrinking, INTER_LINEAR when enlarging (this project's default);
# area_cubic: INTER_AREA / INTER_CUBIC (Depth Anything 3's input processor); linear, cubic,
# area: that OpenCV filter always; cubic_antialias: Pillow-style bicubic (a = -0.5, support
# widened when shrinking) as transformers' DPT image processors resize (torch's antialias path).
Interpolation = Literal["area_linear", "area_cubic", "linear", "cubic", "area", "cubic_antialias"]
ResizeDtype = Literal["uint8", "float32"]
# What the graph expects: "normalised" = (x / 255 - mean) / std done here; "0-1" = x / 255 and
# "0-255" = x, for exports that normalise inside the graph (MiDaS, Metric3D).
InputRange = Literal["normalised", "0-1", "0-255"]
FocalRule = Literal["fx", "mean_fx_fy"]
SizeRounding = Literal["round", "floor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_KEEP_ASPECT = ("keep_aspect", "keep_aspect_long", "keep_aspect_nearest")


@dataclass(frozen=True)
class Preprocessed:
    """A network input plus what is needed to map its output back to the image."""

    tensor: npt.NDArray[np.float32]  # 1 x 3 x h x w, in the range the graph expects
    transform: ImageTransform
    net_camera: PinholeCamera  # intrinsics of the network input canvas


@dataclass(frozen=True)
class ModelConfig:
    """Everything about a depth network that is not its weights.

    Resize (``resize_mode``), all results are the network input canvas:
      * ``stretch``: exactly ``input_width`` x ``input_height``.
      * ``letterbox``: fit inside it keeping the aspect, centred, padded with ``pad_color``;
        ``size_rounding`` floor truncates the content size as Metric3D does.
      * ``keep_aspect``: the shorter side becomes ``short_side``, each side rounded to
        ``multiple_of`` and never below ``short_side`` (Depth Anything V2 / MiDaS "lower_bound").
      * ``keep_aspect_long``: the longer side becomes ``long_side``, then each side goes to its
        nearest multiple (Depth Anything 3 "upper_bound_resize").
      * ``keep_aspect_nearest``: towards ``input_width`` x ``input_height`` with the scale closest
        to 1, rounded to ``multiple_of`` (transformers' DPT ``keep_aspect_ratio``).

    ``output_kind``:
      * ``metric_depth``: metres along z (times ``depth_scale``); with ``canonical_focal`` set the
        network predicts depth for a camera of that focal length (Metric3D, Depth Anything 3),
        rescaled here by ``focal / canonical_focal``, ``focal`` per ``focal_rule`` on the
        network input's intrinsics, so one model serves any camera.
      * ``relative_inverse_depth``: affine-invariant inverse depth (MiDaS, Depth Anything);
        metric depth = 1 / (depth_scale * out + depth_shift), from fixed or aligned scale/shift.
      * ``disparity``: stereo-style disparity in input pixels; depth = fx_input * baseline / out.

    ``input_name`` / ``output_name`` left unset are picked from the model file at load (its one
    image input; its depth output, never ``sky_output_name`` or other auxiliary outputs).
    """

    name: str = "custom"
    input_width: int = 320
    input_height: int = 240
    resize_mode: ResizeMode = "stretch"
    short_side: int = 0  # keep_aspect: target length of the shorter side
    long_side: int = 0  # keep_aspect_long: target length of the longer side
    multiple_of: int = 1
    size_rounding: SizeRounding = "round"
    interpolation: Interpolation = "area_linear"
    resize_dtype: ResizeDtype = "uint8"
    input_range: InputRange = "normalised"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pad_color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # RGB, 0-255 units
    output_kind: OutputKind = "metric_depth"
    canonical_focal: float | None = None
    focal_rule: FocalRule = "fx"
    depth_scale: float = 1.0
    depth_shift: float = 0.0
    baseline: float = 0.0
    min_depth: float = 0.0
    max_depth: float = math.inf
    input_name: str | None = None
    output_name: str | None = None
    sky_output_name: str | None = None  # auxiliary output: pixels >= sky_threshold become NaN
    sky_threshold: float = 0.3
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, kind in (
            ("resize_mode", ResizeMode),
            ("output_kind", OutputKind),
            ("interpolation", Interpolation),
            ("resize_dtype", ResizeDtype),
            ("input_range", InputRange),
            ("focal_rule", FocalRule),
            ("size_rounding", SizeRounding),
        ):
            if getattr(self, key) not in get_args(kind):
                raise ConfigError(
                    f"{key} must be one of {get_args(kind)}, got {getattr(self, key)!r}"
                )
        if self.resize_mode == "keep_aspect" and self.short_side <= 0:
            raise ConfigError("resize_mode 'keep_aspect' needs short_side > 0 (e.g. 518)")
        if self.resize_mode == "keep_aspect_long" and self.long_side <= 0:
            raise ConfigError("resize_mode 'keep_aspect_long' needs long_side > 0 (e.g. 504)")
        if self.resize_mode not in ("keep_aspect", "keep_aspect_long") and (
            self.input_width <= 0 or self.input_height <= 0
        ):
            raise ConfigError(
                f"input size must be positive, got {self.input_width}x{self.input_height}"
            )
        if self.multiple_of < 1:
            raise ConfigError(f"multiple_of must be >= 1, got {self.multiple_of}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"mean/std need 3 values with std > 0, got {self.mean} / {self.std}")
        if len(self.pad_color) != 3 or not all(0.0 <= c <= 255.0 for c in self.pad_color):
            raise ConfigError(f"pad_color needs 3 values in 0..255, got {self.pad_color}")
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
        try:
            for key in ("mean", "std", "pad_color"):
                if key in kwargs:
                    kwargs[key] = tuple(float(v) for v in kwargs[key])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid model config: {exc}") from exc
        if kwargs.get("max_depth") is None and "max_depth" in kwargs:
            kwargs["max_depth"] = math.inf
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"invalid model config: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("mean", "std", "pad_color"):
            out[key] = list(getattr(self, key))
        out["extra"] = dict(self.extra)
        if math.isinf(self.max_depth):
            out["max_depth"] = None
        return out

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ geometry
    @property
    def fixed_input_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of every network input, or None when it follows the image."""
        if self.resize_mode in _KEEP_ASPECT:
            return None
        return self.input_height, self.input_width

    def input_transform(self, width: int, height: int) -> ImageTransform:
        """Where a ``width`` x ``height`` image lands in the network input."""
        if self.resize_mode == "stretch":
            return stretch_transform(width, height, self.input_width, self.input_height)
        if self.resize_mode == "letterbox":
            return self._letterbox(width, height)
        w, h = self._keep_aspect_size(width, height)
        return ImageTransform(width, height, w, h, w, h)

    def _letterbox(self, width: int, height: int) -> ImageTransform:
        dst_w, dst_h = self.input_width, self.input_height
        scale = min(dst_w / width, dst_h / height)
        to_int = math.floor if self.size_rounding == "floor" else round
        cw = min(dst_w, max(1, int(to_int(width * scale))))
        ch = min(dst_h, max(1, int(to_int(height * scale))))
        left, top = (dst_w - cw) // 2, (dst_h - ch) // 2
        return ImageTransform(width, height, dst_w, dst_h, cw, ch, left, top)

    def _keep_aspect_size(self, width: int, height: int) -> tuple[int, int]:
        m = self.multiple_of
        if self.resize_mode == "keep_aspect":
            # Depth Anything V2 / MiDaS Resize(lower_bound): round, but never below the target.
            scale = self.short_side / min(width, height)

            def side(v: float) -> int:
                y = round_to_multiple(v, m)
                return y if y >= self.short_side else int(math.ceil(v / m)) * m

            return side(width * scale), side(height * scale)
        if self.resize_mode == "keep_aspect_long":
            # Depth Anything 3: round the scaled size, then to the nearest multiple (ties up).
            scale = self.long_side / max(width, height)

            def nearest(x: int) -> int:
                down = (x // m) * m
                up = down + m
                return max(1, up if up - x <= x - down else down)

            return (
                nearest(max(1, round(width * scale))),
                nearest(max(1, round(height * scale))),
            )
        # transformers DPT keep_aspect_ratio: "scale as little as possible".
        scale_h, scale_w = self.input_height / height, self.input_width / width
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
        return (
            max(m, round_to_multiple(scale_w * width, m)),
            max(m, round_to_multiple(scale_h * height, m)),
        )

    # ------------------------------------------------------------------ processing
    @functools.cached_property
    def normalisation(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``(scale, offset)`` per channel taking 0-255 pixels to what the graph expects.

        ``normalised``: ``x * scale + offset == (x / 255 - mean) / std``; ``0-1``: ``x / 255``;
        ``0-255``: ``x``. Computed once per config (a frozen dataclass), not once per frame.
        """
        if self.input_range == "0-1":
            return np.full(3, 1.0 / 255.0, np.float32), np.zeros(3, np.float32)
        if self.input_range == "0-255":
            return np.ones(3, np.float32), np.zeros(3, np.float32)
        scale = np.asarray([1.0 / (255.0 * s) for s in self.std], dtype=np.float32)
        offset = np.asarray([-m / s for m, s in zip(self.mean, self.std)], dtype=np.float32)
        return scale, offset

    @property
    def pad_value(self) -> npt.NDArray[np.float32]:
        """Return the letterbox padding as the network sees it (after :attr:`normalisation`)."""
        scale, offset = self.normalisation
        dtype = np.float32 if self.resize_dtype == "float32" else np.uint8
        return self._pad_pixel(dtype) * scale + offset

    def _pad_pixel(self, dtype: Any) -> npt.NDArray[np.float32]:
        pad = np.asarray(self.pad_color, np.float32)
        if dtype == np.uint8:
            pad = np.rint(pad)  # a uint8 canvas holds whole grey levels (cv2.copyMakeBorder too)
        return pad

    def resize_content(
        self, image: npt.NDArray[Any], width: int, height: int
    ) -> npt.NDArray[Any]:
        """Resize an H x W x 3 image to ``width`` x ``height`` with this config's filter."""
        src_h, src_w = image.shape[:2]
        if (width, height) == (src_w, src_h):
            return image
        import cv2

        mode = self.interpolation
        if mode == "cubic_antialias":
            return _resize_antialiased_bicubic(image, width, height)
        if mode in ("area_linear", "area_cubic"):
            enlarge = cv2.INTER_CUBIC if mode == "area_cubic" else cv2.INTER_LINEAR
            return resize_image(image, width, height, enlarge)
        flag = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}[mode]
        return np.asarray(cv2.resize(image, (width, height), interpolation=flag))

    def preprocess(self, rgb: npt.NDArray[np.uint8], camera: PinholeCamera) -> Preprocessed:
        """RGB uint8 H x W x 3 to the 1 x 3 x h x w float32 network input."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ConfigError(f"expected an H x W x 3 RGB image, got shape {rgb.shape}")
        height, width = rgb.shape[:2]
        t = self.input_transform(width, height)
        # float32 resizing keeps cubic overshoot and fractions, as upstream runners that resize
        # the x / 255 image do; uint8 rounds and clips like those that resize the decoded image.
        src = rgb.astype(np.float32) if self.resize_dtype == "float32" else rgb
        content = self.resize_content(src, t.content_width, t.content_height)
        if (t.content_width, t.content_height) == (t.dst_width, t.dst_height):
            canvas = content
        else:
            canvas = np.empty((t.dst_height, t.dst_width, 3), dtype=content.dtype)
            canvas[...] = self._pad_pixel(content.dtype).astype(content.dtype)
            canvas[t.top:t.top + t.content_height, t.left:t.left + t.content_width] = content
        scale, offset = self.normalisation
        net = canvas.astype(np.float32) * scale + offset
        tensor = np.ascontiguousarray(net.transpose(2, 0, 1)[None])
        return Preprocessed(tensor, t, t.apply_camera(camera))

    def focal(self, net_camera: PinholeCamera) -> float:
        """Return the focal length (pixels) that ``canonical_focal`` and ``disparity`` use."""
        if self.focal_rule == "mean_fx_fy":
            return 0.5 * (net_camera.fx + net_camera.fy)
        return net_camera.fx

    def sky_mask(self, sky: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
        """Return True where the sky output says sky (DA3: non-sky is ``sky < 0.3``)."""
        with np.errstate(invalid="ignore"):
            return ~(np.asarray(sky) < self.sky_threshold)

    def to_metric(
        self, raw: npt.NDArray[np.floating], net_camera: PinholeCamera
    ) -> npt.NDArray[np.float32]:
        """Raw network output (h x w, network grid) to metres along z, NaN where invalid."""
        out = np.asarray(raw, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.output_kind == "metric_depth":
                depth = out * np.float32(self.depth_scale)
                if self.canonical_focal is not None:
                    depth = depth * np.float32(self.focal(net_camera) / self.canonical_focal)
            elif self.output_kind == "relative_inverse_depth":
                inv = out * np.float32(self.depth_scale) + np.float32(self.depth_shift)
                depth = np.where(inv > 0, 1.0 / inv, np.nan).astype(np.float32)
            else:  # disparity
                depth = np.where(
                    out > 0, np.float32(self.focal(net_camera) * self.baseline) / out, np.nan
                ).astype(np.float32)
        return apply_depth_range(depth, self.min_depth, self.max_depth)

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


def _resize_antialiased_bicubic(
    image: npt.NDArray[Any], width: int, height: int
) -> npt.NDArray[Any]:
    """Pillow-style bicubic (torch's ``antialias=True`` kernel); uint8 in, uint8 out (rounded)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as exc:
        raise ConfigError(
            "interpolation 'cubic_antialias' needs PyTorch (pip install torch); or set "
            "interpolation: cubic in the model's sidecar YAML"
        ) from exc
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        y = F.interpolate(
            x, size=(height, width), mode="bicubic", align_corners=False, antialias=True
        )[0].permute(1, 2, 0)
    out: npt.NDArray[np.float32] = y.numpy()
    if image.dtype == np.uint8:
        # torchvision rounds and clamps a uint8 image resized through floats the same way.
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def read_config_yaml(path: str | Path) -> dict[str, Any]:
    """Return the keys a model config YAML sets (``model: {...}`` or flat), not yet validated.

    An empty file sets nothing. The loader's sidecars also hold ``preset`` and ``sha256``
    (:data:`recon3d_ros.inference.loader.SIDECAR_KEYS`), which are not ModelConfig fields.
    """
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read model config {p}: {exc}") from exc
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        raise ConfigError(f"model config {p} must be a YAML mapping of ModelConfig fields")
    return {str(k): v for k, v in data.items()}


def load_config_yaml(path: str | Path) -> ModelConfig:
    """Read a model config YAML (``model: {...}`` or flat) into a :class:`ModelConfig`."""
    return ModelConfig.from_dict(read_config_yaml(path))
