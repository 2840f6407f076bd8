"""Lazy Open3D import with an install hint (the CPU wheel is 105 MB and optional)."""

from __future__ import annotations

from typing import Any

from recon3d_ros.errors import BackendUnavailableError

INSTALL_HINT = (
    "install it with `pip install open3d-cpu==0.20.0` (CPU) or `pip install open3d==0.20.0` "
    "(CUDA); it needs the system library libusb-1.0 (`sudo apt-get install libusb-1.0-0`)"
)


def open3d() -> Any:
    """Return the ``open3d`` module, or raise :class:`BackendUnavailableError` with the fix."""
    try:
        import open3d as o3d
    except ImportError as exc:  # also OSError-like ImportErrors for a missing libusb
        raise BackendUnavailableError(
            f"3D reconstruction needs Open3D, which cannot be imported ({exc}); {INSTALL_HINT}"
        ) from exc
    # Open3D logs a line per internal reallocation (ray casting does it often) at Info level.
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d
