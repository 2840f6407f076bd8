"""The running depth node's topics are exactly those of recon3d_ros.ros.topics.

A real node process in its own DDS domain; its publishers and subscriptions are read from the
ROS graph (``get_publisher_names_and_types_by_node``, what ``ros2 node info`` shows), so they
are the names rcl resolved, after the namespace and any remapping. The README's topic table
documents the same names. The static side (node.py names every topic through the module, the
launch file remaps all of them) is test/launch/test_depth_launch_structure.py.
"""

from __future__ import annotations

from pathlib import Path
import re
import time
from typing import Any, Callable

import pytest

pytest.importorskip("rclpy")  # the node tests need torch too: the depth_models fixture skips

from rclpy.node import NodeNameNonExistentError  # noqa: E402

from recon3d_ros.ros import topics  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
NODE = "depth_node"
# Every rclpy node has these (logging, parameter events): not the depth node's own topics.
INFRASTRUCTURE = {"/rosout", "/parameter_events"}
START_TIMEOUT_S = 60.0  # model load on a shared CPU
GRAPH_TIMEOUT_S = 20.0


def readme_topics() -> set[str]:
    """First-column names of the README's "## Topics" table."""
    section = README.read_text(encoding="utf-8").split("\n## Topics\n", 1)[1].split("\n## ")[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def test_the_readme_documents_exactly_these_topics() -> None:
    assert readme_topics() == set(topics.INPUTS + topics.OUTPUTS)
    assert set(topics.RELATIVE) == set(topics.INPUTS + topics.OUTPUTS) - {"/diagnostics"}


def resolved(namespace: str, names: set[str]) -> set[str]:
    """Absolute names of ``names`` for a node in ``namespace`` (absolute ones stay)."""
    prefix = namespace.rstrip("/")
    return {name if name.startswith("/") else f"{prefix}/{name}" for name in names}


def graph_topics(ros: Any, namespace: str) -> tuple[set[str], set[str]] | None:
    """Return the node's (published, subscribed) names in the graph; None if not seen."""
    try:
        published = ros.node.get_publisher_names_and_types_by_node(NODE, namespace)
        subscribed = ros.node.get_subscriber_names_and_types_by_node(NODE, namespace)
    except NodeNameNonExistentError:
        return None
    return ({name for name, _ in published} - INFRASTRUCTURE,
            {name for name, _ in subscribed} - INFRASTRUCTURE)


def node_topics(ros: Any, node: Any, namespace: str, expected: tuple[set[str], set[str]],
                wait_for: Callable[..., bool]) -> tuple[set[str], set[str]] | None:
    """Return the node's topics once they are ``expected`` (else the last seen, at timeout).

    The node logs "subscribed to" after creating every publisher and subscription; discovery
    of them can lag behind, so the graph is polled. Read once more a second later, so a topic
    appearing after the expected ones is seen too.
    """
    assert node.wait_for_output("subscribed to", START_TIMEOUT_S), node.output()
    wait_for(lambda: graph_topics(ros, namespace) == expected, GRAPH_TIMEOUT_S)
    time.sleep(1.0)
    return graph_topics(ros, namespace)


def test_default_mode_uses_the_image_camera_info_and_output_topics(
        ros, start_node, depth_models, wait_for) -> None:
    node = start_node(model=str(depth_models.constant()))
    expected = (
        resolved("/", {topics.DEPTH_IMAGE, topics.DEPTH_CAMERA_INFO, topics.POINTS,
                       topics.DIAGNOSTICS}),
        resolved("/", {topics.IMAGE, topics.CAMERA_INFO}),
    )
    assert expected[1] == {"/image", "/camera_info"}  # the names the README documents
    assert node_topics(ros, node, "/", expected, wait_for) == expected, node.output()


def test_sparse_compressed_mode_in_a_namespace(ros, start_node, depth_models,
                                               wait_for) -> None:
    node = start_node(model=str(depth_models.constant()), scale_mode="sparse",
                      transport="compressed", remaps={"__ns": "/front"})
    expected = (
        resolved("/front", {topics.DEPTH_IMAGE, topics.DEPTH_CAMERA_INFO, topics.POINTS,
                            topics.DIAGNOSTICS}),
        resolved("/front", {topics.IMAGE_COMPRESSED, topics.CAMERA_INFO, topics.SCALE_POINTS,
                            topics.SCALE_DEPTH}),
    )
    # /diagnostics is absolute: the namespace does not move it.
    assert "/diagnostics" in expected[0] and "/front/scale/depth" in expected[1]
    assert node_topics(ros, node, "/front", expected, wait_for) == expected, node.output()


def test_the_launch_files_remappings_move_every_topic(ros, start_node, depth_models,
                                                      wait_for) -> None:
    # What launch/depth.launch.py passes for given topic arguments (remappings() with
    # LaunchConfiguration), as -r rules: no topic of the node may escape them.
    given = topics.remappings(lambda argument: f"/given/{argument}")
    remaps = {source: "".join(target) if isinstance(target, list) else target
              for source, target in given}
    node = start_node(model=str(depth_models.constant()), scale_mode="sparse",
                      transport="compressed", remaps=remaps)
    expected = (
        {"/given/depth_topic", "/given/depth_camera_info_topic", "/given/points_topic",
         "/diagnostics"},
        {"/given/image_topic/compressed", "/given/camera_info_topic",
         "/given/scale_points_topic", "/given/scale_depth_topic"},
    )
    assert node_topics(ros, node, "/", expected, wait_for) == expected, node.output()
