r"""Every parameter and topic of the fusion node, declared in one place.

The table follows :mod:`recon3d_ros.ros.params` (the depth node's): each :class:`ParamSpec` has
its default, description, range (enforced by rclpy through the descriptor) and allowed strings;
:func:`settings_from_values` checks a name -> value mapping into an immutable
:class:`FusionSettings`. Every fusion parameter is read-only: the map's voxel size, budget and
device are fixed when the map is made, and the subscriptions when the node starts.

Memory: Open3D's voxel block grid stores blocks of ``block_resolution``\ :sup:`3` voxels (TSDF,
weight and colour); ``memory_budget_mb`` bounds how many blocks the map may hold
(:attr:`recon3d_ros.reconstruction.tsdf.MapOptions.max_blocks`), and ``clear_radius`` frees
blocks farther than that from the camera, so a long walk keeps the map the size of the
neighbourhood instead of growing until the budget is hit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import os
from typing import Any, Mapping

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ConfigError
from recon3d_ros.ros.params import (
    check_values,
    declare_values,
    IDENTITY_4X4,
    ParamSpec,
)
from recon3d_ros.ros.qos import RELIABILITY_CHOICES
from recon3d_ros.ros.topics import TopicArgument

__all__ = [
    "NODE_NAME",
    "DEPTH_IMAGE",
    "DEPTH_CAMERA_INFO",
    "COLOR_IMAGE",
    "ODOMETRY",
    "POSE",
    "MESH",
    "MAP_POINTS",
    "DIAGNOSTICS",
    "SAVE_MAP",
    "RESET",
    "TOPIC_ARGUMENTS",
    "POSE_SOURCES",
    "PARAMS",
    "FusionSettings",
    "settings_from_values",
    "declare_all",
    "tf2_available",
]

NODE_NAME = "fusion_node"

# ------------------------------------------------------------------------------------- topics
# Relative (a namespace moves them, -r renames them); the inputs are the depth node's outputs
# and its colour input, so the two nodes connect in one namespace without remapping.
DEPTH_IMAGE = "depth/image"  # sensor_msgs/Image 32FC1 m or 16UC1 mm
DEPTH_CAMERA_INFO = "depth/camera_info"
COLOR_IMAGE = "image"  # optional colour, registered to the depth (resized to its size)
ODOMETRY = "odom"  # nav_msgs/Odometry, pose_source odometry
POSE = "pose"  # geometry_msgs/PoseStamped, pose_source pose
MESH = "mesh"  # visualization_msgs/Marker TRIANGLE_LIST
MAP_POINTS = "map/points"  # sensor_msgs/PointCloud2 of the surface
DIAGNOSTICS = "/diagnostics"
SAVE_MAP = "~/save_map"  # std_srvs/Trigger
RESET = "~/reset"  # std_srvs/Trigger

#: Launch arguments that remap the fusion node's own topics (reconstruction.launch.py); the
#: depth and colour inputs follow the depth node's arguments of recon3d_ros.ros.topics.
TOPIC_ARGUMENTS: tuple[TopicArgument, ...] = (
    TopicArgument("odom_topic", ODOMETRY, f"nav_msgs/Odometry input, pose_source odometry "
                  f"(`{ODOMETRY}`)"),
    TopicArgument("pose_topic", POSE, f"geometry_msgs/PoseStamped input, pose_source pose "
                  f"(`{POSE}`)"),
    TopicArgument("mesh_topic", MESH, f"mesh output, visualization_msgs/Marker (`{MESH}`)"),
    TopicArgument("map_points_topic", MAP_POINTS,
                  f"surface point cloud output (`{MAP_POINTS}`)"),
)

POSE_SOURCES = ("auto", "tf", "odometry", "pose")

PARAMS: tuple[ParamSpec, ...] = (
    # ---------------------------------------------------------------- poses
    ParamSpec(
        "pose_source",
        "auto",
        "Where each depth frame's camera pose comes from: 'tf' looks up map_frame -> the depth "
        "image's frame_id (needs tf2_ros, i.e. a ROS install); 'odometry' reads nav_msgs/"
        "Odometry on 'odom', 'pose' geometry_msgs/PoseStamped on 'pose' (both: the pose of "
        "camera_extrinsic's base in map_frame); 'auto' = tf where tf2_ros imports, else "
        "odometry.",
        choices=POSE_SOURCES,
    ),
    ParamSpec(
        "map_frame",
        "map",
        "World frame of the map: frame_id of 'mesh' and 'map/points', target of the TF lookup, "
        "and the frame_id that Odometry/PoseStamped headers must carry ('' accepts any).",
    ),
    ParamSpec(
        "odom_frame",
        "odom",
        "Odometry frame, only used to explain a missing map_frame in TF (no localisation "
        "running: set map_frame to this frame to map in odometry coordinates).",
    ),
    ParamSpec(
        "pose_tolerance",
        0.05,
        "Largest gap in seconds between a depth stamp and the poses used for it: the pose is "
        "interpolated between neighbours (or the nearest one) within this; frames without "
        "such a pose are counted as rejected, never fused with a guess.",
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "pose_wait",
        0.5,
        "Longest time in seconds a depth frame waits for its pose (odometry and TF arrive "
        "after the image) before it is rejected; frames arriving meanwhile replace each "
        "other in the one-frame input slot (counted as dropped).",
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "camera_extrinsic",
        IDENTITY_4X4,
        "T_base_camera: 4x4 transform (16 doubles, row-major) from the depth camera's optical "
        "frame to the frame whose pose Odometry/PoseStamped give; identity (or []) when they "
        "give the optical frame's pose itself. Not used with tf (TF has the chain).",
    ),
    # ---------------------------------------------------------------- map
    ParamSpec(
        "voxel_size",
        0.05,
        "Voxel edge in metres (2 cm for objects and rooms, 5 cm keeps up with a 15 Hz "
        "stream on a CPU).",
        value_range=(0.001, 1.0),
    ),
    ParamSpec(
        "trunc_voxels",
        4.0,
        "TSDF truncation distance in voxels.",
        value_range=(1.0, 64.0),
    ),
    ParamSpec(
        "block_resolution",
        16,
        "Voxels per block edge (Open3D's voxel block grid).",
        value_range=(4, 64),
    ),
    ParamSpec(
        "memory_budget_mb",
        512.0,
        "Most memory in MB (2^20 bytes) the map's voxel blocks may take (80 KiB per 16^3 "
        "block): before a frame would pass it, the blocks farthest from the camera are freed.",
        value_range=(1.0, 1_000_000.0),
    ),
    ParamSpec(
        "clear_radius",
        0.0,
        "Blocks farther than this (metres) from the camera are freed after each frame; 0 "
        "keeps the whole map.",
        value_range=(0.0, 10_000.0),
    ),
    ParamSpec(
        "depth_max",
        5.0,
        "Depth beyond this (metres) is not integrated.",
        value_range=(0.01, 1000.0),
    ),
    ParamSpec(
        "device",
        "cpu",
        "Open3D device of the map: 'cpu' or 'cuda' / 'cuda:N' (the CUDA open3d wheel).",
    ),
    ParamSpec(
        "scale_mode",
        "none",
        "'map' rescales each depth frame to agree with the map's depth rendered from its pose "
        "before fusing (monocular depth, e.g. the depth node's, drifts in scale from frame to "
        "frame, which fusion turns into doubled surfaces); 'none' fuses metric depth (an "
        "RGB-D camera) as it is.",
        choices=("none", "map"),
    ),
    ParamSpec(
        "use_color",
        True,
        "Subscribe 'image' and colour the map with the image of each depth stamp (frames "
        "whose colour image has not arrived are fused grey).",
    ),
    # ---------------------------------------------------------------- outputs
    ParamSpec(
        "mesh_rate",
        1.0,
        "Hz at which the mesh is published on 'mesh' when frames were fused since the last "
        "one (0 = only on save_map); each update re-meshes only the blocks that changed, in "
        "its own thread.",
        value_range=(0.0, 100.0),
    ),
    ParamSpec(
        "mesh_max_triangles",
        0,
        "Most triangles in a 'mesh' message (0 = all): beyond it the blocks farthest from the "
        "camera are left out of the message (not the map). A TRIANGLE_LIST Marker takes 120 "
        "bytes per triangle (250k triangles: 30 MB per message).",
        value_range=(0, 100_000_000),
    ),
    ParamSpec(
        "points_rate",
        1.0,
        "Hz at which the surface points are published on 'map/points' (0 = never).",
        value_range=(0.0, 100.0),
    ),
    ParamSpec(
        "save_directory",
        "~/.ros/recon3d_map",
        "Directory that ~/save_map writes mesh.ply, points.ply and map/ (TsdfMap.load reads "
        "it back) into; '~' is expanded.",
    ),
    ParamSpec(
        "input_qos_reliability",
        "best_effort",
        "Reliability of the depth/camera_info/image/pose subscriptions (best effort matches "
        "every publisher; use reliable on a lossy link for large images).",
        choices=tuple(RELIABILITY_CHOICES),
    ),
    ParamSpec(
        "input_qos_depth", 5, "History depth of the input subscriptions.", value_range=(1, 100)
    ),
    ParamSpec(
        "diagnostics_period",
        1.0,
        "Seconds between /diagnostics messages.",
        value_range=(0.1, 60.0),
    ),
)


@dataclass(frozen=True)
class FusionSettings:
    """Validated parameter values of the fusion node (one field per :data:`PARAMS` entry)."""

    pose_source: str
    map_frame: str
    odom_frame: str
    pose_tolerance: float
    pose_wait: float
    camera_extrinsic: tuple[float, ...]
    voxel_size: float
    trunc_voxels: float
    block_resolution: int
    memory_budget_mb: float
    clear_radius: float
    depth_max: float
    device: str
    scale_mode: str
    use_color: bool
    mesh_rate: float
    mesh_max_triangles: int
    points_rate: float
    save_directory: str
    input_qos_reliability: str
    input_qos_depth: int
    diagnostics_period: float

    def extrinsic(self) -> npt.NDArray[np.float64]:
        """``camera_extrinsic`` as a 4x4 T_base_camera."""
        return np.asarray(self.camera_extrinsic, dtype=np.float64).reshape(4, 4)

    def save_path(self) -> str:
        return os.path.expanduser(self.save_directory)

    def map_options(self) -> Any:
        """Return the :class:`~recon3d_ros.reconstruction.tsdf.MapOptions` of these settings."""
        from recon3d_ros.reconstruction.tsdf import MapOptions

        return MapOptions(
            voxel_size=self.voxel_size,
            trunc_voxels=self.trunc_voxels,
            block_resolution=self.block_resolution,
            memory_budget_mb=self.memory_budget_mb,
            clear_radius=self.clear_radius,
            depth_max=self.depth_max,
            device=self.device,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def tf2_available() -> bool:
    """Return whether ``tf2_ros`` imports (a ROS install; no tf2 wheels exist on PyPI)."""
    try:
        import tf2_ros  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def settings_from_values(values: Mapping[str, Any]) -> FusionSettings:
    """Validate ``values`` (missing names take their defaults) into :class:`FusionSettings`.

    ``pose_source: auto`` is resolved here (tf where tf2_ros imports, else odometry), so the
    settings name the source actually used; an explicit ``tf`` without tf2_ros is an error.
    """
    checked = check_values(PARAMS, values)
    if checked["pose_source"] == "auto":
        checked["pose_source"] = "tf" if tf2_available() else "odometry"
    elif checked["pose_source"] == "tf" and not tf2_available():
        raise ConfigError(
            "pose_source 'tf' needs tf2_ros, which is not importable (it comes with a ROS "
            "install, e.g. apt install ros-kilted-tf2-ros, and has no pip wheel); on a pip "
            "install use pose_source 'odometry' (nav_msgs/Odometry on 'odom') or 'pose' "
            "(geometry_msgs/PoseStamped on 'pose')"
        )
    if not str(checked["device"]).strip():
        raise ConfigError("parameter 'device' is empty: give 'cpu' or 'cuda'")
    return FusionSettings(**checked)


def declare_all(node: Any) -> FusionSettings:
    """Declare every fusion node parameter on ``node`` and return the settings."""
    return settings_from_values(declare_values(node, PARAMS))
