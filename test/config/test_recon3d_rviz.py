"""config/recon3d.rviz: displays of the node's topics with QoS that matches the node.

rviz2 only receives messages when its subscription's QoS is compatible with the publisher's:
a Reliable display never matches a best-effort publisher, a Transient Local one never matches
a volatile publisher. The node's output QoS comes from config/recon3d.yaml, its topic names
from recon3d_ros/ros/topics.py (test/launch/test_depth_launch_structure.py checks that node.py
uses exactly those).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from recon3d_ros.ros import topics

REPO = Path(__file__).resolve().parents[2]
RVIZ_FILE = REPO / "config" / "recon3d.rviz"
PARAMS_FILE = REPO / "config" / "recon3d.yaml"
LAUNCH_FILE = REPO / "launch" / "depth.launch.py"


@pytest.fixture(scope="module")
def rviz() -> dict[str, Any]:
    return yaml.safe_load(RVIZ_FILE.read_text(encoding="utf-8"))


def displays_by_topic(rviz: dict[str, Any]) -> dict[str, dict[str, Any]]:
    displays = rviz["Visualization Manager"]["Displays"]
    return {display["Topic"]["Value"]: display for display in displays if "Topic" in display}


def node_output_qos() -> tuple[str, str]:
    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    section = next(iter(params.values()))["ros__parameters"]
    return section["output_qos_reliability"], section["output_qos_durability"]


def test_has_the_sections_rviz2_loads(rviz: dict[str, Any]) -> None:
    assert {"Panels", "Visualization Manager", "Window Geometry"} <= set(rviz)
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_optical_frame"
    assert manager["Views"]["Current"]["Class"] == "rviz_default_plugins/Orbit"
    for panel in rviz["Panels"]:
        assert panel["Class"].startswith("rviz_common/"), panel["Class"]
    for display in manager["Displays"]:
        assert display["Class"].startswith("rviz_default_plugins/"), display["Class"]


def test_shows_the_input_the_depth_and_the_cloud(rviz: dict[str, Any]) -> None:
    displays = displays_by_topic(rviz)
    assert displays["image"]["Class"] == "rviz_default_plugins/Image"
    assert displays["depth/image"]["Class"] == "rviz_default_plugins/Image"
    assert displays["points"]["Class"] == "rviz_default_plugins/PointCloud2"
    assert displays["points"]["Color Transformer"] == "RGB8"
    # 32FC1 metres: a fixed range keeps colours comparable between frames.
    assert displays["depth/image"]["Normalize Range"] is False


def test_topics_are_the_nodes_relative_names(rviz: dict[str, Any]) -> None:
    shown = set(displays_by_topic(rviz)) - {"/clicked_point"}
    assert shown <= set(topics.RELATIVE), shown - set(topics.RELATIVE)


def test_input_display_matches_any_camera_driver(rviz: dict[str, Any]) -> None:
    qos = displays_by_topic(rviz)["image"]["Topic"]
    assert qos["Reliability Policy"] == "Best Effort"
    assert qos["Durability Policy"] == "Volatile"


@pytest.mark.parametrize("topic", ["depth/image", "points"])
def test_output_displays_match_the_nodes_publishers(rviz: dict[str, Any], topic: str) -> None:
    reliability, durability = node_output_qos()
    qos = displays_by_topic(rviz)[topic]["Topic"]
    if qos["Reliability Policy"] == "Reliable":
        assert reliability == "reliable", f"{topic}: Reliable display, {reliability} publisher"
    if qos["Durability Policy"] == "Transient Local":
        assert durability == "transient_local", f"{topic}: durability mismatch"
    # And the documented defaults are what rviz2 shows with.
    assert (qos["Reliability Policy"], qos["Durability Policy"]) == ("Reliable", "Volatile")


def test_launch_file_default_fixed_frame_matches(rviz: dict[str, Any]) -> None:
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"))
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == \
                "DeclareLaunchArgument":
            default = next((kw.value for kw in node.keywords if kw.arg == "default_value"),
                           None)
            if isinstance(default, ast.Constant):
                defaults[node.args[0].value] = default.value
    fixed_frame = rviz["Visualization Manager"]["Global Options"]["Fixed Frame"]
    assert defaults["rviz_fixed_frame"] == fixed_frame
