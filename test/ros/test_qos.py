"""QoS profiles from parameter strings."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy  # noqa: E402

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.ros.qos import input_qos, make_qos, output_qos  # noqa: E402


def test_input_default_is_rep2003_sensor_data():
    q = input_qos()
    assert q.reliability == ReliabilityPolicy.BEST_EFFORT
    assert q.durability == DurabilityPolicy.VOLATILE
    assert q.history == HistoryPolicy.KEEP_LAST and q.depth == 5


def test_output_default_is_reliable_volatile():
    q = output_qos()
    assert q.reliability == ReliabilityPolicy.RELIABLE
    assert q.durability == DurabilityPolicy.VOLATILE


def test_make_qos_maps_names():
    q = make_qos("best_effort", "transient_local", 2)
    assert q.reliability == ReliabilityPolicy.BEST_EFFORT
    assert q.durability == DurabilityPolicy.TRANSIENT_LOCAL and q.depth == 2


@pytest.mark.parametrize(
    "args", [("sometimes", "volatile", 1), ("reliable", "forever", 1), ("reliable", "volatile", 0)]
)
def test_make_qos_rejects_bad_values(args):
    with pytest.raises(ConfigError):
        make_qos(*args)
