"""Which Fast DDS XML profile a process should run with (no rclpy, no launch).

The node's outputs are megabytes per message; Fast DDS's default shared-memory segment is
512 KB (ros2/rmw_fastrtps#739), so best-effort subscribers of the cloud receive almost nothing.
``config/fastdds_large_data.xml`` fixes that (its comments say how it is sized). Fast DDS reads
the profile from ``FASTDDS_DEFAULT_PROFILES_FILE`` when a process creates its first
participant, i.e. at ``rclpy.init``, so the variable must be in the environment before then.

:func:`profile_for` is the one rule for whether and what to set, used by the launch file
(``dds_profile`` argument), the demo/bench harness, the benchmarks and the test fixtures:

* a ``FASTDDS_DEFAULT_PROFILES_FILE`` already in the environment is the user's and wins, and so
  does a ``FASTDDS_BUILTIN_TRANSPORTS`` choice (the profile would replace those transports);
* another ROS middleware (``RMW_IMPLEMENTATION`` not a Fast DDS one) gets nothing;
* ``''`` or ``none`` as the requested profile sets nothing; ``default`` means the shipped file;
  anything else must be an existing file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, MutableMapping

from recon3d_ros.errors import ConfigError

__all__ = [
    "PROFILE_ENV",
    "PROFILE_FILE_NAME",
    "FASTDDS_RMWS",
    "shipped_profile",
    "profile_for",
    "apply_profile",
]

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
PROFILE_FILE_NAME = "fastdds_large_data.xml"
# The rmw implementations built on Fast DDS; an unset RMW_IMPLEMENTATION is Fast DDS too (the
# default middleware of Humble to Kilted).
FASTDDS_RMWS = frozenset({"rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"})
_NONE = frozenset({"", "none"})
_PACKAGE = "recon3d_ros"


def shipped_profile() -> Path:
    """Return the profile shipped with the package: the source tree's, else the installed one.

    A source checkout (and the editable venv install, which installs no ``data_files``) has
    ``config/`` next to the package; a colcon or pip install has it under
    ``share/recon3d_ros/config``. Raises ConfigError when neither exists.
    """
    source = Path(__file__).resolve().parents[2] / "config" / PROFILE_FILE_NAME
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    except ImportError:  # no ament index: only the source tree could have had it
        share = None
    else:
        try:
            share = Path(get_package_share_directory(_PACKAGE))
        except PackageNotFoundError:
            share = None
    if share is not None and (share / "config" / PROFILE_FILE_NAME).is_file():
        return share / "config" / PROFILE_FILE_NAME
    raise ConfigError(
        f"the Fast DDS profile {PROFILE_FILE_NAME} is neither in {source.parent} nor in the "
        f"installed share/{_PACKAGE}/config; reinstall {_PACKAGE} (colcon build or pip install)"
    )


def profile_for(env: Mapping[str, str], requested: str = "default") -> str | None:
    """Return the file to put in ``FASTDDS_DEFAULT_PROFILES_FILE``, or None to leave it alone.

    ``env`` is the environment the process will get; ``requested`` is ``default`` (the shipped
    profile), ``''``/``none`` (no profile) or a path. The user's own
    ``FASTDDS_DEFAULT_PROFILES_FILE`` or ``FASTDDS_BUILTIN_TRANSPORTS``, and a middleware other
    than Fast DDS, win over any request. Raises ConfigError for a path that is not a file.
    """
    choice = requested.strip()
    if choice.lower() in _NONE:
        return None
    if env.get(PROFILE_ENV, "").strip() or env.get("FASTDDS_BUILTIN_TRANSPORTS", "").strip():
        return None
    rmw = env.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and rmw not in FASTDDS_RMWS:
        return None
    if choice == "default":
        return str(shipped_profile())
    if not os.path.isfile(choice):
        raise ConfigError(
            f"dds_profile {choice!r} is not a file; pass a Fast DDS XML profile, 'default' for "
            f"the shipped {PROFILE_FILE_NAME}, or 'none'"
        )
    return choice


def apply_profile(env: MutableMapping[str, str], requested: str = "default") -> str | None:
    """Set ``FASTDDS_DEFAULT_PROFILES_FILE`` in ``env`` as :func:`profile_for` decides.

    Returns the file now in force for this environment (the user's own, the one set here) or
    None when no profile applies. Call it before the process (or its children) runs
    ``rclpy.init``.
    """
    path = profile_for(env, requested)
    if path is not None:
        env[PROFILE_ENV] = path
    return env.get(PROFILE_ENV) or None
