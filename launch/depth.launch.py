r"""Launch the recon3d_ros depth node for one camera (and optionally rviz2).

Example::

    ros2 launch recon3d_ros depth.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Outputs are published under the node's namespace as ``depth/image``, ``depth/camera_info``
and ``points`` unless remapped with ``depth_topic``, ``depth_camera_info_topic`` and
``points_topic``.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "recon3d_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "recon3d.yaml")
    default_rviz = os.path.join(share, "config", "recon3d.rviz")

    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and of its relative topics"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters file of the node"),
        DeclareLaunchArgument("model", default_value="default",
                              description="preset name or path to a .pt / .onnx / .engine model"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto, torch, onnxruntime or tensorrt"),
        # The node's topic names are relative, so `namespace` moves all of them; these
        # arguments remap them, e.g. to a camera driver's absolute topics.
        DeclareLaunchArgument("image_topic", default_value="image",
                              description="RGB image input (the node's `image`)"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info",
                              description="CameraInfo of the image (`camera_info`)"),
        DeclareLaunchArgument("depth_topic", default_value="depth/image",
                              description="metric depth output, 32FC1 metres (`depth/image`)"),
        DeclareLaunchArgument("depth_camera_info_topic", default_value="depth/camera_info",
                              description="CameraInfo of the depth image (`depth/camera_info`)"),
        DeclareLaunchArgument("points_topic", default_value="points",
                              description="PointCloud2 output (`points`)"),
        DeclareLaunchArgument("scale_points_topic", default_value="scale/points",
                              description="metric reference points, scale_mode sparse "
                                          "(`scale/points`)"),
        DeclareLaunchArgument("scale_depth_topic", default_value="scale/depth",
                              description="metric reference depth image, scale_mode sparse "
                                          "(`scale/depth`)"),
        DeclareLaunchArgument("log_level", default_value="info",
                              description="debug, info, warn, error or fatal"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start rviz2 with the recon3d config"),
        DeclareLaunchArgument("rviz_config", default_value=default_rviz,
                              description="rviz2 config file"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="camera_optical_frame",
                              description="rviz2 fixed frame: the frame_id of your images"),
    ]

    depth_node = Node(
        package=PACKAGE,
        executable="depth_node",
        name="depth_node",
        namespace=LaunchConfiguration("namespace"),
        # Launch arguments override the file: they are applied after it.
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model": LaunchConfiguration("model"),
                "device": LaunchConfiguration("device"),
                "backend": LaunchConfiguration("backend"),
            },
        ],
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            # With `transport: compressed` the node subscribes to `image/compressed`, which
            # image_transport publishes next to the raw topic.
            ("image/compressed", [LaunchConfiguration("image_topic"), "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
            ("depth/image", LaunchConfiguration("depth_topic")),
            ("depth/camera_info", LaunchConfiguration("depth_camera_info_topic")),
            ("points", LaunchConfiguration("points_topic")),
            ("scale/points", LaunchConfiguration("scale_points_topic")),
            ("scale/depth", LaunchConfiguration("scale_depth_topic")),
        ],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )

    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", LaunchConfiguration("rviz_config"),
                   "-f", LaunchConfiguration("rviz_fixed_frame")],
        # The rviz config uses the node's relative topic names, so remap them the same way.
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            ("depth/image", LaunchConfiguration("depth_topic")),
            ("points", LaunchConfiguration("points_topic")),
        ],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )

    return LaunchDescription(arguments + [depth_node, rviz])
