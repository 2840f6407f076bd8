r"""Launch the depth node and the fusion node together: a camera in, a map and a mesh out.

Example (a camera driver's topics, odometry from the robot, rviz2 showing the mesh)::

    ros2 launch recon3d_ros reconstruction.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info \
        pose_source:=odometry odom_topic:=/odom use_rviz:=true

Both nodes run in ``namespace``; the fusion node's inputs (``depth/image``,
``depth/camera_info``, ``image``) follow the depth node's topic arguments, so it fuses what the
depth node publishes. Poses come from TF (``map_frame`` <- the camera's optical frame) where
tf2_ros is installed, else from ``odom_topic`` / ``pose_topic`` (``pose_source``).

Parameters: ``params_file`` (config/recon3d.yaml) for the depth node, ``fusion_params_file``
(config/fusion.yaml) for the fusion node; ``model``, ``device``, ``backend``, ``pose_source``
and ``map_frame`` override them only when given. With ``use_rviz:=true`` the launch fails before
it starts any process if rviz2 is not installed. ``dds_profile`` works as in depth.launch.py: the
large-message Fast DDS profile for every process started here, unless the environment has one,
and so does ``malloc_tuning`` (``GLIBC_TUNABLES``).
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
from recon3d_ros.ros.fusion_params import TOPIC_ARGUMENTS as FUSION_TOPIC_ARGUMENTS
from recon3d_ros.ros.launch_support import (
    find_package_executable, FUSION_NODE_ARGUMENTS, fusion_node_parameters,
    large_message_environment, NODE_ARGUMENTS, node_parameters)
from recon3d_ros.ros.topics import remappings, TOPIC_ARGUMENTS

PACKAGE = "recon3d_ros"
RVIZ_PACKAGE = "rviz2"
RVIZ_EXECUTABLE = "rviz2"
# The depth node's topic arguments whose topics the fusion node subscribes to.
FUSION_INPUT_ARGUMENTS = ("image_topic", "depth_topic", "depth_camera_info_topic")
# The depth node's topic arguments whose topics config/reconstruction.rviz displays.
RVIZ_TOPIC_ARGUMENTS = ("image_topic",)


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "recon3d.yaml")
    default_fusion_params = os.path.join(share, "config", "fusion.yaml")
    default_rviz = os.path.join(share, "config", "reconstruction.rviz")
    default_dds_profile = os.path.join(share, "config", PROFILE_FILE_NAME)

    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of both nodes and their relative topics"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters file of the depth node ('': none)"),
        DeclareLaunchArgument("fusion_params_file", default_value=default_fusion_params,
                              description="YAML parameters file of the fusion node ('': none)"),
        # Empty: not given, so the params files' values apply (see node_parameters).
        DeclareLaunchArgument("model", default_value="",
                              description="depth model: preset name or .pt / .onnx / .engine "
                                          "file (default: the params file's)"),
        DeclareLaunchArgument("device", default_value="",
                              description="depth network device: auto, cpu, cuda or cuda:N "
                                          "(default: the params file's)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto, torch, onnxruntime or tensorrt "
                                          "(default: the params file's)"),
        DeclareLaunchArgument("pose_source", default_value="",
                              description="auto, tf, odometry or pose "
                                          "(default: the fusion params file's)"),
        DeclareLaunchArgument("map_frame", default_value="",
                              description="frame of the map and the mesh "
                                          "(default: the fusion params file's)"),
        # Relative topic names (recon3d_ros/ros/topics.py and fusion_params.py), each
        # defaulting to the node's own name.
        *(DeclareLaunchArgument(argument.name, default_value=argument.topic,
                                description=argument.description)
          for argument in TOPIC_ARGUMENTS + FUSION_TOPIC_ARGUMENTS),
        DeclareLaunchArgument("log_level", default_value="info",
                              description="debug, info, warn, error or fatal"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start rviz2 with the reconstruction config"),
        DeclareLaunchArgument("rviz_config", default_value=default_rviz,
                              description="rviz2 config file"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="map",
                              description="rviz2 fixed frame: the fusion node's map_frame"),
        DeclareLaunchArgument("dds_profile", default_value=default_dds_profile,
                              description="Fast DDS XML profile for every process started here "
                                          "(FASTDDS_DEFAULT_PROFILES_FILE; 'none': none); "
                                          "one already in the environment wins"),
        DeclareLaunchArgument("malloc_tuning", default_value="true",
                              description="GLIBC_TUNABLES for every process started here, "
                                          "to keep freed MB buffers for reuse (recon3d_ros/ros/"
                                          "malloc_tuning.py); malloc settings of your own win"),
    ]

    # One OpaqueFunction creates every process, after checking what they need: a failed check
    # then ends the launch before anything has started, so nothing can outlive it.
    return LaunchDescription(arguments + [OpaqueFunction(function=start_nodes)])


def fusion_remappings() -> list[tuple[str, object]]:
    """Remap the fusion node's inputs to the depth node's topics, its own to their arguments."""
    return remappings(LaunchConfiguration, FUSION_INPUT_ARGUMENTS) + [
        (argument.topic, LaunchConfiguration(argument.name))
        for argument in FUSION_TOPIC_ARGUMENTS]


def start_nodes(context: LaunchContext) -> list[LaunchDescriptionEntity]:
    """Check that rviz2 exists when it is asked for, then return both nodes (and rviz2)."""
    use_rviz = IfCondition(LaunchConfiguration("use_rviz")).evaluate(context)
    if use_rviz:
        # Raises (and launch stops with its message) before any node is started.
        find_package_executable(RVIZ_PACKAGE, RVIZ_EXECUTABLE, reason="use_rviz:=true")
    given = {name: LaunchConfiguration(name).perform(context) for name in NODE_ARGUMENTS}
    fusion_given = {name: LaunchConfiguration(name).perform(context)
                    for name in FUSION_NODE_ARGUMENTS}
    # Both files are checked here, before either node exists.
    depth_parameters = node_parameters(given)
    fusion_parameters = fusion_node_parameters(fusion_given)
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
        parameters=depth_parameters,
        remappings=remappings(LaunchConfiguration),
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )
    fusion_node = Node(
        package=PACKAGE,
        executable="fusion_node",
        name="fusion_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=fusion_parameters,
        remappings=fusion_remappings(),
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )

    if not use_rviz:
        return environment + [depth_node, fusion_node]
    rviz = Node(
        package=RVIZ_PACKAGE,
        executable=RVIZ_EXECUTABLE,
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", LaunchConfiguration("rviz_config"),
                   "-f", LaunchConfiguration("rviz_fixed_frame")],
        # The rviz config uses the nodes' relative topic names, so remap them the same way.
        remappings=remappings(LaunchConfiguration, RVIZ_TOPIC_ARGUMENTS) + [
            (argument.topic, LaunchConfiguration(argument.name))
            for argument in FUSION_TOPIC_ARGUMENTS],
        output="screen",
    )
    return environment + [depth_node, fusion_node, rviz]
