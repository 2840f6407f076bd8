"""Entry point of the ``depth_node`` executable (``ros2 run recon3d_ros depth_node``).

Also runnable as ``python -m recon3d_ros.depth_node --ros-args --params-file config/recon3d.yaml``.
Start-up failures (missing model, bad parameter, unavailable backend) print one clear line and
exit with status 1; Ctrl-C shuts down cleanly with status 0.
"""

from __future__ import annotations

import sys
from typing import Sequence

import rclpy
from rclpy.executors import ExternalShutdownException

from recon3d_ros.errors import Recon3dError

__all__ = ["main"]


def main(args: Sequence[str] | None = None) -> int:
    rclpy.init(args=list(args) if args is not None else None)
    node = None
    try:
        from recon3d_ros.ros.node import NODE_NAME, DepthNode

        try:
            node = DepthNode()
        except Recon3dError as exc:
            message = f"[{NODE_NAME}] cannot start: {exc}"
            print(message, file=sys.stderr, flush=True)
            return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
