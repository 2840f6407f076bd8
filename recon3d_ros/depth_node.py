"""Entry point of the ``depth_node`` executable (``ros2 run recon3d_ros depth_node``).

Also runnable as ``python -m recon3d_ros.depth_node --ros-args --params-file config/recon3d.yaml``.

Exit status:

* ``0`` (:data:`EXIT_STOPPED`): stopped by SIGINT (Ctrl-C) or SIGTERM (``kill``, launch,
  systemd, docker stop) at any moment once this entry point runs, start-up and model loading
  included, or by a ROS shutdown. A signal during start-up takes effect when the current step
  (an import, the model load, a TensorRT engine build) returns.
* ``1`` (:data:`EXIT_CANNOT_START`): bad start-up input (``--ros-args`` syntax, params file,
  parameter values, model, device, backend). Exactly one line goes to stderr,
  ``[depth_node] cannot start: <what was wrong>; <what to do>``.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import sys
import tempfile
from types import FrameType
from typing import Any, Callable, Sequence

__all__ = ["EXIT_CANNOT_START", "EXIT_STOPPED", "freeze_startup_objects", "main", "one_line",
           "run_node"]

EXIT_STOPPED = 0
EXIT_CANNOT_START = 1
NODE_NAME = "depth_node"  # also recon3d_ros.ros.node.NODE_NAME; that module loads slowly


class _CannotStart(Exception):
    """Start-up input is wrong; the message is the one line to print."""


class _StopOnSignal:
    """Remember SIGINT / SIGTERM; start-up checks it between its steps and stops cleanly.

    SIGTERM kills a Python process by default, and rclpy's handler shuts the ROS context down
    under whatever runs, so a SIGTERM while the model loaded surfaced as an RCLError from the
    next ``create_publisher``. Raising from this handler is not safe either: the exception
    lands wherever the main thread is, and inside native code it became an ImportError from a
    pybind11 module being imported, or ``std::terminate`` (SIGABRT). So during start-up only
    this handler runs and it only records the signal; rclpy's handlers, which wake the
    executor, are installed just before spinning and chain to this one.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum


def main(args: Sequence[str] | None = None) -> int:
    """Run the node; returns the exit status (see the module docstring)."""
    return run_node(args, _make_depth_node, NODE_NAME)


def _make_depth_node() -> Any:
    from recon3d_ros.ros.node import DepthNode  # slow (torch, onnxruntime): after the handler

    return DepthNode()


def run_node(
    args: Sequence[str] | None,
    make_node: Callable[[], Any],
    node_name: str,
    describe: Callable[[str], str] | None = None,
) -> int:
    """Start-up, signals and spin of one of the package's nodes; returns the exit status.

    ``make_node`` builds the node; a :class:`Recon3dError` from it is a start-up error,
    reported as one line ``[node_name] cannot start: describe(error)`` (default
    :func:`one_line`). Every node of the package starts here, so they exit alike.
    """
    stop = _StopOnSignal()
    stop.install()  # first: rclpy and the heavy libraries take a second or more to import
    from recon3d_ros.ros.malloc_tuning import keep_large_buffers

    keep_large_buffers()  # before any MB message is allocated (why: that module)
    try:
        return _run(args, stop, make_node)
    except KeyboardInterrupt:  # a SIGINT before the handler above was installed
        return EXIT_STOPPED
    except _CannotStart as exc:
        if stop.received is not None:
            return EXIT_STOPPED  # the failure may be the signal's doing (a shut-down context)
        line = (describe or one_line)(str(exc))
        print(f"[{node_name}] cannot start: {line}", file=sys.stderr, flush=True)
        return EXIT_CANNOT_START
    finally:
        # While the interpreter finalises it resets Python-handled signals to the default
        # (terminate), so a second SIGTERM during that would still end the process with 143.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _run(args: Sequence[str] | None, stop: _StopOnSignal, make_node: Callable[[], Any]) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    if stop.received is not None:
        return EXIT_STOPPED
    _init_rclpy(rclpy, list(args) if args is not None else None)
    node = None
    try:
        from recon3d_ros.errors import Recon3dError

        if stop.received is not None:
            return EXIT_STOPPED
        problem = None
        try:
            node = make_node()
        except Recon3dError as exc:
            problem = str(exc)
        except Exception:
            if stop.received is not None or not rclpy.ok():
                return EXIT_STOPPED  # the signal shut the context down under the constructor
            raise
        if problem is not None:
            raise _CannotStart(problem)  # outside the handler: no traceback kept alive
        freeze_startup_objects()
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
        # Frozen objects are never collected; the node sits in reference cycles (callbacks,
        # threads), so without this its native resources (Open3D's grid) outlived it and
        # Open3D's exit-time leak check turned the exit status into 1.
        node = None
        gc.unfreeze()
        gc.collect()
    return EXIT_STOPPED


def freeze_startup_objects() -> None:
    """Keep the objects made during start-up out of every later garbage collection.

    The libraries and the model leave tens of thousands of long-lived objects (46k with the
    default model here); each full (generation 2) collection walked them all, 25 ms measured
    here, a frame's worth of latency whenever one fell during a frame. After ``gc.freeze()``
    the same collection took under 0.1 ms; only objects made later are scanned. The nodes'
    entry point unfreezes them again once the node is destroyed.
    """
    gc.collect()
    gc.freeze()


def _init_rclpy(rclpy: Any, args: list[str] | None) -> None:
    """``rclpy.init``; bad ``--ros-args`` become :class:`_CannotStart` with a hint.

    rcl prints its own ``[ERROR] [rcl]: Failed to parse global arguments`` before raising, so
    stderr is captured around the call and replayed only when it succeeds.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    error: Exception | None = None
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            # No rclpy signal handlers yet: they would shut the context down mid-start-up.
            rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        except Exception as exc:  # noqa: BLE001 - rcl reports bad arguments as RCLError & co
            error = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    if error is None:
        if text:
            sys.stderr.write(text)
        return
    raise _CannotStart(_explain_init_error(error)) from error


_RCL_LOCATION = re.compile(r",? at /\S+:\d+")


def _explain_init_error(exc: Exception) -> str:
    """Turn rcl's argument errors into what was wrong and what to write instead."""
    if type(exc).__name__ == "UnknownROSArgsError":
        return (
            f"unknown ROS arguments {exc}; after --ros-args use -p name:=value, "
            "-r from:=to, --params-file FILE or --log-level LEVEL"
        )
    text = _RCL_LOCATION.sub("", str(exc)).replace(". Error: error not set", "")
    text = text.replace("failed to initialize rcl: ", "")
    rule = re.search(r": '([^']*)'", text)
    quoted = rule.group(1) if rule else ""
    if "parameter override rule" in text:
        return (
            f"bad parameter override '{quoted}': write -p name:=value with a value, e.g. "
            "-p model:=default (a preset name or a model file); an empty string is "
            "-p name:=\"''\""
        )
    if "remap rule" in text:
        return (
            f"bad remapping '{quoted}': write -r from:=to, "
            "e.g. -r image:=/camera/color/image_raw"
        )
    if "params file" in text:
        path = quoted.split(" ", 1)[-1]
        if "Error opening YAML file" in text:
            return (
                f"cannot open params file {path}: give an existing YAML file, "
                "e.g. --params-file config/recon3d.yaml"
            )
        return (
            f"params file {path} is not valid ROS 2 parameter YAML ({text}); it needs "
            "'/**/depth_node:' (or '/**:') then 'ros__parameters:' with name: value lines, as in "
            "config/recon3d.yaml"
        )
    return f"ROS could not start: {text}; check the arguments after --ros-args"


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line, e.g. torch's) error message onto one line."""
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
