"""Run the depth node as its own process and talk to it over real DDS.

:func:`configure_ros_environment` must run before ``rclpy`` is imported: it pins the process
to its own ``ROS_DOMAIN_ID`` with ``LOCALHOST`` discovery so a demo or benchmark never reaches
(or hears) other machines. :class:`NodeProcess` starts ``python -m recon3d_ros.depth_node``
with the same environment and reads its memory from ``/proc``. :class:`CameraLink` is the
other end: it publishes frames as a camera driver would (``image`` + ``camera_info``, same
stamp, sensor-data QoS) and collects what the node sends back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import Recon3dError
# No rclpy in these: safe before configure_ros_environment.
from recon3d_ros.ros import dds_profile, malloc_tuning, topics

__all__ = [
    "PACKAGE_ROOT",
    "DEFAULT_PARAMS_FILE",
    "configure_ros_environment",
    "ros_environment",
    "NodeProcess",
    "Received",
    "CameraLink",
    "percentiles",
]

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS_FILE = PACKAGE_ROOT / "config" / "recon3d.yaml"


def ros_environment(
    domain_id: int | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Copy ``base`` (default: this process's environment), confined to this machine.

    Also names the shipped large-data Fast DDS profile in ``FASTDDS_DEFAULT_PROFILES_FILE``
    unless ``base`` has a profile (or another middleware) of its own
    (:func:`recon3d_ros.ros.dds_profile.profile_for`), and sets the malloc thresholds of
    :mod:`recon3d_ros.ros.malloc_tuning` in ``GLIBC_TUNABLES`` for the processes started with
    it, as the launch files do.
    """
    env = dict(os.environ if base is None else base)
    if domain_id is None:
        domain_id = random.randint(1, 200)
    env["ROS_DOMAIN_ID"] = str(int(domain_id))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range
    dds_profile.apply_profile(env)
    malloc_tuning.apply_tunables(env)
    return env


def configure_ros_environment(domain_id: int | None = None) -> int:
    """Confine this process's DDS traffic to this machine; returns the domain id used.

    Must be called before ``rclpy.init``: the domain, the discovery range and the Fast DDS
    profile (see :func:`ros_environment`) are read then.
    """
    if "rclpy" in sys.modules:
        import rclpy

        if rclpy.ok():
            raise Recon3dError(
                "configure_ros_environment() was called after rclpy.init(); call it first so the "
                "domain id and LOCALHOST discovery take effect"
            )
    env = ros_environment(domain_id)
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", dds_profile.PROFILE_ENV):
        if key in env:
            os.environ[key] = env[key]
    for key in ("ROS_STATIC_PEERS", "ROS_LOCALHOST_ONLY"):
        os.environ.pop(key, None)
    return int(env["ROS_DOMAIN_ID"])


class NodeProcess:
    """``python -m recon3d_ros.depth_node`` as a child process (a context manager).

    The node's output goes to ``log_path`` (or is discarded) so a chatty node cannot block on
    a full pipe. :meth:`rss_kib` reads the resident memory from ``/proc/<pid>/status``.
    """

    def __init__(
        self,
        model: str,
        params: Mapping[str, Any] | None = None,
        params_file: str | Path | None = DEFAULT_PARAMS_FILE,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        node_name: str | None = None,
    ) -> None:
        self.model = model
        self.params = dict(params or {})
        self.params_file = Path(params_file) if params_file else None
        if env is None:
            # Same domain as this process (configure_ros_environment ran first), else a fresh one.
            current = os.environ.get("ROS_DOMAIN_ID", "").strip()
            env = ros_environment(int(current) if current.isdigit() else None)
        self.env = dict(env)
        self.log_path = Path(log_path) if log_path else None
        self.node_name = node_name
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "recon3d_ros.depth_node", "--ros-args"]
        if self.params_file is not None and self.params_file.is_file():
            cmd += ["--params-file", str(self.params_file)]
        cmd += ["-p", f"model:={self.model}"]
        for name, value in self.params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{name}:={text}"]
        if self.node_name:
            cmd += ["-r", f"__node:={self.node_name}"]
        return cmd

    def start(self) -> "NodeProcess":
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
            out: Any = self._log_file
        else:
            out = subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(), env=env, stdout=out, stderr=subprocess.STDOUT
        )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise Recon3dError("the node process has not been started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_kib(self) -> int:
        """Resident set size of the node (``VmRSS``), KiB."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError as exc:
            raise Recon3dError(
                f"cannot read the node's memory from /proc/{self.pid}/status: {exc}"
            ) from exc
        raise Recon3dError(f"/proc/{self.pid}/status has no VmRSS line")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(node output was not captured)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (a clean rclpy shutdown), then SIGTERM, then SIGKILL."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            for sig, wait in (
                (signal.SIGINT, timeout),
                (signal.SIGTERM, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                proc.send_signal(sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    """One output message as collected: receipt time and the stamp it answers."""

    stamp_ns: int
    receipt_ns: int
    message: Any = None


@dataclass
class _Stream:
    keep: bool
    items: list[Received] = field(default_factory=list)
    count: int = 0


def percentiles(values_ms: Sequence[float], qs: Sequence[float] = (50, 90)) -> dict[str, float]:
    """``{"p50": ..., "p90": ..., "max": ...}`` of a list of milliseconds (NaN when empty)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    out = {f"p{int(q)}": float(np.percentile(arr, q)) if arr.size else float("nan") for q in qs}
    out["max"] = float(arr.max()) if arr.size else float("nan")
    return out


class CameraLink:
    """An rclpy node playing the camera driver and the node's consumers at once.

    Publishes ``image`` and ``camera_info`` with one stamp per frame (best effort like a
    driver, or ``reliable``); subscribes ``depth/image``, ``depth/camera_info``, ``points``
    (reliable, as the node publishes) and ``/diagnostics``. Callbacks run on a background
    executor thread. ``keep_messages`` keeps each received message (the demo needs them; a
    soak test must not).

    Best effort loses most images larger than about 0.5 MB here (Fast DDS drops a sample when
    one of its fragments is lost; measured: 4 of 20 640x480 rgb8 frames arrived at 5 Hz), so
    callers that must deliver every frame use ``reliable=True`` with the node's
    ``input_qos_reliability: reliable``.
    """

    def __init__(
        self,
        namespace: str = "",
        keep_messages: bool = True,
        node_name: str = "recon3d_camera_link",
        reliable: bool = False,
    ) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        if not rclpy.ok():
            rclpy.init()
            self._owns_context = True
        else:
            self._owns_context = False
        self.node = rclpy.create_node(node_name, namespace=namespace)
        in_qos = qos_profile_sensor_data
        if reliable:
            in_qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
            )
        self.image_pub = self.node.create_publisher(Image, topics.IMAGE, in_qos)
        self.info_pub = self.node.create_publisher(CameraInfo, topics.CAMERA_INFO, in_qos)
        # Deep reliable queues: the collector must not be the one dropping frames.
        out_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE
        )
        self._lock = threading.Lock()
        self.streams: dict[str, _Stream] = {
            "depth": _Stream(keep_messages),
            "depth_info": _Stream(keep_messages),
            "points": _Stream(keep_messages),
        }
        self.diagnostics: list[Any] = []
        self.sent: dict[int, int] = {}  # stamp ns -> frame index
        self.published = 0
        self._subs = [
            self.node.create_subscription(
                Image, topics.DEPTH_IMAGE, self._collector("depth"), out_qos
            ),
            self.node.create_subscription(
                CameraInfo, topics.DEPTH_CAMERA_INFO, self._collector("depth_info"), out_qos
            ),
            self.node.create_subscription(
                PointCloud2, topics.POINTS, self._collector("points"), out_qos
            ),
            self.node.create_subscription(
                DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, 10
            ),
        ]
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="camera-link-spin", daemon=True)
        self._running = True
        self._thread.start()

    # ------------------------------------------------------------------ receiving
    def _spin(self) -> None:
        while self._running:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - a shutdown race must not kill the thread noisily
                if self._running:
                    raise
                return

    def _collector(self, name: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with self._lock:
                stream = self.streams[name]
                stream.count += 1
                stream.items.append(Received(stamp, now, msg if stream.keep else None))

        return callback

    def _on_diagnostics(self, msg: Any) -> None:
        with self._lock:
            self.diagnostics.append(msg)
            del self.diagnostics[:-20]

    def count(self, name: str) -> int:
        with self._lock:
            return self.streams[name].count

    def take(self, name: str) -> list[Received]:
        """Received items of a stream so far (and forget them)."""
        with self._lock:
            items = self.streams[name].items
            self.streams[name].items = []
            return items

    def latencies_ms(self, items: Sequence[Received]) -> list[float]:
        """Stamp-to-receipt latency of items answering frames this link sent."""
        return [(r.receipt_ns - r.stamp_ns) / 1e6 for r in items if r.stamp_ns in self.sent]

    def diagnostic_values(self) -> dict[str, str]:
        """Key/values of the newest /diagnostics status carrying the node's frame counters."""
        with self._lock:
            messages = list(self.diagnostics)
        for msg in reversed(messages):
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if "frames_received" in values:
                    return values
        return {}

    # ------------------------------------------------------------------ publishing
    def wait_for_node(self, timeout: float, alive: Callable[[], bool] | None = None) -> bool:
        """Until the node subscribes to the image and publishes the cloud (True), or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                return False
            if (
                self.image_pub.get_subscription_count() > 0
                and self.node.count_publishers(self._resolved(topics.POINTS)) > 0
            ):
                return True
            time.sleep(0.05)
        return False

    def _resolved(self, topic: str) -> str:
        return self.node.resolve_topic_name(topic)

    def publish(
        self,
        rgb: npt.NDArray[np.uint8],
        camera: PinholeCamera,
        index: int,
        stamp_ns: int | None = None,
    ) -> int:
        """Publish one frame (image + camera_info, same stamp); returns the stamp in ns."""
        from std_msgs.msg import Header

        from recon3d_ros.ros import conversions

        stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
        header = Header(
            stamp=conversions.ns_to_stamp(stamp_ns), frame_id=camera.frame_id or "camera"
        )
        image = conversions.array_to_image_msg(rgb, "rgb8", header)
        info = conversions.camera_to_info_msg(camera, header)
        with self._lock:
            self.sent[stamp_ns] = index
        self.info_pub.publish(info)
        self.image_pub.publish(image)
        self.published += 1
        return stamp_ns

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join(timeout=2.0)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        if self._owns_context and rclpy.ok():
            rclpy.shutdown()

    def __enter__(self) -> "CameraLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
