"""What launch/depth.launch.py decides before it starts a process, without launch or launch_ros.

The launch file reads its arguments as strings in an ``OpaqueFunction`` and hands them to these
functions, so that the choices (which parameters reach the node, whether rviz2 can start) are
plain Python that test/ros/test_launch_support.py tests where launch is not installed.
"""

from __future__ import annotations

import os
import shutil
from typing import Mapping

from ament_index_python.packages import get_package_prefix, PackageNotFoundError

from recon3d_ros.errors import ConfigError
from recon3d_ros.ros.dds_profile import PROFILE_ENV, profile_for
from recon3d_ros.ros.malloc_tuning import TUNABLES_ENV, tunables_for

__all__ = [
    "NODE_ARGUMENTS",
    "OVERRIDE_ARGUMENTS",
    "FUSION_NODE_ARGUMENTS",
    "FUSION_OVERRIDE_ARGUMENTS",
    "find_package_executable",
    "node_parameters",
    "fusion_node_parameters",
    "large_message_environment",
]

# Launch arguments that become node parameters when the user gives them (non-empty). Their
# launch default is empty, so by default the params file (or the node's own default) decides.
OVERRIDE_ARGUMENTS: tuple[str, ...] = ("model", "device", "backend")
# Every launch argument node_parameters() reads.
NODE_ARGUMENTS: tuple[str, ...] = ("params_file",) + OVERRIDE_ARGUMENTS
# The same for the fusion node of launch/reconstruction.launch.py (its own params file).
FUSION_OVERRIDE_ARGUMENTS: tuple[str, ...] = ("pose_source", "map_frame")
FUSION_NODE_ARGUMENTS: tuple[str, ...] = ("fusion_params_file",) + FUSION_OVERRIDE_ARGUMENTS


def node_parameters(
    arguments: Mapping[str, str],
    file_argument: str = "params_file",
    override_arguments: tuple[str, ...] = OVERRIDE_ARGUMENTS,
) -> list[str | dict[str, str]]:
    """Return the depth node's launch_ros ``parameters``: the params file, then what was given.

    ``arguments`` maps the names in :data:`NODE_ARGUMENTS` to the launch arguments' values; an
    empty (or missing) value was not given. launch_ros passes the entries to the node in this
    order and a later one overrides an earlier one, so a given ``model``/``device``/``backend``
    overrides the file while an empty one leaves the file's value in force. The values stay
    Python strings, which launch_ros passes as string parameters (a model named ``1`` stays
    ``'1'``). An empty ``params_file`` means no file: the node's code defaults.

    Raises ConfigError when ``params_file`` names no file: launch_ros would only warn and
    start the node without it.
    """
    parameters: list[str | dict[str, str]] = []
    params_file = arguments.get(file_argument, "").strip()
    if params_file:
        if not os.path.isfile(params_file):
            raise ConfigError(
                f"{file_argument}:={params_file} is not a file; pass an existing YAML "
                f"parameters file, or {file_argument}:='' for the node's defaults")
        parameters.append(params_file)
    overrides = {name: arguments[name].strip() for name in override_arguments
                 if arguments.get(name, "").strip()}
    if overrides:
        parameters.append(overrides)
    return parameters


def fusion_node_parameters(arguments: Mapping[str, str]) -> list[str | dict[str, str]]:
    """Return the fusion node's ``parameters``, as :func:`node_parameters` does the depth node's.

    Its file argument is ``fusion_params_file`` and the given overrides are ``pose_source`` and
    ``map_frame`` (:data:`FUSION_NODE_ARGUMENTS`).
    """
    return node_parameters(arguments, "fusion_params_file", FUSION_OVERRIDE_ARGUMENTS)


def find_package_executable(package: str, executable: str, reason: str) -> str:
    """Return the path of ``executable`` of ROS package ``package``, as launch_ros finds it.

    Looks where launch_ros' ``ExecutableInPackage`` does (the ament index, then
    ``<prefix>/lib/<package>``), so a launch file can check before it starts anything that a
    ``Node(package=..., executable=...)`` will be able to start. ``reason`` says why the
    executable is needed (e.g. ``use_rviz:=true``) and begins the error message.

    Raises ConfigError naming the package, the ament prefixes searched and what to do.
    """
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError as exc:
        searched = os.environ.get("AMENT_PREFIX_PATH", "")
        raise ConfigError(
            f"{reason} needs the ROS package '{package}', which is not installed (not in the "
            f"ament index of AMENT_PREFIX_PATH={searched!r}); install it (e.g. "
            f"ros-<distro>-{package.replace('_', '-')}) and source its setup file, or launch "
            "without it") from exc
    libexec = os.path.join(prefix, "lib", package)
    path = shutil.which(executable, path=libexec) if os.path.isdir(libexec) else None
    if path is None:
        raise ConfigError(
            f"{reason} needs the executable '{executable}' of package '{package}', which is not "
            f"in {libexec}; reinstall '{package}', or launch without it")
    return path


def large_message_environment(
    env: Mapping[str, str], dds_profile: str, malloc_tuning: str
) -> dict[str, str]:
    """Return the variables a launch file sets for every process it starts (MB messages).

    ``dds_profile`` (launch argument: ``default``, ``none`` or a file) gives
    ``FASTDDS_DEFAULT_PROFILES_FILE`` (:mod:`recon3d_ros.ros.dds_profile`); ``malloc_tuning``
    (``true``/``false``) gives ``GLIBC_TUNABLES`` (:mod:`recon3d_ros.ros.malloc_tuning`). What
    ``env`` (the user's environment) already chooses wins in both. Raises ConfigError for a
    profile path that is not a file or a ``malloc_tuning`` that is not a boolean.
    """
    flag = malloc_tuning.strip().lower()
    if flag not in ("true", "false"):
        raise ConfigError(f"malloc_tuning must be true or false, got {malloc_tuning!r}")
    out: dict[str, str] = {}
    profile = profile_for(env, dds_profile)
    if profile is not None:
        out[PROFILE_ENV] = profile
    tunables = tunables_for(env, flag == "true")
    if tunables is not None:
        out[TUNABLES_ENV] = tunables
    return out
