"""The launch file's decisions without launch: which parameters reach the node, can rviz2 start.

:func:`find_package_executable` is run against fake ament prefixes made here (the layout
ament_index_python and launch_ros' ``ExecutableInPackage`` read: a marker file under
``share/ament_index/resource_index/packages`` and the executable in ``lib/<package>``).
"""

from __future__ import annotations

import os
from pathlib import Path
import re

import pytest

pytest.importorskip("ament_index_python")

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.ros.launch_support import (  # noqa: E402
    find_package_executable, large_message_environment, NODE_ARGUMENTS, node_parameters,
    OVERRIDE_ARGUMENTS)
from recon3d_ros.ros.malloc_tuning import TUNABLES  # noqa: E402

NOT_GIVEN = {"model": "", "device": "", "backend": ""}


@pytest.fixture
def params_file(tmp_path: Path) -> str:
    path = tmp_path / "params.yaml"
    path.write_text("/**/depth_node:\n  ros__parameters:\n    backend: torch\n")
    return str(path)


def test_arguments_left_empty_leave_the_params_file_in_force(params_file: str) -> None:
    assert node_parameters({"params_file": params_file, **NOT_GIVEN}) == [params_file]


def test_given_arguments_come_after_the_file_and_only_those(params_file: str) -> None:
    given = {"params_file": params_file, **NOT_GIVEN, "backend": "onnxruntime"}
    assert node_parameters(given) == [params_file, {"backend": "onnxruntime"}]
    every = {"params_file": params_file, "model": "m.onnx", "device": "cpu",
             "backend": "onnxruntime"}
    assert node_parameters(every) == [params_file, {"model": "m.onnx", "device": "cpu",
                                                    "backend": "onnxruntime"}]


def test_values_stay_strings_and_blank_ones_count_as_not_given(params_file: str) -> None:
    # launch_ros would YAML-parse a substitution ('1' -> int); a str it keeps a string.
    given = {"params_file": params_file, "model": "1", "device": "  ", "backend": ""}
    assert node_parameters(given) == [params_file, {"model": "1"}]


def test_an_empty_params_file_passes_no_file() -> None:
    assert node_parameters({"params_file": "", **NOT_GIVEN}) == []
    assert node_parameters({"params_file": "", **NOT_GIVEN, "device": "cpu"}) == \
        [{"device": "cpu"}]


def test_a_missing_params_file_is_an_error_not_a_warning(tmp_path: Path) -> None:
    missing = tmp_path / "no_such.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"params_file:={missing} is not a file")):
        node_parameters({"params_file": str(missing), **NOT_GIVEN})


def test_the_argument_names_are_the_ones_it_reads() -> None:
    assert set(NODE_ARGUMENTS) == {"params_file"} | set(OVERRIDE_ARGUMENTS)
    assert set(OVERRIDE_ARGUMENTS) == set(NOT_GIVEN)


def fake_prefix(root: Path, package: str, executable: str | None) -> Path:
    """Make an install prefix that registers ``package``, with ``executable`` if given."""
    marker = root / "share" / "ament_index" / "resource_index" / "packages" / package
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    if executable is not None:
        path = root / "lib" / package / executable
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def test_finds_an_installed_executable(tmp_path: Path, monkeypatch) -> None:
    other = fake_prefix(tmp_path / "other", "recon3d_ros", None)
    rviz = fake_prefix(tmp_path / "rviz", "rviz2", "rviz2")
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(other), str(rviz)]))
    assert find_package_executable("rviz2", "rviz2", "use_rviz:=true") == \
        str(rviz / "lib" / "rviz2" / "rviz2")


def test_a_package_missing_from_the_ament_index_is_a_clear_error(tmp_path: Path,
                                                                 monkeypatch) -> None:
    prefix = fake_prefix(tmp_path / "ws", "recon3d_ros", None)
    # An rviz2 executable outside any registered package does not count (as for launch_ros).
    (tmp_path / "ws" / "lib" / "rviz2").mkdir(parents=True)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    with pytest.raises(ConfigError) as error:
        find_package_executable("rviz2", "rviz2", "use_rviz:=true")
    message = str(error.value)
    assert message.startswith("use_rviz:=true needs the ROS package 'rviz2'")
    assert str(prefix) in message and "ros-<distro>-rviz2" in message


def test_a_registered_package_without_the_executable_is_a_clear_error(tmp_path: Path,
                                                                      monkeypatch) -> None:
    prefix = fake_prefix(tmp_path / "ws", "rviz2", None)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    with pytest.raises(ConfigError, match="executable 'rviz2' of package 'rviz2'"):
        find_package_executable("rviz2", "rviz2", "use_rviz:=true")


# ------------------------------------------------------------------------------ environment
SHIPPED = str(Path(__file__).resolve().parents[2] / "config" / "fastdds_large_data.xml")


def test_large_message_environment_defaults_set_the_profile_and_the_malloc_thresholds() -> None:
    assert large_message_environment({}, "default", "true") == {
        "FASTDDS_DEFAULT_PROFILES_FILE": SHIPPED, "GLIBC_TUNABLES": TUNABLES}


def test_each_half_can_be_turned_off_alone() -> None:
    assert large_message_environment({}, "none", "true") == {"GLIBC_TUNABLES": TUNABLES}
    assert large_message_environment({}, "default", "False") == {
        "FASTDDS_DEFAULT_PROFILES_FILE": SHIPPED}


def test_the_users_environment_wins_in_both() -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml",
           "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert large_message_environment(env, "default", "true") == {}


def test_malloc_tuning_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="malloc_tuning must be true or false, got 'yes'"):
        large_message_environment({}, "default", "yes")
