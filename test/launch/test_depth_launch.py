"""launch_testing test of launch/depth.launch.py: the node comes up, with its params file.

Runs where launch, launch_ros and launch_testing are installed (a ROS 2 install, under
``colcon test`` or ``launch_test``) and the package is installed (the launch file looks up its
share directory). It includes the real launch file in a namespace of its own with a copy of
config/recon3d.yaml whose ``cloud_stride`` and ``backend`` differ from the node's defaults,
publishes a synthetic image and its CameraInfo to the remapped input topics, and checks that
the node reports the file's values, and that metric depth, its CameraInfo and a point cloud
thinned by the file's stride arrive for that image. The PyPI setup of ``make setup`` has no
launch packages, so there the module is skipped.
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile
import time
import unittest

import pytest

REASON = "launch_testing / launch_ros are not installable from PyPI; run under a ROS 2 install"
launch_testing = pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)
pytest.importorskip("launch.actions", reason=REASON)

import launch  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
import rclpy  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
LAUNCH_FILE = os.path.join(REPO, "launch", "depth.launch.py")
SHIPPED_PARAMS = os.path.join(REPO, "config", "recon3d.yaml")
NAMESPACE = "recon3d_launch_test"
NODE = f"/{NAMESPACE}/depth_node"
IMAGE_TOPIC = f"/{NAMESPACE}/camera/image_raw"
CAMERA_INFO_TOPIC = f"/{NAMESPACE}/camera/camera_info"
DEPTH_TOPIC = f"/{NAMESPACE}/depth/image"
DEPTH_INFO_TOPIC = f"/{NAMESPACE}/depth/camera_info"
POINTS_TOPIC = f"/{NAMESPACE}/points"
WIDTH, HEIGHT = 160, 120
# Values of the params file that differ from the node's defaults (1 and 'auto'); the launch
# leaves backend at its empty default, so the file's must reach the node.
FILE_VALUES = {"cloud_stride": 4, "backend": "torch"}
FRAME_ID = "launch_test_optical_frame"
# First inference includes loading the model on a CPU.
DEPTH_TIMEOUT_S = 120.0


def params_file() -> str:
    """Write the shipped params file's own text (its top-level key too) with FILE_VALUES."""
    with open(SHIPPED_PARAMS, encoding="utf-8") as shipped:
        text = shipped.read()
    for name, value in FILE_VALUES.items():
        text, count = re.subn(rf"^(\s+{name}:\s*)\S+", rf"\g<1>{value!r}", text, flags=re.M)
        assert count == 1, f"{name} appears {count} times in {SHIPPED_PARAMS}"
    handle, path = tempfile.mkstemp(prefix="recon3d_launch_test_", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as copy:
        copy.write(text)
    atexit.register(os.remove, path)
    return path


@pytest.mark.launch_test
def generate_test_description() -> tuple[launch.LaunchDescription, dict]:
    depth_launch = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.abspath(LAUNCH_FILE)),
        launch_arguments={
            "namespace": NAMESPACE,
            "params_file": params_file(),
            "image_topic": IMAGE_TOPIC,
            "camera_info_topic": CAMERA_INFO_TOPIC,
            "device": "cpu",
            "use_rviz": "false",
        }.items(),
    )
    return launch.LaunchDescription([depth_launch, launch_testing.actions.ReadyToTest()]), {}


def synthetic_image(stamp) -> Image:
    """Return a horizontal colour ramp image: enough texture for the network to run on."""
    ramp = np.linspace(0, 255, WIDTH, dtype=np.uint8)
    rgb = np.stack([np.tile(ramp, (HEIGHT, 1))] * 3, axis=-1)
    rgb[..., 1] = np.linspace(0, 255, HEIGHT, dtype=np.uint8)[:, None]
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = FRAME_ID
    msg.height, msg.width = HEIGHT, WIDTH
    msg.encoding = "rgb8"
    msg.step = WIDTH * 3
    msg.data = rgb.tobytes()
    return msg


def camera_info(stamp) -> CameraInfo:
    focal = 0.8 * WIDTH
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = FRAME_ID
    msg.height, msg.width = HEIGHT, WIDTH
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [focal, 0.0, WIDTH / 2, 0.0, focal, HEIGHT / 2, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [focal, 0.0, WIDTH / 2, 0.0, 0.0, focal, HEIGHT / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class TestDepthFromLaunch(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.node = rclpy.create_node("depth_launch_probe")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_the_params_file_reaches_the_namespaced_node(self) -> None:
        client = self.node.create_client(GetParameters, f"{NODE}/get_parameters")
        self.assertTrue(client.wait_for_service(timeout_sec=DEPTH_TIMEOUT_S),
                        f"no {NODE}/get_parameters")
        future = client.call_async(GetParameters.Request(names=list(FILE_VALUES)))
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=20.0)
        self.assertTrue(future.done(), f"no reply from {NODE}")
        reported = {name: parameter_value_to_python(value)
                    for name, value in zip(FILE_VALUES, future.result().values)}
        self.assertEqual(reported, FILE_VALUES)

    def test_depth_published_for_a_published_image(self) -> None:
        received: list[Image] = []
        infos: list[CameraInfo] = []
        clouds: list[PointCloud2] = []
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, DEPTH_TOPIC, received.append, reliable)
        self.node.create_subscription(CameraInfo, DEPTH_INFO_TOPIC, infos.append, reliable)
        self.node.create_subscription(PointCloud2, POINTS_TOPIC, clouds.append, reliable)
        image_pub = self.node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        info_pub = self.node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC,
                                              qos_profile_sensor_data)
        sent_stamps = set()
        deadline = time.monotonic() + DEPTH_TIMEOUT_S
        next_publish = 0.0
        while not (received and infos and clouds) and time.monotonic() < deadline:
            if time.monotonic() >= next_publish:
                stamp = self.node.get_clock().now().to_msg()
                info_pub.publish(camera_info(stamp))
                image_pub.publish(synthetic_image(stamp))
                sent_stamps.add((stamp.sec, stamp.nanosec))
                next_publish = time.monotonic() + 0.5
            rclpy.spin_once(self.node, timeout_sec=0.1)

        self.assertTrue(received, f"no depth on {DEPTH_TOPIC} within {DEPTH_TIMEOUT_S} s")
        depth = received[0]
        self.assertEqual(depth.encoding, "32FC1")
        self.assertEqual((depth.width, depth.height), (WIDTH, HEIGHT))
        self.assertEqual(depth.header.frame_id, FRAME_ID)
        self.assertIn((depth.header.stamp.sec, depth.header.stamp.nanosec), sent_stamps)
        values = np.frombuffer(bytes(depth.data), dtype=np.float32)
        finite = values[np.isfinite(values)]
        self.assertGreater(finite.size, 0.5 * values.size)
        self.assertTrue(np.all(finite > 0.0))

        self.assertTrue(infos, f"no CameraInfo on {DEPTH_INFO_TOPIC}")
        stamp = (depth.header.stamp.sec, depth.header.stamp.nanosec)
        info = next((m for m in infos
                     if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp), infos[0])
        self.assertEqual((info.width, info.height), (WIDTH, HEIGHT))
        self.assertEqual(info.header.frame_id, FRAME_ID)
        self.assertEqual(list(info.k), list(camera_info(depth.header.stamp).k))

        self.assertTrue(clouds, f"no PointCloud2 on {POINTS_TOPIC}")
        cloud = clouds[0]
        self.assertEqual(cloud.header.frame_id, FRAME_ID)
        self.assertIn((cloud.header.stamp.sec, cloud.header.stamp.nanosec), sent_stamps)
        # Organized, every cloud_stride-th row and column of the image (the file's stride).
        stride = FILE_VALUES["cloud_stride"]
        self.assertEqual((cloud.height, cloud.width),
                         (len(range(0, HEIGHT, stride)), len(range(0, WIDTH, stride))))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_processes_exit_cleanly(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
