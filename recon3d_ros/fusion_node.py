"""Entry point of the ``fusion_node`` executable (``ros2 run recon3d_ros fusion_node``).

Also runnable as ``python -m recon3d_ros.fusion_node --ros-args --params-file config/fusion.yaml``.
Start-up and signals work as for ``depth_node`` (:mod:`recon3d_ros.depth_node`, whose helpers
this uses): exit status ``0`` (:data:`EXIT_STOPPED`) after SIGINT / SIGTERM at any moment or a
ROS shutdown; ``1`` (:data:`EXIT_CANNOT_START`) on bad start-up input (``--ros-args``, params
file, parameter values, no Open3D, ``pose_source: tf`` without tf2_ros), with exactly one line
on stderr, ``[fusion_node] cannot start: <what was wrong>; <what to do>``.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from recon3d_ros.depth_node import EXIT_CANNOT_START, EXIT_STOPPED, one_line, run_node

__all__ = ["EXIT_CANNOT_START", "EXIT_STOPPED", "main"]

NODE_NAME = "fusion_node"  # also recon3d_ros.ros.fusion_params.NODE_NAME (loads slowly)


def main(args: Sequence[str] | None = None) -> int:
    """Run the node; returns the exit status (see the module docstring)."""
    return run_node(args, _make_fusion_node, NODE_NAME, _for_this_node)


def _make_fusion_node() -> Any:
    from recon3d_ros.ros.fusion_node import FusionNode  # slow (open3d): after the handler

    return FusionNode()


def _for_this_node(text: str) -> str:
    """One line; the shared argument hints name the depth node's file and key: use ours."""
    return one_line(text).replace("/**/depth_node:", f"/**/{NODE_NAME}:").replace(
        "config/recon3d.yaml", "config/fusion.yaml").replace(
        "e.g. -p model:=default (a preset name or a model file)", "e.g. -p voxel_size:=0.05")


if __name__ == "__main__":
    sys.exit(main())
