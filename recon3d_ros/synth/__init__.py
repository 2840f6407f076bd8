"""Synthetic RGB-D: procedural indoor and outdoor scenes ray cast with exact metric depth.

``render_frame(seed, width, height)`` is deterministic by seed; it is what ``recon3d train``
learns from and what ``recon3d synth`` writes to disk.
"""

from __future__ import annotations

from recon3d_ros.synth.geometry import Box, Cylinder, Material, Plane, RoomShell, Sphere, cast_rays
from recon3d_ros.synth.render import (
    HFOV_RANGE_DEG,
    SynthFrame,
    camera_rays,
    render_frame,
    render_scene,
)
from recon3d_ros.synth.scenes import (
    SCENE_KINDS,
    CameraPose,
    PointLight,
    Scene,
    Sun,
    look_rotation,
    sample_scene,
)

__all__ = [
    "Box",
    "Cylinder",
    "Material",
    "Plane",
    "RoomShell",
    "Sphere",
    "cast_rays",
    "HFOV_RANGE_DEG",
    "SynthFrame",
    "camera_rays",
    "render_frame",
    "render_scene",
    "SCENE_KINDS",
    "CameraPose",
    "PointLight",
    "Scene",
    "Sun",
    "look_rotation",
    "sample_scene",
]
