"""A short camera sequence through one synthetic scene, built from the synth package's API.

``recon3d_ros.synth`` renders independent random views; a demo wants a camera that moves: one
scene (``sample_scene``), its sampled pose as the start, then a slow walk forward with a gentle
pan, each view ray cast by ``render_scene``. Frames come with exact ground-truth depth.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.demo.sources import Frame

__all__ = ["sequence_poses", "render_sequence"]


def _yaw(angle: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def sequence_poses(start, count: int, step_m: float = 0.04, pan_deg: float = 12.0) -> list:
    """``count`` poses from ``start``: forward ``step_m`` per frame, panning +-``pan_deg``."""
    from recon3d_ros.synth import CameraPose

    rotation0 = np.asarray(start.rotation, dtype=np.float64)
    forward = rotation0[:, 2].copy()
    forward[1] = 0.0  # walk on the level, whatever the camera's pitch
    norm = float(np.linalg.norm(forward))
    forward = forward / norm if norm > 1e-9 else np.array([0.0, 0.0, 1.0])
    position0 = np.asarray(start.position, dtype=np.float64)
    poses = []
    for k in range(count):
        phase = 0.0 if count == 1 else k / (count - 1)
        pan = math.radians(pan_deg) * math.sin(2.0 * math.pi * phase)
        poses.append(
            CameraPose(
                tuple(float(v) for v in position0 + forward * step_m * k),
                _yaw(pan) @ rotation0,
            )
        )
    return poses


def render_sequence(
    count: int,
    width: int = 320,
    height: int = 240,
    seed: int = 7,
    hfov_deg: float = 70.0,
    kind: str = "room",
    step_m: float = 0.04,
    pan_deg: float = 12.0,
) -> Iterator[Frame]:
    """Render ``count`` consecutive views of one scene (deterministic by ``seed``)."""
    from recon3d_ros.synth import render_scene, sample_scene

    scene = sample_scene(np.random.default_rng(seed), kind)
    camera = PinholeCamera.from_fov(width, height, hfov_deg, frame_id="camera_optical_frame")
    for k, pose in enumerate(sequence_poses(scene.pose, count, step_m, pan_deg)):
        # One rng seed for every frame: the same exposure and white balance, as a real camera
        # with locked auto-exposure would give, so colours do not flicker between frames.
        view = render_scene(scene, camera, pose, rng=np.random.default_rng(seed), effects=True)
        depth = np.where(np.isfinite(view.depth), view.depth, np.nan).astype(np.float32)
        yield Frame(k, f"frame_{k:04d}", view.rgb, camera, depth)
