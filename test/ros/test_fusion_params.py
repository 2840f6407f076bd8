"""The fusion node's parameter table, its settings and config/fusion.yaml (no DDS needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.ros import fusion_params  # noqa: E402
from recon3d_ros.ros.fusion_params import PARAMS, settings_from_values  # noqa: E402

FUSION_YAML = Path(__file__).resolve().parents[2] / "config" / "fusion.yaml"


def test_defaults_are_valid_and_every_parameter_is_a_settings_field():
    settings = settings_from_values({})
    assert set(settings.as_dict()) == {spec.name for spec in PARAMS}
    assert settings.map_frame == "map" and settings.extrinsic().shape == (4, 4)


@pytest.mark.parametrize("tf_present, expected", [(True, "tf"), (False, "odometry")])
def test_auto_pose_source_is_tf_only_where_tf2_imports(monkeypatch, tf_present, expected):
    monkeypatch.setattr(fusion_params, "tf2_available", lambda: tf_present)
    assert settings_from_values({"pose_source": "auto"}).pose_source == expected


def test_tf_without_tf2_is_refused_with_the_topic_alternatives(monkeypatch):
    monkeypatch.setattr(fusion_params, "tf2_available", lambda: False)
    with pytest.raises(ConfigError, match=r"needs tf2_ros.*'odometry'.*'pose'"):
        settings_from_values({"pose_source": "tf"})


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="unknown parameters"):
        settings_from_values({"voxel": 0.05})
    with pytest.raises(ConfigError, match="outside"):
        settings_from_values({"voxel_size": 0.0})
    with pytest.raises(ConfigError, match="not one of"):
        settings_from_values({"pose_source": "gps"})
    column_major = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, 0, 0.5, 0, 0, 1.0]
    with pytest.raises(ConfigError, match="0 0 0 1"):
        settings_from_values({"camera_extrinsic": column_major})


def test_memory_budget_sets_the_block_count_in_mb():
    pytest.importorskip("open3d")
    options = settings_from_values({"memory_budget_mb": 512.0}).map_options()
    # 16^3 voxels x 20 bytes (tsdf, weight, rgb as float32) = 80 KiB per block.
    assert options.max_blocks == (512 * 2**20) // (16**3 * 20) == 6553
    assert settings_from_values({"memory_budget_mb": 1.0}).map_options().max_blocks == 12


def test_fusion_yaml_sets_only_real_parameters_with_valid_values(monkeypatch):
    monkeypatch.setattr(fusion_params, "tf2_available", lambda: False)
    params = yaml.safe_load(FUSION_YAML.read_text(encoding="utf-8"))
    assert list(params) == [f"/**/{fusion_params.NODE_NAME}"]
    values = params[f"/**/{fusion_params.NODE_NAME}"]["ros__parameters"]
    assert set(values) == {spec.name for spec in PARAMS}  # documents every parameter
    defaults = {spec.name: spec.default for spec in PARAMS}
    for name, value in values.items():
        assert value == defaults[name], f"{name}: yaml {value!r} != default {defaults[name]!r}"
    settings_from_values(values)
