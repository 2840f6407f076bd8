"""Frames in, map out: poses checked or estimated, depth scale kept consistent, then fused.

:class:`Reconstructor` is what ``recon3d reconstruct`` and the fusion node share. Per frame:

1. the pose: given (odometry, TF, a pose file) or, with ``odometry=True`` and none given,
   estimated against the previous fused frame (:func:`~.odometry.estimate_motion`); a frame
   with no pose is counted and reported, never fused with a guess;
2. ``scale_mode="map"``: the depth is rescaled to agree with the map's depth rendered from
   that pose (:func:`~.scale.consistent_scale`), since monocular depth drifts in scale and
   fusion turns the drift into doubled surfaces; where the frame sees too little of the map,
   the last scale found is used (the first frame sets the map's scale). Open3D's ray cast
   stops short of the surface (~0.7 voxel, 15 mm at 2 cm measured on redwood), which would
   shrink every frame by ~0.7 % and the map with it: the offset is measured after each
   frame, between that frame's depth and the map rendered from its pose, and added back;
3. the frame is integrated into the :class:`~.tsdf.TsdfMap` (``map`` attribute).
"""

from __future__ import annotations

import time
import zipfile
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError, ReconstructionError
from recon3d_ros.reconstruction.odometry import (
    estimate_motion_between,
    OdometryFrame,
    OdometryOptions,
    prepare_frame,
)
from recon3d_ros.reconstruction.scale import consistent_scale
from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap, check_pose

__all__ = ["ANCHOR_FILE", "FrameOutcome", "Reconstructor", "ScaleMode", "SCALE_MODES"]

ScaleMode = Literal["none", "map"]
SCALE_MODES = ("none", "map")
#: The last fused frame, saved next to a map so that a resumed run's odometry continues.
ANCHOR_FILE = "odometry_anchor.npz"
#: The map is rendered at 1/4 of the frame's width and height for scale alignment: enough
#: pixels for a robust median, 16x fewer rays.
SCALE_RENDER_DIVISOR = 4
#: A pixel count for consistent_scale at that resolution (of 160x120 = 19200).
SCALE_MIN_PIXELS = 500

#: How many recent frames the timing and scale figures of :meth:`Reconstructor.summary` cover.
_HISTORY = 1000


@dataclass
class FrameOutcome:
    """What happened to one frame. ``reason`` is ``""`` when fused, else ``"key: detail"``."""

    fused: bool
    reason: str
    pose: npt.NDArray[np.float64] | None
    scale: float | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Previous:
    """The last fused frame: what the next pair's odometry (or a resumed run's) starts from."""

    rgb: npt.NDArray[np.uint8] | None
    depth: npt.NDArray[np.float32]  # at the map's scale
    camera: PinholeCamera
    pose: npt.NDArray[np.float64]
    # Its odometry features: kept from when it was the current frame of a pair (ORB and the
    # small images once per frame, not twice), else made when a next pair first needs them.
    features: OdometryFrame | None = None


def _intrinsics(camera: PinholeCamera) -> tuple[float, ...]:
    return (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy)


class Reconstructor:
    """Fuse frames into :attr:`map` (see the module docstring)."""

    def __init__(
        self,
        map_options: MapOptions | None = None,
        scale_mode: ScaleMode = "none",
        odometry: bool = False,
        odometry_options: OdometryOptions | None = None,
        tsdf_map: TsdfMap | None = None,
    ) -> None:
        if scale_mode not in SCALE_MODES:
            raise ConfigError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
        self.map = tsdf_map if tsdf_map is not None else TsdfMap(map_options)
        self.scale_mode = scale_mode
        self.odometry = odometry
        self.odometry_options = odometry_options or OdometryOptions()
        self._previous: _Previous | None = None
        self._last_motion: npt.NDArray[np.float64] | None = None
        self._last_scale = 1.0
        self._render_offset = 0.0  # m: true depth - ray-cast depth, from the last frame
        self._frames = 0
        self._fused = 0
        self._rejected: Counter[str] = Counter()
        # Bounded: a fusion node runs for days, so per-frame figures keep a recent window only.
        self._ms: dict[str, deque[float]] = {}
        self._scales: deque[float] = deque(maxlen=_HISTORY)

    # -- resuming ---------------------------------------------------------------------------
    def save_anchor(self, directory: Path | str) -> Path | None:
        """Write the last fused frame to ``directory/odometry_anchor.npz``; None if none was.

        A later run that loads the map with ``--resume`` and estimates poses continues its
        odometry from this frame (:meth:`load_anchor`), so its poses stay in the map's frame.
        """
        last = self._previous
        if last is None:
            return None
        path = Path(directory) / ANCHOR_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            rgb=np.zeros((0, 0, 3), np.uint8) if last.rgb is None else last.rgb,
            depth=last.depth,
            intrinsics=np.array(_intrinsics(last.camera), np.float64),
            pose=last.pose,
            scale=np.float64(self._last_scale),
        )
        return path

    def load_anchor(self, directory: Path | str) -> bool:
        """Continue odometry from the frame :meth:`save_anchor` wrote; False if there is none.

        The next frame is then registered against that frame (and placed in the map's frame)
        instead of being refused for want of a previous one. Raises ReconstructionError for a
        file that is not an anchor.
        """
        path = Path(directory) / ANCHOR_FILE
        if not path.is_file():
            return False
        try:
            with np.load(path) as data:
                rgb = np.asarray(data["rgb"], np.uint8)
                depth = np.asarray(data["depth"], np.float32)
                w, h, fx, fy, cx, cy = (float(v) for v in data["intrinsics"])
                pose = check_pose(np.asarray(data["pose"], np.float64), "anchor pose")
                scale = float(data["scale"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ReconstructionError(
                f"{path} is not an odometry anchor ({exc}); delete it to resume without one"
            ) from exc
        camera = PinholeCamera(int(w), int(h), fx, fy, cx, cy)
        self._previous = _Previous(None if rgb.size == 0 else rgb, depth, camera, pose)
        self._last_scale = scale
        self._last_motion = None
        return True

    def reset(self) -> None:
        """Empty the map and forget the previous frame (counters are kept)."""
        self.map.reset()
        self._previous = None
        self._last_motion = None
        self._last_scale = 1.0
        self._render_offset = 0.0

    def _reject(self, key: str, detail: str, outcome: FrameOutcome) -> FrameOutcome:
        self._rejected[key] += 1
        outcome.fused = False
        outcome.reason = f"{key}: {detail}"
        return outcome

    def _record(self, timings: dict[str, float]) -> None:
        for name, ms in timings.items():
            self._ms.setdefault(name, deque(maxlen=_HISTORY)).append(ms)

    def add_frame(
        self,
        rgb: npt.NDArray[np.uint8] | None,
        depth: npt.NDArray[np.floating],
        camera: PinholeCamera,
        pose: npt.NDArray[np.floating] | None,
        stamp_ns: int = 0,
    ) -> FrameOutcome:
        """Fuse one frame (``pose`` is T_world_camera, None = unknown); see the module doc."""
        start = time.perf_counter()
        self._frames += 1
        outcome = FrameOutcome(False, "", None, None, {})
        try:
            return self._add(rgb, depth, camera, pose, outcome)
        finally:
            outcome.timings["total_ms"] = (time.perf_counter() - start) * 1e3
            self._record(outcome.timings)

    def _add(
        self,
        rgb: npt.NDArray[np.uint8] | None,
        depth: npt.NDArray[np.floating],
        camera: PinholeCamera,
        pose: npt.NDArray[np.floating] | None,
        outcome: FrameOutcome,
    ) -> FrameOutcome:
        d = np.asarray(depth, dtype=np.float32)
        if d.shape != (camera.height, camera.width):
            raise ReconstructionError(
                f"depth is {d.shape} but the camera is {camera.height}x{camera.width}"
            )
        with np.errstate(invalid="ignore"):
            if not (np.isfinite(d) & (d > 0)).any():
                return self._reject(
                    "no_valid_depth", "the depth image has no valid pixel", outcome
                )
        current: tuple[OdometryFrame, float] | None = None  # features and their depth scale
        if pose is not None:
            T = check_pose(pose)
        elif self.odometry:
            estimated, current = self._estimate_pose(rgb, d, camera, outcome)
            if estimated is None:
                return outcome
            T = estimated
        else:
            return self._reject(
                "no_pose", "no pose for this stamp (odometry/TF missing or too far off)", outcome
            )
        outcome.pose = T
        scale = 1.0
        if self.scale_mode == "map":
            t = time.perf_counter()
            scale = self._map_scale(d, camera, T)
            outcome.timings["scale_ms"] = (time.perf_counter() - t) * 1e3
            d = d * np.float32(scale)
        outcome.scale = scale
        t = time.perf_counter()
        self.map.integrate(d, camera, T, rgb)
        outcome.timings["integrate_ms"] = (time.perf_counter() - t) * 1e3
        if self.scale_mode == "map":
            t = time.perf_counter()
            self._measure_render_offset(d, camera, T)
            outcome.timings["scale_ms"] += (time.perf_counter() - t) * 1e3
        features = None
        if current is not None:
            if current[1] == scale:  # its depth is d already
                features = current[0]
            else:  # the map rescaled this frame after the odometry: keep its features
                features = current[0].with_depth(d, self.odometry_options)
        self._previous = _Previous(None if rgb is None else np.asarray(rgb), d, camera, T,
                                   features)
        self._fused += 1
        self._scales.append(scale)
        outcome.fused = True
        return outcome

    def _estimate_pose(
        self,
        rgb: npt.NDArray[np.uint8] | None,
        depth: npt.NDArray[np.float32],
        camera: PinholeCamera,
        outcome: FrameOutcome,
    ) -> tuple[npt.NDArray[np.float64] | None, tuple[OdometryFrame, float] | None]:
        """Return the pose (None: rejected) and this frame's features with their depth scale."""
        prev = self._previous
        if prev is None:
            if self.map.block_count == 0:
                return np.eye(4), None  # the first frame defines the world frame
            self._reject("no_pose", "odometry has no previous frame since the reset", outcome)
            return None, None
        if rgb is None:
            self._reject("no_image", "odometry needs the colour image", outcome)
            return None, None
        if _intrinsics(prev.camera) != _intrinsics(camera):
            self._reject("camera_changed", "the camera differs from the previous frame's", outcome)
            return None, None
        if prev.features is None:  # fused with a given pose, or loaded as an anchor
            colour = prev.rgb if prev.rgb is not None else np.full(
                prev.depth.shape + (3,), 128, np.uint8)
            prev.features = prepare_frame(colour, prev.depth, prev.camera, self.odometry_options)
        t = time.perf_counter()
        # The previous depth is stored at the map's scale: bring this one there first.
        scale = self._last_scale
        current = prepare_frame(
            np.asarray(rgb), depth * np.float32(scale), camera, self.odometry_options
        )
        result = estimate_motion_between(
            prev.features, current, init=self._last_motion, options=self.odometry_options
        )
        outcome.timings["odometry_ms"] = (time.perf_counter() - t) * 1e3
        if not result.ok:
            self._reject("odometry_rejected", result.reason, outcome)
            return None, None
        self._last_motion = result.pose
        return np.asarray(prev.pose @ result.pose), (current, scale)

    def _small(
        self, depth: npt.NDArray[np.float32], camera: PinholeCamera
    ) -> tuple[npt.NDArray[np.float32], PinholeCamera]:
        import cv2

        w = max(8, camera.width // SCALE_RENDER_DIVISOR)
        h = max(8, camera.height // SCALE_RENDER_DIVISOR)
        small = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        return np.asarray(small, dtype=np.float32), camera.resized(w, h)

    def _map_scale(
        self, depth: npt.NDArray[np.float32], camera: PinholeCamera, pose: npt.NDArray[np.float64]
    ) -> float:
        if self.map.block_count == 0:
            return self._last_scale
        small, small_camera = self._small(depth, camera)
        rendered = self.map.render_depth(small_camera, pose) + np.float32(self._render_offset)
        scale, _ = consistent_scale(small, rendered, SCALE_MIN_PIXELS)
        if scale is not None:
            self._last_scale = scale
        return self._last_scale

    def _measure_render_offset(
        self, depth: npt.NDArray[np.float32], camera: PinholeCamera, pose: npt.NDArray[np.float64]
    ) -> None:
        """Ray-cast depth vs the frame just fused, from its own pose (see the module doc)."""
        small, small_camera = self._small(depth, camera)
        rendered = self.map.render_depth(small_camera, pose)
        with np.errstate(invalid="ignore"):
            both = np.isfinite(rendered) & np.isfinite(small) & (small > 0)
            if int(both.sum()) < SCALE_MIN_PIXELS:
                return
            diff = small[both] - rendered[both]
        # Only the near-surface pixels: occlusion edges would pull the median.
        near = diff[np.abs(diff) < 3 * self.map.options.trunc_distance]
        if near.size >= SCALE_MIN_PIXELS:
            self._render_offset = float(np.median(near))

    def summary(self) -> dict[str, Any]:
        """Frames fused and rejected (by reason), mean ms per stage, scales and map memory."""
        m = self.map
        out: dict[str, Any] = {
            "frames": self._frames,
            "fused": self._fused,
            "rejected": int(sum(self._rejected.values())),
            "rejected_by_reason": dict(self._rejected),
            "ms_mean": {k: float(np.mean(v)) for k, v in self._ms.items() if v},  # last frames
            "map": {
                "blocks": m.block_count,
                "memory_mb": m.memory_bytes / 2**20,
                "allocated_mb": m.allocated_bytes / 2**20,
                "budget_mb": m.options.memory_budget_mb,
                "blocks_freed": m.blocks_freed,
                "voxel_size": m.options.voxel_size,
            },
        }
        if self._scales:
            s = np.asarray(self._scales)
            out["scale"] = {"mean": float(s.mean()), "min": float(s.min()), "max": float(s.max())}
        return out
