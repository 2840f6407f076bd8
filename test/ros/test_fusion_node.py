"""fusion_node on real rclpy and DDS: Redwood depth + poses in, mesh / cloud / services out.

The node runs as its own process (``python -m recon3d_ros.fusion_node``, the
``start_fusion_node`` fixture); the test publishes ``../shared/data/rgbd/redwood``'s depth,
intrinsics and colour with its ``trajectory.log`` poses as geometry_msgs/PoseStamped, like an
RGB-D driver and an odometry source would. Expected geometry comes from the data set itself:
its ground-truth depth back-projected with its ground-truth poses (independent of the node).
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("open3d")

from recon3d_ros.core.rgbd_io import read_rgbd_frames  # noqa: E402

REDWOOD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rgbd" / "redwood"
FRAME_ID = "camera_optical_frame"
MAP_FRAME = "map"
VOXEL = 0.05


def _skip_without_data() -> None:
    if not (REDWOOD / "trajectory.log").is_file():
        pytest.skip(f"{REDWOOD} is absent (the shared RGB-D frames); nothing to fuse")


@pytest.fixture(scope="module")
def redwood() -> tuple[list[Any], list[np.ndarray]]:
    _skip_without_data()
    from recon3d_ros.reconstruction.poses import read_trajectory_log

    return read_rgbd_frames(REDWOOD), read_trajectory_log(REDWOOD / "trajectory.log")


def reliable(depth: int = 5) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def latched() -> Any:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def pose_msg(T: np.ndarray, stamp: Any, frame: str = MAP_FRAME) -> Any:
    """Build a PoseStamped of a 4x4 camera-to-world (quaternion with w >= 0)."""
    from geometry_msgs.msg import PoseStamped

    R = T[:3, :3]
    w = np.sqrt(max(0.0, 1.0 + np.trace(R))) / 2.0
    x = np.copysign(np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in T[:3, 3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = float(x), float(y), float(z), float(w)
    return msg


def stamp_at(t0_ns: int, seconds: float) -> Any:
    from builtin_interfaces.msg import Time

    ns = t0_ns + int(seconds * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def diag_values(collector: Any) -> dict[str, str]:
    """Key/values of the newest fusion_node status on /diagnostics ({} before any)."""
    for msg in reversed(collector.messages()):
        for status in msg.status:
            if "fusion_node" in status.name:
                return {kv.key: kv.value for kv in status.values}
    return {}


def gt_points(frames: list[Any], poses: list[np.ndarray]) -> np.ndarray:
    """Every valid ground-truth depth pixel back-projected into the world with its GT pose."""
    out = []
    for frame, T in zip(frames, poses):
        c, z = frame.camera, frame.depth_m
        v, u = np.nonzero(np.isfinite(z) & (z > 0))
        d = z[v, u].astype(np.float64)
        cam = np.stack([(u - c.cx) / c.fx * d, (v - c.cy) / c.fy * d, d, np.ones_like(d)])
        out.append((T @ cam)[:3].T)
    return np.concatenate(out)


def nearest_distances(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    import open3d as o3d

    ref = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(reference))
    query = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return np.asarray(query.compute_point_cloud_distance(ref))


def call(ros: Any, wait_for: Any, srv_type: Any, name: str, timeout: float = 30.0) -> Any:
    client = ros.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20.0), f"service {name} not offered"
    future = client.call_async(srv_type.Request())
    assert wait_for(future.done, timeout), f"{name} did not answer in {timeout} s"
    return future.result()


class Sender:
    """Publishes one RGB-D frame (colour, camera_info, pose, depth) like a driver + odometry."""

    def __init__(self, ros: Any, msgs: Any) -> None:
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image

        self.msgs = msgs
        self.color = ros.publisher(Image, "image", reliable())
        self.info = ros.publisher(CameraInfo, "depth/camera_info", reliable())
        self.depth = ros.publisher(Image, "depth/image", reliable())
        self.pose = ros.publisher(PoseStamped, "pose", reliable(50))

    def wait_connected(self, node: Any, wait_for: Any, pose: bool) -> None:
        """Wait until the node has subscribed and sees our depth (and pose) publishers."""
        assert node.wait_for_output("subscribed to", 60), node.output()
        assert wait_for(lambda: self.depth.get_subscription_count() > 0
                        and (not pose or self.pose.get_subscription_count() > 0), 20), \
            node.output()

    def send(self, frame: Any, T: np.ndarray | None, stamp: Any) -> None:
        c = frame.camera
        if T is not None:
            self.pose.publish(pose_msg(T, stamp))
        self.color.publish(self.msgs.image(frame.rgb, stamp, FRAME_ID))
        self.info.publish(
            self.msgs.camera_info(c.width, c.height, c.fx, c.fy, c.cx, c.cy, stamp, FRAME_ID))
        self.depth.publish(
            self.msgs.image(frame.depth_m.astype(np.float32), stamp, FRAME_ID, "32FC1"))


def test_fuses_redwood_into_a_mesh_and_serves_save_and_reset(
    redwood: tuple[list[Any], list[np.ndarray]], ros: Any, msgs: Any, wait_for: Any,
    start_fusion_node: Any, tmp_path: Path,
) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import PointCloud2
    from std_srvs.srv import Trigger
    from visualization_msgs.msg import Marker

    from recon3d_ros.reconstruction.mesh_io import read_mesh_ply
    from recon3d_ros.reconstruction.tsdf import TsdfMap
    from recon3d_ros.ros.conversions import cloud_msg_to_xyzrgb

    frames, poses = redwood
    save_dir = tmp_path / "saved"
    node = start_fusion_node(
        pose_source="pose", map_frame=MAP_FRAME, voxel_size=VOXEL, mesh_rate=20.0,
        points_rate=20.0, input_qos_reliability="reliable", pose_wait=0.3,
        diagnostics_period=0.2, save_directory=str(save_dir), memory_budget_mb=64.0,
    )
    meshes = ros.collect(Marker, "mesh", latched())
    clouds = ros.collect(PointCloud2, "map/points", latched())
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    sender = Sender(ros, msgs)
    sender.wait_connected(node, wait_for, pose=True)

    t0 = time.time_ns()
    for i, (frame, T) in enumerate(zip(frames, poses)):
        sender.send(frame, T, stamp_at(t0, 0.1 * i))
        # One frame at a time: the node keeps only the newest frame, by design.
        assert wait_for(lambda: int(diag_values(diags).get("frames_fused", 0)) > i, 30), \
            (diag_values(diags), node.output())

    # A depth frame far from any pose is counted as rejected, not fused.
    sender.send(frames[0], None, stamp_at(t0, 10.0))
    assert wait_for(lambda: int(diag_values(diags).get("rejected_no_pose", 0)) >= 1, 20), \
        (diag_values(diags), node.output())
    values = diag_values(diags)
    assert values["frames_fused"] == str(len(frames))
    assert int(values["map_blocks"]) > 0 and float(values["map_memory_mb"]) > 0

    # The mesh: a TRIANGLE_LIST in map_frame whose vertices lie on the ground-truth surface.
    def newest_mesh() -> Any:
        items = meshes.messages()
        return items[-1] if items else None

    assert wait_for(lambda: newest_mesh() is not None and len(newest_mesh().points) > 0, 20)
    time.sleep(0.5)  # the mesh of the last frame
    mesh = newest_mesh()
    assert mesh.type == Marker.TRIANGLE_LIST and mesh.header.frame_id == MAP_FRAME
    assert len(mesh.points) % 3 == 0 and len(mesh.colors) == len(mesh.points)
    vertices = np.array([[p.x, p.y, p.z] for p in mesh.points])
    reference = gt_points(frames, poses)
    # Half a voxel: a mesh fused with wrong poses (inverted, or another frame convention) lies
    # decimetres away.
    assert np.median(nearest_distances(vertices, reference)) < VOXEL / 2
    colours = np.array([[c.r, c.g, c.b] for c in mesh.colors])
    assert colours.std() > 0.02  # coloured from 'image', not the uniform grey

    cloud = clouds.messages()[-1]
    assert cloud.header.frame_id == MAP_FRAME
    xyz, rgb = cloud_msg_to_xyzrgb(cloud)
    assert len(xyz) > 100 and rgb is not None
    assert np.median(nearest_distances(xyz, reference)) < VOXEL / 2

    saved = call(ros, wait_for, Trigger, "/fusion_node/save_map")
    assert saved.success, saved.message
    loaded = TsdfMap.load(save_dir / "map")
    assert loaded.block_count == int(diag_values(diags)["map_blocks"])
    assert (save_dir / "map" / "odometry_anchor.npz").is_file()  # for a resumed reconstruct
    assert not loaded.extract_mesh().is_empty
    assert len(read_mesh_ply(save_dir / "mesh.ply").triangles) > 0
    assert (save_dir / "points.ply").stat().st_size > 0

    meshes.clear()
    cleared = call(ros, wait_for, Trigger, "/fusion_node/reset")
    assert cleared.success, cleared.message
    assert wait_for(lambda: diag_values(diags).get("map_blocks") == "0", 10), diag_values(diags)
    # An empty mesh replaces the old one in rviz2.
    assert wait_for(lambda: newest_mesh() is not None and len(newest_mesh().points) == 0, 10)
    assert diag_values(diags)["resets"] == "1"
    assert node.stop() == 0, node.output()


def test_frames_without_poses_are_rejected_and_reported(
    redwood: tuple[list[Any], list[np.ndarray]], ros: Any, msgs: Any, wait_for: Any,
    start_fusion_node: Any,
) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    frames, _ = redwood
    node = start_fusion_node(pose_source="pose", voxel_size=VOXEL, pose_wait=0.1,
                             input_qos_reliability="reliable", diagnostics_period=0.2)
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    sender = Sender(ros, msgs)
    sender.wait_connected(node, wait_for, pose=False)
    t0 = time.time_ns()
    for i in range(3):
        sender.send(frames[i], None, stamp_at(t0, 0.1 * i))
        assert wait_for(
            lambda: int(diag_values(diags).get("rejected_no_pose", 0)) > i, 20), node.output()
    values = diag_values(diags)
    assert values["frames_fused"] == "0" and values["map_blocks"] == "0"
    status = next(s for s in diags.messages()[-1].status if "fusion_node" in s.name)
    assert status.level == DiagnosticStatus.ERROR
    assert "no pose" in status.message
    assert "no pose" in node.output()  # logged with what to do
    assert values["frames_rejected"] == "3"
    assert node.stop() == 0


@pytest.mark.parametrize("params, expected", [
    ({"voxel_size": 5}, "parameter 'voxel_size' rejected"),  # an integer for a double
    ({"pose_source": "gps"}, "'gps' is not one of"),
])
def test_bad_parameters_exit_1_with_one_line(start_fusion_node: Any, params: dict[str, Any],
                                             expected: str) -> None:
    node = start_fusion_node(**params)
    assert node.wait(60) == 1, node.output()
    lines = [line for line in node.output().splitlines() if "cannot start" in line]
    assert len(lines) == 1 and lines[0].startswith("[fusion_node] cannot start: "), node.output()
    assert expected in lines[0], lines[0]


def test_stops_with_status_0_on_sigterm(start_fusion_node: Any) -> None:
    import signal

    node = start_fusion_node(pose_source="odometry")
    assert node.wait_for_output("subscribed to", 60), node.output()
    node.proc.send_signal(signal.SIGTERM)
    assert node.wait(20) == 0, node.output()


def test_scale_mode_map_undoes_a_monocular_scale_drift(
    redwood: tuple[list[Any], list[np.ndarray]], ros: Any, msgs: Any, wait_for: Any,
    start_fusion_node: Any,
) -> None:
    import dataclasses

    from diagnostic_msgs.msg import DiagnosticArray
    from visualization_msgs.msg import Marker

    frames, poses = redwood
    node = start_fusion_node(pose_source="pose", voxel_size=VOXEL, scale_mode="map",
                             mesh_rate=20.0, input_qos_reliability="reliable",
                             diagnostics_period=0.2)
    meshes = ros.collect(Marker, "mesh", latched())
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    sender = Sender(ros, msgs)
    sender.wait_connected(node, wait_for, pose=False)
    t0 = time.time_ns()
    for i, (frame, T) in enumerate(zip(frames, poses)):
        # The first frame sets the map's scale; the others come 0.8x too near, as a
        # monocular network's depth may (a 0.8x scale left ~1 m ghosts unaligned).
        drifted = frame if i == 0 else dataclasses.replace(frame, depth_m=frame.depth_m * 0.8)
        sender.send(drifted, T, stamp_at(t0, 0.1 * i))
        assert wait_for(lambda: int(diag_values(diags).get("frames_fused", 0)) > i, 30), \
            (diag_values(diags), node.output())
    # 1/0.8 = 1.25; the map rendered from 5 cm voxels reads a few per cent nearer.
    assert float(diag_values(diags)["depth_scale"]) == pytest.approx(1.25, abs=0.06)
    time.sleep(0.5)
    vertices = np.array([[p.x, p.y, p.z] for p in meshes.messages()[-1].points])
    assert np.median(nearest_distances(vertices, gt_points(frames, poses))) < VOXEL / 2
    assert node.stop() == 0


def test_mesh_is_published_at_its_rate_while_integration_is_busy(
    redwood: tuple[list[Any], list[np.ndarray]], ros: Any, msgs: Any, wait_for: Any,
    start_fusion_node: Any,
) -> None:
    """The mesh has its own thread: a frame stuck waiting for its pose does not hold it back.

    Frame 2 arrives without a pose and keeps the integration worker waiting pose_wait (8 s);
    the mesh with frames 0 and 1 must come at mesh_rate meanwhile, not after the wait. Two more
    frames during the wait: the first is replaced by the second and counted as dropped.
    """
    from diagnostic_msgs.msg import DiagnosticArray
    from visualization_msgs.msg import Marker

    frames, poses = redwood
    node = start_fusion_node(
        pose_source="pose", map_frame=MAP_FRAME, voxel_size=VOXEL, mesh_rate=1.0,
        points_rate=0.0, input_qos_reliability="reliable", pose_wait=8.0,
        diagnostics_period=0.2,
    )
    meshes = ros.collect(Marker, "mesh", latched())
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    sender = Sender(ros, msgs)
    sender.wait_connected(node, wait_for, pose=True)
    t0 = time.time_ns()
    sender.send(frames[0], poses[0], stamp_at(t0, 0.0))
    assert wait_for(lambda: len(meshes.messages()) >= 1, 30), (diag_values(diags), node.output())

    def vertices() -> np.ndarray:
        return np.array([[q.x, q.y, q.z] for q in meshes.messages()[-1].points])

    first = vertices()
    assert len(first) > 0
    # Counted before frame 1: its mesh may go out (mesh_rate 1 Hz) before frame 2 is sent.
    n_meshes = len(meshes.messages())
    sender.send(frames[1], poses[1], stamp_at(t0, 0.1))
    assert wait_for(lambda: int(diag_values(diags).get("frames_fused", 0)) == 2, 30), \
        node.output()
    sender.send(frames[2], None, stamp_at(t0, 0.2))  # the worker now waits 8 s for its pose
    assert wait_for(lambda: len(meshes.messages()) > n_meshes, 6), \
        ("no mesh while the worker waited", diag_values(diags), node.output())
    assert diag_values(diags).get("frames_rejected") == "0"  # ... and it is still waiting
    second = vertices()  # frames 0 and 1
    assert second.shape != first.shape or not np.array_equal(second, first)
    sender.send(frames[3], None, stamp_at(t0, 0.3))
    sender.send(frames[4], None, stamp_at(t0, 0.4))
    assert wait_for(lambda: diag_values(diags).get("frames_received") == "5", 10)
    time.sleep(1.0)
    values = diag_values(diags)
    assert values["frames_rejected"] == "0", values  # still waiting for frame 2's pose
    assert values["frames_dropped"] == "1", values  # frame 3, replaced by frame 4
    assert node.stop() == 0, node.output()
