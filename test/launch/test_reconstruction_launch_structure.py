"""launch/reconstruction.launch.py run against stand-ins for launch and launch_ros.

launch and launch_ros are not installable here, so the launch file is executed with small
stand-ins for the classes it uses (they record what they are given) and its
``generate_launch_description`` / ``start_nodes`` are called like launch would: what is checked
is what the file would hand to launch_ros (nodes, parameters, remappings, rviz2 arguments),
for default and given arguments. The parameter and rviz2 checks' own logic is tested in
test/ros/test_launch_support.py.
"""

from __future__ import annotations

import ast
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("rclpy")

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.ros import fusion_params, topics  # noqa: E402
from recon3d_ros.ros import launch_support  # noqa: E402
from recon3d_ros.ros.malloc_tuning import TUNABLES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "reconstruction.launch.py"
RVIZ_FILE = REPO / "config" / "reconstruction.rviz"
FUSION_NODE_MODULE = REPO / "recon3d_ros" / "ros" / "fusion_node.py"


class Recorder:
    """What the stand-ins saw: LaunchConfiguration names read, Nodes created."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.nodes: list[dict[str, Any]] = []


@pytest.fixture
def launch_file(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Recorder]:
    """Execute the launch file with stand-in launch modules; return its namespace."""
    seen = Recorder()

    class LaunchConfiguration:
        def __init__(self, name: str) -> None:
            self.name = name
            seen.read.add(name)

        def perform(self, context: dict[str, str]) -> str:
            return context[self.name]

    class IfCondition:
        def __init__(self, value: LaunchConfiguration) -> None:
            self.value = value

        def evaluate(self, context: dict[str, str]) -> bool:
            return self.value.perform(context).lower() in ("true", "1")

    class DeclareLaunchArgument:
        def __init__(self, name: str, default_value: str, description: str) -> None:
            self.name, self.default_value, self.description = name, default_value, description

    class OpaqueFunction:
        def __init__(self, function: Any) -> None:
            self.function = function

    class SetEnvironmentVariable:
        def __init__(self, name: str, value: str) -> None:
            self.name, self.value = name, value

    def node(**kwargs: Any) -> dict[str, Any]:
        seen.nodes.append(kwargs)
        return kwargs

    stubs = {
        "launch": {"LaunchContext": dict, "LaunchDescription": list,
                   "LaunchDescriptionEntity": object},
        "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument,
                           "OpaqueFunction": OpaqueFunction,
                           "SetEnvironmentVariable": SetEnvironmentVariable},
        "launch.conditions": {"IfCondition": IfCondition},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": node},
    }
    for name, attributes in stubs.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    import ament_index_python.packages as packages

    monkeypatch.setattr(packages, "get_package_share_directory", lambda package: str(REPO))
    return runpy.run_path(str(LAUNCH_FILE)), seen


def declared(namespace: dict[str, Any]) -> dict[str, Any]:
    description = namespace["generate_launch_description"]()
    return {entity.name: entity for entity in description if hasattr(entity, "default_value")}


def context(launch: dict[str, Any], **given: str) -> dict[str, str]:
    """Every launch argument's value: its default, or what ``given`` says."""
    values = {name: argument.default_value for name, argument in declared(launch).items()}
    unknown = set(given) - set(values)
    assert not unknown, f"not launch arguments: {unknown}"
    return {**values, **given}


def resolved(pairs: list[tuple[str, Any]], values: dict[str, str]) -> dict[str, str]:
    """Remappings with every LaunchConfiguration (or list of parts) substituted."""

    def text(value: Any) -> str:
        if isinstance(value, list):
            return "".join(text(part) for part in value)
        return value if isinstance(value, str) else value.perform(values)

    return {source: text(target) for source, target in pairs}


def by_executable(nodes: list[Any]) -> dict[str, dict[str, Any]]:
    return {node["executable"]: node for node in nodes if isinstance(node, dict)}


def environment(entities: list[Any]) -> dict[str, str]:
    return {e.name: e.value for e in entities if not isinstance(e, dict)}


def test_the_large_message_environment_is_set_for_every_process_unless_the_user_has_one(
    launch_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace, _ = launch_file
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS",
                 "RMW_IMPLEMENTATION", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    entities = namespace["start_nodes"](context(namespace))
    profile = str(REPO / "config" / "fastdds_large_data.xml")
    assert environment(entities) == {"FASTDDS_DEFAULT_PROFILES_FILE": profile,
                                     "GLIBC_TUNABLES": TUNABLES}
    # They come before the processes, so all of them start with them.
    assert not any(isinstance(e, dict) for e in entities[:2])
    assert environment(namespace["start_nodes"](
        context(namespace, dds_profile="none", malloc_tuning="false"))) == {}
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/my_profile.xml")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert environment(namespace["start_nodes"](context(namespace))) == {}


def test_defaults_start_both_nodes_with_the_packaged_params_files(launch_file: Any) -> None:
    namespace, seen = launch_file
    values = context(namespace)
    nodes = by_executable(namespace["start_nodes"](values))
    assert set(nodes) == {"depth_node", "fusion_node"}
    assert nodes["depth_node"]["parameters"] == [str(REPO / "config" / "recon3d.yaml")]
    assert nodes["fusion_node"]["parameters"] == [str(REPO / "config" / "fusion.yaml")]
    assert nodes["fusion_node"]["name"] == fusion_params.NODE_NAME
    for node in nodes.values():
        pairs = resolved(node["remappings"], values)
        assert all(source == target for source, target in pairs.items()), pairs
        assert node["namespace"].perform(values) == ""


def test_fusion_node_follows_the_depth_nodes_topics_and_its_own(launch_file: Any) -> None:
    namespace, _ = launch_file
    values = context(namespace, image_topic="/cam/color", depth_topic="/cam/depth",
                     depth_camera_info_topic="/cam/depth_info", odom_topic="/robot/odom",
                     mesh_topic="/viz/mesh", namespace="front")
    nodes = by_executable(namespace["start_nodes"](values))
    fusion = resolved(nodes["fusion_node"]["remappings"], values)
    depth = resolved(nodes["depth_node"]["remappings"], values)
    # What the depth node publishes is what the fusion node subscribes to.
    assert fusion[fusion_params.DEPTH_IMAGE] == depth[topics.DEPTH_IMAGE] == "/cam/depth"
    assert fusion[fusion_params.DEPTH_CAMERA_INFO] == depth[topics.DEPTH_CAMERA_INFO] \
        == "/cam/depth_info"
    assert fusion[fusion_params.COLOR_IMAGE] == depth[topics.IMAGE] == "/cam/color"
    assert fusion[fusion_params.ODOMETRY] == "/robot/odom"
    assert fusion[fusion_params.MESH] == "/viz/mesh"
    assert fusion[fusion_params.POSE] == fusion_params.POSE
    assert fusion[fusion_params.MAP_POINTS] == fusion_params.MAP_POINTS
    assert nodes["fusion_node"]["namespace"].perform(values) == "front"


def test_every_relative_topic_of_the_fusion_node_is_remapped(launch_file: Any) -> None:
    namespace, _ = launch_file
    values = context(namespace)
    fusion = by_executable(namespace["start_nodes"](values))["fusion_node"]
    sources = set(resolved(fusion["remappings"], values))
    # The topics the node creates, read from its source (all through fusion_params names).
    tree = ast.parse(FUSION_NODE_MODULE.read_text(encoding="utf-8"))
    used = set()
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") in (
                "create_subscription", "create_publisher"):
            topic = call.args[1]
            assert isinstance(topic, ast.Attribute) and topic.value.id == "names", \
                ast.unparse(call)
            used.add(getattr(fusion_params, topic.attr))
    relative = {topic for topic in used if not topic.startswith("/")}
    assert relative == {fusion_params.DEPTH_IMAGE, fusion_params.DEPTH_CAMERA_INFO,
                        fusion_params.COLOR_IMAGE, fusion_params.ODOMETRY, fusion_params.POSE,
                        fusion_params.MESH, fusion_params.MAP_POINTS}
    assert relative <= sources, relative - sources


def test_given_overrides_follow_the_files_and_blank_ones_do_not(launch_file: Any) -> None:
    namespace, _ = launch_file
    values = context(namespace, pose_source="odometry", device="cpu")
    nodes = by_executable(namespace["start_nodes"](values))
    assert nodes["fusion_node"]["parameters"] == [str(REPO / "config" / "fusion.yaml"),
                                                  {"pose_source": "odometry"}]
    assert nodes["depth_node"]["parameters"][1] == {"device": "cpu"}
    # The override arguments are parameters of the fusion node, passed only when given.
    for name in launch_support.FUSION_OVERRIDE_ARGUMENTS:
        assert name in {spec.name for spec in fusion_params.PARAMS}
        assert declared(namespace)[name].default_value == ""


def test_a_missing_params_file_or_rviz2_stops_the_launch_before_any_node(
        launch_file: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    namespace, seen = launch_file
    with pytest.raises(ConfigError, match="fusion_params_file:=.* is not a file"):
        namespace["start_nodes"](context(namespace,
                                         fusion_params_file=str(tmp_path / "none.yaml")))
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))  # no rviz2 in this ament index
    with pytest.raises(ConfigError, match="use_rviz:=true needs the ROS package 'rviz2'"):
        namespace["start_nodes"](context(namespace, use_rviz="true"))
    assert seen.nodes == []


def test_rviz_shows_the_mesh_with_the_packaged_config(launch_file: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    namespace, _ = launch_file
    namespace["start_nodes"].__globals__["find_package_executable"] = \
        lambda package, executable, reason: f"/opt/{package}/{executable}"
    values = context(namespace, use_rviz="true", mesh_topic="/viz/mesh")
    nodes = by_executable(namespace["start_nodes"](values))
    rviz = nodes["rviz2"]
    arguments = [a if isinstance(a, str) else a.perform(values) for a in rviz["arguments"]]
    assert arguments == ["-d", str(RVIZ_FILE), "-f", "map"]
    pairs = resolved(rviz["remappings"], values)
    displays = yaml.safe_load(RVIZ_FILE.read_text(encoding="utf-8"))[
        "Visualization Manager"]["Displays"]
    shown = {d["Topic"]["Value"]: d for d in displays if "Topic" in d}
    assert set(shown) <= set(pairs), (set(shown), pairs)
    assert pairs[fusion_params.MESH] == "/viz/mesh"
    mesh = shown[fusion_params.MESH]
    assert mesh["Class"] == "rviz_default_plugins/Marker"
    # The node publishes the mesh reliable + transient_local: rviz2 must ask for no more.
    assert mesh["Topic"]["Reliability Policy"] == "Reliable"
    assert yaml.safe_load(RVIZ_FILE.read_text())["Visualization Manager"]["Global Options"][
        "Fixed Frame"] == fusion_params.settings_from_values({}).map_frame


def test_every_declared_argument_is_read(launch_file: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    namespace, seen = launch_file
    namespace["start_nodes"].__globals__["find_package_executable"] = \
        lambda package, executable, reason: "/opt/rviz2"
    names = set(declared(namespace))
    namespace["start_nodes"](context(namespace, use_rviz="true"))
    assert names - seen.read == set()
    assert seen.read - names == set()
