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
from typing import Sequence

from recon3d_ros.depth_node import (
    _CannotStart,
    _init_rclpy,
    _one_line,
    _StopOnSignal,
    EXIT_CANNOT_START,
    EXIT_STOPPED,
)

__all__ = ["EXIT_CANNOT_START", "EXIT_STOPPED", "main"]

NODE_NAME = "fusion_node"  # also recon3d_ros.ros.fusion_params.NODE_NAME (loads slowly)


def main(args: Sequence[str] | None = None) -> int:
    """Run the node; returns the exit status (see the module docstring)."""
    stop = _StopOnSignal()
    stop.install()  # first: rclpy and open3d take a second or more to import
    try:
        return _run(args, stop)
    except KeyboardInterrupt:  # a SIGINT before the handler above was installed
        return EXIT_STOPPED
    except _CannotStart as exc:
        if stop.received is not None:
            return EXIT_STOPPED  # the failure may be the signal's doing (a shut-down context)
        print(f"[{NODE_NAME}] cannot start: {_for_this_node(str(exc))}", file=sys.stderr,
              flush=True)
        return EXIT_CANNOT_START
    finally:
        # While the interpreter finalises it resets Python-handled signals to the default
        # (terminate), so a second SIGTERM during that would still end the process with 143.
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _for_this_node(text: str) -> str:
    """One line; the shared argument hints name the depth node's file and key: use ours."""
    return _one_line(text).replace("/**/depth_node:", f"/**/{NODE_NAME}:").replace(
        "config/recon3d.yaml", "config/fusion.yaml").replace(
        "e.g. -p model:=default (a preset name or a model file)", "e.g. -p voxel_size:=0.05")


def _run(args: Sequence[str] | None, stop: _StopOnSignal) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    if stop.received is not None:
        return EXIT_STOPPED
    _init_rclpy(rclpy, list(args) if args is not None else None)
    node = None
    try:
        from recon3d_ros.errors import Recon3dError
        from recon3d_ros.ros.fusion_node import FusionNode

        if stop.received is not None:
            return EXIT_STOPPED
        problem = None
        try:
            node = FusionNode()
        except Recon3dError as exc:
            problem = str(exc)
        except Exception:
            if stop.received is not None or not rclpy.ok():
                return EXIT_STOPPED  # the signal shut the context down under the constructor
            raise
        if problem is not None:
            raise _CannotStart(problem)  # outside the handler: no traceback kept alive
        # From now on a signal shuts the context down, which ends spin(); installed before
        # the last check so that no signal falls between the two.
        from rclpy.signals import SignalHandlerOptions, install_signal_handlers

        install_signal_handlers(SignalHandlerOptions.ALL)
        if stop.received is not None:
            return EXIT_STOPPED
        rclpy.spin(node)
    except ExternalShutdownException:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
