"""Parameter specs, descriptors and validation (no DDS needed)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from rcl_interfaces.msg import ParameterType  # noqa: E402

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.ros.params import PARAMS, descriptor_for, settings_from_values  # noqa: E402

CONFIG_YAML = Path(__file__).resolve().parents[2] / "config" / "recon3d.yaml"
SPECS = {spec.name: spec for spec in PARAMS}


def test_defaults_validate():
    s = settings_from_values({})
    assert s.model == "default" and s.backend == "auto" and s.transport == "raw"
    assert s.output_size(640, 480) == (640, 480)
    assert s.config_overrides() == {}


def test_config_yaml_sets_every_parameter_to_its_default():
    data = yaml.safe_load(CONFIG_YAML.read_text())
    values = data["/**/depth_node"]["ros__parameters"]
    assert set(values) == set(SPECS)
    for name, value in values.items():
        default = SPECS[name].default
        assert type(value) is type(default), name  # ROS parameters are strictly typed
        assert value == default, name


def test_every_parameter_has_a_description_and_numbers_a_range():
    for spec in PARAMS:
        desc = descriptor_for(spec)
        assert desc.description
        assert desc.read_only == spec.read_only
        if desc.type == ParameterType.PARAMETER_DOUBLE:
            assert len(desc.floating_point_range) == 1, spec.name
            r = desc.floating_point_range[0]
            assert r.from_value <= spec.default <= r.to_value
        if desc.type == ParameterType.PARAMETER_INTEGER:
            assert len(desc.integer_range) == 1, spec.name


def test_runtime_changeable_subset():
    changeable = {s.name for s in PARAMS if not s.read_only}
    assert changeable == {
        "camera_info_tolerance",
        "camera_info_wait",
        "publish_depth",
        "publish_camera_info",
        "publish_points",
        "cloud_color",
        "cloud_stride",
        "min_depth",
        "max_depth",
        "edge_filter_threshold",
    }


@pytest.mark.parametrize(
    "values, match",
    [
        ({"cloud_stride": 0}, "outside"),
        ({"min_depth": 5.0, "max_depth": 2.0}, "min_depth"),
        ({"backend": "magic"}, "not one of"),
        ({"transport": "theora"}, "not one of"),
        ({"output_width": 32}, "both"),
        ({"min_depth": "near"}, "must be a float"),
        ({"max_depth": math.nan}, "outside"),
        ({"no_such_param": 1}, "unknown"),
        ({"model": " "}, "empty"),
        ({"cpu_threads": 65}, "outside"),
        ({"scale_mode": "lidar"}, "not one of"),
        ({"scale_factor": 0.0}, "outside"),
        ({"scale_mode": "ground"}, "scale_camera_height"),
        ({"scale_extrinsic": [1.0] * 12}, "16 numbers"),
        ({"scale_extrinsic": [0.0] * 12 + [1.0, 2.0, 3.0, 1.0]}, "column-major"),
        ({"scale_extrinsic": [0.0] * 15 + [math.inf]}, "non-finite"),
        ({"scale_extrinsic": ["1"] * 16}, "16 numbers"),
    ],
)
def test_invalid_values_are_rejected_with_the_name(values, match):
    with pytest.raises(ConfigError, match=match):
        settings_from_values(values)


def test_output_size_and_overrides():
    s = settings_from_values({"output_scale": 0.5, "input_width": 128})
    assert s.output_size(641, 480) == (320, 240)
    assert s.config_overrides() == {"input_width": 128}
    s = settings_from_values({"output_width": 100, "output_height": 50, "output_scale": 0.5})
    assert s.output_size(640, 480) == (100, 50)


def test_scale_extrinsic_is_a_double_array_and_empty_means_identity():
    assert descriptor_for(SPECS["scale_extrinsic"]).type == ParameterType.PARAMETER_DOUBLE_ARRAY
    identity = tuple(float(r == c) for r in range(4) for c in range(4))
    assert settings_from_values({}).scale_extrinsic == identity
    assert settings_from_values({"scale_extrinsic": []}).scale_extrinsic == identity
    shifted = [1, 0, 0, 0.5, 0, 1, 0, -0.25, 0, 0, 1, 2, 0, 0, 0, 1]  # ints are accepted
    s = settings_from_values({"scale_extrinsic": shifted, "scale_mode": "sparse"})
    assert s.scale_extrinsic[3] == 0.5 and s.scale_extrinsic[11] == 2.0
    assert all(type(v) is float for v in s.scale_extrinsic)
    ground = settings_from_values({"scale_mode": "ground", "scale_camera_height": 1.2})
    assert ground.scale_camera_height == 1.2
