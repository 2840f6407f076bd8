"""The demo harness: DDS confinement of child processes and the node command line."""

from __future__ import annotations

from recon3d_ros.demo.harness import (
    DEFAULT_PARAMS_FILE, NodeProcess, PACKAGE_ROOT, percentiles, ros_environment)


def test_ros_environment_confines_dds_to_this_machine() -> None:
    env = ros_environment(
        42, base={"ROS_LOCALHOST_ONLY": "1", "ROS_STATIC_PEERS": "10.0.0.1", "PATH": "/bin"}
    )
    assert env["ROS_DOMAIN_ID"] == "42"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert "ROS_STATIC_PEERS" not in env and "ROS_LOCALHOST_ONLY" not in env
    assert env["PATH"] == "/bin"
    assert 1 <= int(ros_environment(None, base={})["ROS_DOMAIN_ID"]) <= 200


def test_ros_environment_names_the_shipped_dds_profile_unless_one_is_chosen() -> None:
    shipped = str(PACKAGE_ROOT / "config" / "fastdds_large_data.xml")
    assert ros_environment(3, base={})["FASTDDS_DEFAULT_PROFILES_FILE"] == shipped
    own = {"FASTDDS_DEFAULT_PROFILES_FILE": "/home/me/dds.xml"}
    assert ros_environment(3, base=own)["FASTDDS_DEFAULT_PROFILES_FILE"] == "/home/me/dds.xml"
    cyclone = ros_environment(3, base={"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in cyclone


def test_node_command_line() -> None:
    node = NodeProcess(
        "/m/tiny.pt",
        params={"device": "cpu", "cloud_stride": 2, "publish_points": False},
        env=ros_environment(7, base={}),
    )
    cmd = node.command()
    assert cmd[1:4] == ["-m", "recon3d_ros.depth_node", "--ros-args"]
    assert ["--params-file", str(DEFAULT_PARAMS_FILE)] == cmd[4:6]
    for expected in (
        "model:=/m/tiny.pt",
        "device:=cpu",
        "cloud_stride:=2",
        "publish_points:=false",
    ):
        assert expected in cmd
    assert node.env["ROS_DOMAIN_ID"] == "7"


def test_percentiles() -> None:
    stats = percentiles([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["p50"] == 3.0 and stats["max"] == 100.0 and 4.0 < stats["p90"] < 100.0
    empty = percentiles([])
    assert all(v != v for v in empty.values())  # NaN
