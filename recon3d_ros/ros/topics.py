"""Topic names of the depth node, and the launch arguments that remap them.

The node (``ros/node.py``), ``recon3d bench``, the demo's camera link, ``launch/depth.launch.py``
and the tests all take the names from here, so a topic is named in one place. Every name but
``/diagnostics`` is relative: a namespace moves it and a remapping (``-r image:=/cam/image_raw``,
or a launch argument of :data:`TOPIC_ARGUMENTS`) renames it. No rclpy here: the launch file and
static tests import this without a ROS install.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "IMAGE",
    "IMAGE_COMPRESSED",
    "CAMERA_INFO",
    "SCALE_POINTS",
    "SCALE_DEPTH",
    "DEPTH_IMAGE",
    "DEPTH_CAMERA_INFO",
    "POINTS",
    "DIAGNOSTICS",
    "INPUTS",
    "OUTPUTS",
    "RELATIVE",
    "TopicArgument",
    "TOPIC_ARGUMENTS",
    "remappings",
]

# ------------------------------------------------------------------------------------- inputs
IMAGE = "image"  # sensor_msgs/Image, transport raw
IMAGE_COMPRESSED = "image/compressed"  # sensor_msgs/CompressedImage, transport compressed
CAMERA_INFO = "camera_info"
SCALE_POINTS = "scale/points"  # scale_mode sparse: metric reference points
SCALE_DEPTH = "scale/depth"  # scale_mode sparse: metric reference depth image
# ------------------------------------------------------------------------------------ outputs
DEPTH_IMAGE = "depth/image"
DEPTH_CAMERA_INFO = "depth/camera_info"
POINTS = "points"
DIAGNOSTICS = "/diagnostics"  # absolute: the diagnostics aggregator reads this one topic

INPUTS: tuple[str, ...] = (IMAGE, IMAGE_COMPRESSED, CAMERA_INFO, SCALE_POINTS, SCALE_DEPTH)
OUTPUTS: tuple[str, ...] = (DEPTH_IMAGE, DEPTH_CAMERA_INFO, POINTS, DIAGNOSTICS)
#: The names a namespace or a remapping moves: every one but /diagnostics.
RELATIVE: tuple[str, ...] = tuple(t for t in INPUTS + OUTPUTS if not t.startswith("/"))


@dataclass(frozen=True)
class TopicArgument:
    """A launch argument that remaps one node topic (its default is the topic itself).

    ``subtopics`` are remapped next to it: with ``image_topic:=/cam/image_raw``,
    ``image/compressed`` becomes ``/cam/image_raw/compressed``, where image_transport
    publishes the compressed stream of a raw topic.
    """

    name: str
    topic: str
    description: str
    subtopics: tuple[str, ...] = ()


TOPIC_ARGUMENTS: tuple[TopicArgument, ...] = (
    TopicArgument("image_topic", IMAGE, f"RGB image input (the node's `{IMAGE}`; "
                  f"`{IMAGE_COMPRESSED}` follows it)", subtopics=("compressed",)),
    TopicArgument("camera_info_topic", CAMERA_INFO, f"CameraInfo of the image (`{CAMERA_INFO}`)"),
    TopicArgument("depth_topic", DEPTH_IMAGE,
                  f"metric depth output, 32FC1 metres (`{DEPTH_IMAGE}`)"),
    TopicArgument("depth_camera_info_topic", DEPTH_CAMERA_INFO,
                  f"CameraInfo of the depth image (`{DEPTH_CAMERA_INFO}`)"),
    TopicArgument("points_topic", POINTS, f"PointCloud2 output (`{POINTS}`)"),
    TopicArgument("scale_points_topic", SCALE_POINTS,
                  f"metric reference points, scale_mode sparse (`{SCALE_POINTS}`)"),
    TopicArgument("scale_depth_topic", SCALE_DEPTH,
                  f"metric reference depth image, scale_mode sparse (`{SCALE_DEPTH}`)"),
)


def remappings(
    value_of: Callable[[str], Any], names: tuple[str, ...] | None = None
) -> list[tuple[str, Any]]:
    """Return ``(node topic, new name)`` pairs for the arguments of :data:`TOPIC_ARGUMENTS`.

    ``value_of(argument_name)`` gives an argument's value: the launch file passes
    ``LaunchConfiguration``. A subtopic's new name is ``[value, "/<subtopic>"]``, a list that
    launch concatenates. ``names`` keeps only those arguments (rviz2 needs three of them).
    """
    pairs: list[tuple[str, Any]] = []
    for argument in TOPIC_ARGUMENTS:
        if names is not None and argument.name not in names:
            continue
        value = value_of(argument.name)
        pairs.append((argument.topic, value))
        pairs += [(f"{argument.topic}/{sub}", [value, f"/{sub}"]) for sub in argument.subtopics]
    return pairs
