"""Parameters over the wire: descriptors reject bad values, the safe subset changes at run time.

Uses the node's real ``/depth_node/set_parameters`` and ``describe_parameters`` services from
the test process (what ``ros2 param set`` does).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

W, H = 32, 24
K = (30.0, 30.0, 15.5, 11.5)


def _value(v) -> ParameterValue:
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=v)


class ParamClient:
    def __init__(self, ros, wait_for) -> None:
        self.ros, self.wait = ros, wait_for
        node = ros.node
        self.set = node.create_client(SetParameters, "/depth_node/set_parameters")
        self.get = node.create_client(GetParameters, "/depth_node/get_parameters")
        self.describe = node.create_client(DescribeParameters, "/depth_node/describe_parameters")
        for client in (self.set, self.get, self.describe):
            assert client.wait_for_service(timeout_sec=40.0), "parameter services not found"

    def _call(self, client, request):
        future = client.call_async(request)
        assert self.wait(future.done, 20.0), "no reply from the node"
        return future.result()

    def set_params(self, **values):
        req = SetParameters.Request(
            parameters=[Parameter(name=k, value=_value(v)) for k, v in values.items()]
        )
        return self._call(self.set, req).results

    def get_param(self, name):
        return self._call(self.get, GetParameters.Request(names=[name])).values[0]

    def descriptor(self, name):
        return self._call(self.describe, DescribeParameters.Request(names=[name])).descriptors[0]


@pytest.fixture
def setup(ros, start_node, depth_models, wait_for):
    node = start_node(model=str(depth_models.constant(2.0)), cloud_color=False)
    client = ParamClient(ros, wait_for)
    return node, client


def test_descriptors_reject_out_of_range_read_only_and_inconsistent_values(setup):
    node, params = setup
    desc = params.descriptor("cloud_stride")
    assert desc.description and desc.integer_range[0].from_value == 1
    assert params.descriptor("model").read_only
    assert params.descriptor("max_depth").floating_point_range[0].to_value == 10000.0

    (r,) = params.set_params(cloud_stride=0)
    assert not r.successful
    (r,) = params.set_params(max_depth=-1.0)
    assert not r.successful
    (r,) = params.set_params(model="other.ts")
    assert not r.successful and "read-only" in r.reason.lower().replace("read only", "read-only")
    (r,) = params.set_params(max_depth=5.0)
    assert r.successful, r.reason
    (r,) = params.set_params(min_depth=6.0)  # in range alone, but not below max_depth
    assert not r.successful and "min_depth" in r.reason
    assert params.get_param("min_depth").double_value == 0.0
    (r,) = params.set_params(cloud_stride="two")
    assert not r.successful
    assert params.get_param("cloud_stride").integer_value == 1
    assert params.get_param("model").string_value.endswith("constant.ts")
    assert node.proc.poll() is None


def test_safe_parameters_change_the_output_at_run_time(
    ros, setup, camera_pub, wait_for, msgs, key
):
    node, params = setup
    depth = ros.collect(Image, "depth/image")
    points = ros.collect(PointCloud2, "points")
    rgb = np.full((H, W, 3), 80, np.uint8)

    def fresh_output(after_check):
        """Stream until a depth+cloud pair satisfying ``after_check`` arrives."""

        def _done():
            camera_pub.send(rgb, K, "cam")
            clouds = {key(c): c for c in points.messages()}
            return any(
                key(d) in clouds and after_check(d, clouds[key(d)]) for d in depth.messages()
            )

        assert wait_for(_done, 30.0, 0.1), node.output()

    fresh_output(lambda d, c: (c.width, c.height) == (W, H) and np.all(msgs.depth(d) == 2.0))

    (r,) = params.set_params(cloud_stride=4)
    assert r.successful, r.reason
    fresh_output(lambda d, c: (c.width, c.height) == (W // 4, H // 4))

    (r,) = params.set_params(max_depth=1.5)  # the model says 2.0 m: everything is out of range
    assert r.successful, r.reason
    fresh_output(
        lambda d, c: np.all(np.isnan(msgs.depth(d))) and np.all(np.isnan(msgs.cloud_xyz(c)))
    )

    results = params.set_params(max_depth=10.0, min_depth=1.0)
    assert all(r.successful for r in results)
    fresh_output(lambda d, c: np.all(msgs.depth(d) == 2.0))

    (r,) = params.set_params(publish_points=False)
    assert r.successful
    n_points_before = len(points)
    n_depth = len(depth)
    wait_for(lambda: (camera_pub.send(rgb, K, "cam"), len(depth) >= n_depth + 5)[1], 30.0, 0.1)
    assert len(depth) >= n_depth + 5
    assert len(points) <= n_points_before + 1  # at most one frame already in flight
    assert "parameters changed: publish_points=False" in node.output()
