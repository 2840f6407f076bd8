"""One frame, image + camera -> metric depth (+ colour for the cloud), for every entry point.

The depth node, ``recon3d bench``, ``recon3d eval``, ``recon3d demo`` and the offline tools all
run a frame through :class:`FramePipeline`, so what is benchmarked or evaluated is what the node
publishes. It has no rclpy: the node keeps only ROS (messages, QoS, pairing, threads,
diagnostics) and hands decoded arrays here.

Stages, in order (each timed in :class:`FrameTimings`):

1. ``rectify``: undistort into the rectified camera (CameraInfo ``P``; ``K`` when unset), as
   image_proc does, unless :attr:`FrameOptions.input_is_rectified`;
2. the engine (preprocess, network, postprocess) straight to the output size;
3. ``scale``: a :class:`~recon3d_ros.inference.scale.MetricScaler` for relative models
   (``scale_mode`` != none), fed the newest metric references;
4. ``filter``: the flying-pixel edge filter, then the depth range
   (:func:`~recon3d_ros.core.filters.apply_depth_range`: NaN outside ``[min_depth, max_depth]``);
5. ``colour``: the image resampled onto the depth grid for an ``x y z rgb`` cloud.

:meth:`FramePipeline.cloud` turns a result into the organized cloud the node publishes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera, resize_image
from recon3d_ros.core.encodings import check_pixel_count
from recon3d_ros.core.filters import apply_depth_range, remove_flying_pixels
from recon3d_ros.core.pointcloud import CloudBuffer, depth_to_cloud
from recon3d_ros.core.rectify import rectifier_for
from recon3d_ros.errors import CameraModelError, ConfigError
from recon3d_ros.inference.engine import DepthEngine
from recon3d_ros.inference.scale import MetricScaler

__all__ = ["FrameOptions", "FrameTimings", "FrameResult", "ScaleReference", "FramePipeline"]


@dataclass(frozen=True)
class FrameOptions:
    """What the node's parameters say about one frame (the node's defaults are ``PARAMS``)."""

    input_is_rectified: bool = False
    output_width: int = 0  # with output_height: the published size; 0 = from output_scale
    output_height: int = 0
    output_scale: float = 1.0
    edge_filter_threshold: float = 0.0  # relative depth jump; 0 = off
    min_depth: float = 0.0
    max_depth: float = math.inf
    cloud_color: bool = True
    cloud_stride: int = 1
    max_input_pixels: int = 33_177_600

    def __post_init__(self) -> None:
        if (self.output_width > 0) != (self.output_height > 0):
            raise ConfigError(
                "output_width and output_height must be set together (both > 0) or both 0, got "
                f"{self.output_width}x{self.output_height}"
            )
        if not (self.output_scale > 0.0 and math.isfinite(self.output_scale)):
            raise ConfigError(f"output_scale must be a finite number > 0, got {self.output_scale}")
        if not (0.0 <= self.min_depth < self.max_depth):
            raise ConfigError(
                f"need 0 <= min_depth < max_depth, got {self.min_depth} and {self.max_depth}"
            )
        if self.cloud_stride < 1:
            raise ConfigError(f"cloud_stride must be >= 1, got {self.cloud_stride}")

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Return the published depth size for an input of ``width`` x ``height``."""
        if self.output_width > 0 and self.output_height > 0:
            return self.output_width, self.output_height
        return (
            max(1, int(round(width * self.output_scale))),
            max(1, int(round(height * self.output_scale))),
        )


@dataclass
class FrameTimings:
    """Milliseconds per stage of one :meth:`FramePipeline.process` call."""

    rectify_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    depth_postprocess_ms: float = 0.0  # raw network output -> metric depth on the output grid
    scale_ms: float = 0.0
    filter_ms: float = 0.0
    colour_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return (
            self.rectify_ms
            + self.preprocess_ms
            + self.inference_ms
            + self.depth_postprocess_ms
            + self.scale_ms
            + self.filter_ms
            + self.colour_ms
        )


@dataclass(frozen=True)
class ScaleReference:
    """Metric references for ``scale_mode: sparse``; each is used by one frame only."""

    points: npt.NDArray[np.float64] | None = None  # N x 3 in the reference sensor's frame
    depth: npt.NDArray[np.float32] | None = None  # metres, registered to the image


@dataclass(frozen=True)
class FrameResult:
    """Depth, the camera it follows exactly, and the colour for the cloud."""

    depth: npt.NDArray[np.float32]  # H x W metres along z, NaN invalid (REP 118)
    camera: PinholeCamera  # intrinsics of ``depth`` (after rectification and resizing)
    rgb: npt.NDArray[np.uint8] | None  # H x W x 3 on the depth grid; None without cloud_color
    timings: FrameTimings = field(default_factory=FrameTimings)
    # The options the frame was made with: its cloud follows them even when the pipeline's
    # options change before the cloud is built (the node builds it on another thread).
    options: FrameOptions = field(default_factory=FrameOptions)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


class FramePipeline:
    """Image + camera to metric depth with the node's options; owns the scaler's state.

    ``options`` may be replaced between frames (the node swaps it when parameters change); one
    pipeline serves one stream, since the scaler smooths its estimate from frame to frame.
    """

    def __init__(
        self,
        engine: DepthEngine,
        options: FrameOptions | None = None,
        scaler: MetricScaler | None = None,
    ) -> None:
        self.engine = engine
        self.options = options if options is not None else FrameOptions()
        self.scaler = scaler

    def check_input_size(self, width: int, height: int, what: str = "image") -> None:
        """Raise :class:`EncodingError` when an input exceeds ``max_input_pixels``."""
        check_pixel_count(width, height, self.options.max_input_pixels, what)

    def process(
        self,
        rgb: npt.NDArray[np.uint8],
        camera: PinholeCamera,
        reference: ScaleReference | None = None,
        rectified: PinholeCamera | None = None,
    ) -> FrameResult:
        """Run one frame; ``camera`` describes ``rgb`` (with its distortion and ``R``).

        ``rectified`` is the camera to undistort into (CameraInfo ``P``; ``None``: ``K``).

        Raises
        ------
        CameraModelError
            ``camera`` does not match ``rgb``'s size, or cannot be rectified.
        EncodingError
            the image is larger than ``max_input_pixels``.

        """
        opts = self.options
        height, width = rgb.shape[:2]
        self.check_input_size(width, height)
        if (camera.width, camera.height) != (width, height):
            raise CameraModelError(
                f"the camera is {camera.width}x{camera.height} but the image is "
                f"{width}x{height}; use the image's own CameraInfo"
            )
        timings = FrameTimings()
        start = time.perf_counter()
        if camera.is_distorted and not opts.input_is_rectified:
            rgb, camera = self._rectify(rgb, camera, rectified)
        timings.rectify_ms = _ms_since(start)

        out_w, out_h = opts.output_size(camera.width, camera.height)
        same_size = (out_w, out_h) == (camera.width, camera.height)
        depth = self.engine.infer(rgb, camera, output_size=None if same_size else (out_w, out_h))
        engine_timings = self.engine.timings
        timings.preprocess_ms = engine_timings.preprocess_ms
        timings.inference_ms = engine_timings.inference_ms
        timings.depth_postprocess_ms = engine_timings.postprocess_ms
        out_camera = camera if same_size else camera.resized(out_w, out_h)

        start = time.perf_counter()
        if self.scaler is not None:
            depth = self._scale(self.scaler, depth, out_camera, reference)
        timings.scale_ms = _ms_since(start)

        start = time.perf_counter()
        if opts.edge_filter_threshold > 0.0:
            depth = remove_flying_pixels(depth, opts.edge_filter_threshold)
        depth = apply_depth_range(depth, opts.min_depth, opts.max_depth)
        timings.filter_ms = _ms_since(start)

        start = time.perf_counter()
        colour = resize_image(rgb, out_w, out_h) if opts.cloud_color else None
        timings.colour_ms = _ms_since(start)
        return FrameResult(depth, out_camera, colour, timings, opts)

    def cloud(self, result: FrameResult) -> CloudBuffer:
        """Build the organized ``x y z [rgb]`` cloud of ``result`` (every ``cloud_stride``-th).

        ``result.depth`` already obeys the depth range, so the cloud applies no second one.
        """
        return depth_to_cloud(
            result.depth, result.camera, rgb=result.rgb, stride=result.options.cloud_stride
        )

    @staticmethod
    def _rectify(
        rgb: npt.NDArray[np.uint8], camera: PinholeCamera, rectified: PinholeCamera | None
    ) -> tuple[npt.NDArray[np.uint8], PinholeCamera]:
        """Undistort into ``rectified`` (maps cached per calibration)."""
        try:
            rectifier = rectifier_for(camera, rectified)
        except CameraModelError as exc:
            raise CameraModelError(f"cannot rectify: {exc}") from exc
        if rectifier is None:
            return rgb, camera
        return rectifier.rectify(rgb), rectifier.camera

    @staticmethod
    def _scale(
        scaler: MetricScaler,
        depth: npt.NDArray[np.float32],
        camera: PinholeCamera,
        reference: ScaleReference | None,
    ) -> npt.NDArray[np.float32]:
        if reference is not None and reference.points is not None:
            scaler.set_reference_points(reference.points)
        if reference is not None and reference.depth is not None:
            scaler.set_reference_depth(reference.depth)
        return scaler.apply(depth, camera)
