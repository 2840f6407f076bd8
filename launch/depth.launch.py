r"""Launch the recon3d_ros depth node for one camera (and optionally rviz2).

Example::

    ros2 launch recon3d_ros depth.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Outputs are published under the node's namespace as ``depth/image``, ``depth/camera_info``
and ``points`` unless remapped with ``depth_topic``, ``depth_camera_info_topic`` and
``points_topic``.

The params file (``params_file``, default the installed ``config/recon3d.yaml``) applies first;
``model``, ``device`` and ``backend`` override it only when given. With ``use_rviz:=true`` the
launch fails before it starts any process if rviz2 is not installed. ``dds_profile`` (default
the installed ``config/fastdds_large_data.xml``, ``none`` for none) becomes the node's and
rviz2's ``FASTDDS_DEFAULT_PROFILES_FILE`` unless the environment already sets one;
``malloc_tuning`` (default ``true``) gives both ``GLIBC_TUNABLES`` that keep freed megabyte
buffers for reuse, unless the environment has malloc settings of its own (README "Performance").
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription, LaunchDescriptionEntity
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from recon3d_ros.ros.dds_profile import PROFILE_FILE_NAME
from recon3d_ros.ros.launch_support import (
    find_package_executable, large_message_environment, NODE_ARGUMENTS, node_parameters)
from recon3d_ros.ros.topics import remappings, TOPIC_ARGUMENTS

PACKAGE = "recon3d_ros"
RVIZ_PACKAGE = "rviz2"
RVIZ_EXECUTABLE = "rviz2"
# The topic arguments whose topics config/recon3d.rviz displays.
RVIZ_TOPIC_ARGUMENTS = ("image_topic", "depth_topic", "points_topic")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "recon3d.yaml")
    default_rviz = os.path.join(share, "config", "recon3d.rviz")
    default_dds_profile = os.path.join(share, "config", PROFILE_FILE_NAME)

    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and of its relative topics"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters file of the node ('': none)"),
        # Empty: not given, so the params file's value applies (see node_parameters).
        DeclareLaunchArgument("model", default_value="",
                              description="preset name or path to a .pt / .onnx / .engine "
                                          "model (default: the params file's)"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N "
                                          "(default: the params file's)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto, torch, onnxruntime or tensorrt "
                                          "(default: the params file's)"),
        # The node's topic names are relative, so `namespace` moves all of them; these
        # arguments (recon3d_ros/ros/topics.py) remap them, e.g. to a camera driver's absolute
        # topics. Each defaults to the node's own name.
        *(DeclareLaunchArgument(argument.name, default_value=argument.topic,
                                description=argument.description)
          for argument in TOPIC_ARGUMENTS),
        DeclareLaunchArgument("log_level", default_value="info",
                              description="debug, info, warn, error or fatal"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start rviz2 with the recon3d config"),
        DeclareLaunchArgument("rviz_config", default_value=default_rviz,
                              description="rviz2 config file"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="camera_optical_frame",
                              description="rviz2 fixed frame: the frame_id of your images"),
        DeclareLaunchArgument("dds_profile", default_value=default_dds_profile,
                              description="Fast DDS XML profile for the node and rviz2 "
                                          "(FASTDDS_DEFAULT_PROFILES_FILE; 'none': none); "
                                          "one already in the environment wins"),
        DeclareLaunchArgument("malloc_tuning", default_value="true",
                              description="GLIBC_TUNABLES for the node and rviz2, to keep "
                                          "freed MB buffers for reuse (recon3d_ros/ros/"
                                          "malloc_tuning.py); malloc settings of your own win"),
    ]

    # One OpaqueFunction creates every process, after checking what they need: a failed check
    # then ends the launch before anything has started, so nothing can outlive it.
    return LaunchDescription(arguments + [OpaqueFunction(function=start_nodes)])


def start_nodes(context: LaunchContext) -> list[LaunchDescriptionEntity]:
    """Check that rviz2 exists when it is asked for, then return the depth node (and rviz2)."""
    use_rviz = IfCondition(LaunchConfiguration("use_rviz")).evaluate(context)
    if use_rviz:
        # Raises (and launch stops with its message) before the depth node is started.
        find_package_executable(RVIZ_PACKAGE, RVIZ_EXECUTABLE, reason="use_rviz:=true")
    given = {name: LaunchConfiguration(name).perform(context) for name in NODE_ARGUMENTS}
    # Images, depth and clouds are MBs: the large-message DDS profile and malloc settings for
    # every process started here, unless the user's environment has its own
    # (recon3d_ros/ros/dds_profile.py, malloc_tuning.py).
    environment: list[LaunchDescriptionEntity] = [
        SetEnvironmentVariable(name, value) for name, value in large_message_environment(
            os.environ, LaunchConfiguration("dds_profile").perform(context),
            LaunchConfiguration("malloc_tuning").perform(context)).items()]

    depth_node = Node(
        package=PACKAGE,
        executable="depth_node",
        name="depth_node",
        namespace=LaunchConfiguration("namespace"),
        # The params file, then only the model/device/backend arguments the user gave.
        parameters=node_parameters(given),
        # Every topic of the node, each to its argument's value (`image/compressed`, used with
        # `transport: compressed`, to `<image_topic>/compressed`, where image_transport
        # publishes it).
        remappings=remappings(LaunchConfiguration),
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )

    if not use_rviz:
        return environment + [depth_node]
    rviz = Node(
        package=RVIZ_PACKAGE,
        executable=RVIZ_EXECUTABLE,
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", LaunchConfiguration("rviz_config"),
                   "-f", LaunchConfiguration("rviz_fixed_frame")],
        # The rviz config uses the node's relative topic names, so remap them the same way.
        remappings=remappings(LaunchConfiguration, RVIZ_TOPIC_ARGUMENTS),
        output="screen",
    )

    return environment + [depth_node, rviz]
