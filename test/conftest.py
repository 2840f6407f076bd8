"""Shared test fixtures: DDS kept on this machine, node subprocesses, tiny depth models.

DDS isolation must be in place before anything imports rclpy, so this module sets
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``RMW_IMPLEMENTATION``, a per-run
``ROS_DOMAIN_ID`` and the shipped Fast DDS profile (``FASTDDS_DEFAULT_PROFILES_FILE``) at
import time (pytest imports the root conftest before any test module).
Each ROS test additionally gets its own domain id (:func:`ros_domain`), used both for the node
subprocess and for the test's own rclpy context, so a node left over from another test (or
another run on the same machine) cannot cross-talk.
"""

from __future__ import annotations

import os
import random

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
_RNG = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))
os.environ["ROS_DOMAIN_ID"] = str(_RNG.randint(1, 200))

import array  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from recon3d_ros.ros.dds_profile import apply_profile  # noqa: E402

# The shipped large-data Fast DDS profile, as the launch file and the demo apply it (unless
# the caller has a profile of their own); each process reads it at its rclpy.init, and no
# import above brings rclpy in.
apply_profile(os.environ)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_YAML = REPO_ROOT / "config" / "recon3d.yaml"
FUSION_YAML = REPO_ROOT / "config" / "fusion.yaml"


# ---------------------------------------------------------------------------------- domains
_used_domains: set[int] = set()


@pytest.fixture
def ros_domain() -> int:
    """Return a DDS domain id in 1..200 not used before in this run."""
    while True:
        domain = _RNG.randint(1, 200)
        if domain not in _used_domains:
            _used_domains.add(domain)
            return domain


# ---------------------------------------------------------------------------------- tiny models
def _script_and_save(module: Any, path: Path, config: dict[str, Any] | None) -> Path:
    import torch
    import yaml

    scripted = torch.jit.script(module.eval())
    torch.jit.save(scripted, str(path))
    if config is not None:
        path.with_suffix(".yaml").write_text(yaml.safe_dump({"model": config}))
    return path


class DepthModels:
    """Writes tiny TorchScript/ONNX depth networks with a known output into a tmp dir.

    Each comes with a sidecar ``<stem>.yaml`` ModelConfig (metric depth, no scaling), so the
    published depth is exactly the network's raw output resampled to the image grid.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def config(self, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "name": "test",
            "input_width": 32,
            "input_height": 24,
            "resize_mode": "stretch",
            "output_kind": "metric_depth",
            "depth_scale": 1.0,
        }
        cfg.update(overrides)
        return cfg

    def constant(self, value: float = 2.0, name: str = "constant", **cfg: Any) -> Path:
        """Depth ``value`` metres everywhere."""
        import torch

        class Constant(torch.nn.Module):
            def __init__(self, v: float) -> None:
                super().__init__()
                self.v = v

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x[:, :1] * 0.0 + self.v

        return _script_and_save(Constant(value), self.root / f"{name}.ts", self.config(**cfg))

    def red_ramp(self, name: str = "red", **cfg: Any) -> Path:
        """Depth = 1 + red / 255 (un-normalised from the ImageNet mean/std): varies per pixel."""
        import torch

        class Red(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x[:, :1] * 0.229 + 0.485 + 1.0

        return _script_and_save(Red(), self.root / f"{name}.ts", self.config(**cfg))

    def slow_constant(
        self, seconds: float, value: float = 2.0, name: str = "slow", **cfg: Any
    ) -> Path:
        """Write a constant-depth model that really computes for about ``seconds`` per frame.

        The work is a chain of matrix products whose count is calibrated here, so the node under
        test runs unmodified code: the model is slow, not the node.
        """
        import torch

        class Slow(torch.nn.Module):
            def __init__(self, v: float, iterations: int) -> None:
                super().__init__()
                self.v = v
                self.iterations = iterations
                self.weight = torch.nn.Parameter(torch.eye(256) * 0.5, requires_grad=False)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                acc = torch.ones(256, 256)
                for _ in range(self.iterations):
                    acc = torch.tanh(acc @ self.weight)
                return x[:, :1] * 0.0 + self.v + acc[0, 0] * 0.0

        probe = torch.jit.script(Slow(value, 20))
        dummy = torch.zeros(1, 3, 24, 32)
        timings = []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the node process (OMP_NUM_THREADS=1)
        try:
            for _ in range(6):  # the minimum is robust to other processes stealing the CPU
                t0 = time.perf_counter()
                probe(dummy)
                timings.append(time.perf_counter() - t0)
        finally:
            torch.set_num_threads(threads)
        per_iteration = min(timings[1:]) / 20
        iterations = max(1, int(seconds / max(per_iteration, 1e-6)))
        return _script_and_save(
            Slow(value, iterations), self.root / f"{name}.ts", self.config(**cfg)
        )


@pytest.fixture
def depth_models(tmp_path: Path) -> DepthModels:
    pytest.importorskip("torch")
    folder = tmp_path / "models"
    folder.mkdir()
    return DepthModels(folder)


# ---------------------------------------------------------------------------------- node process
class NodeProcess:
    """``python -m <module>`` (default the depth node) in its own process and DDS domain."""

    def __init__(
        self,
        domain: int,
        log_path: Path,
        params: dict[str, Any],
        params_file: Path | None = CONFIG_YAML,
        remaps: dict[str, str] | None = None,
        module: str = "recon3d_ros.depth_node",
    ) -> None:
        cmd = [sys.executable, "-m", module, "--ros-args"]
        if params_file is not None:
            cmd += ["--params-file", str(params_file)]
        for name, value in params.items():
            cmd += ["-p", f"{name}:={_param_text(value)}"]
        for src, dst in (remaps or {}).items():
            cmd += ["-r", f"{src}:={dst}"]
        env = dict(os.environ)
        env["ROS_DOMAIN_ID"] = str(domain)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("OMP_NUM_THREADS", "1")  # the test machine is small and shared
        self.cmd = cmd
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT)
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.1)
        return False

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        """SIGINT (a clean Ctrl-C), then kill if it hangs; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@pytest.fixture
def start_node(tmp_path: Path, ros_domain: int) -> Iterator[Callable[..., NodeProcess]]:
    """Start depth_node processes with parameters as keyword arguments."""
    started: list[NodeProcess] = []

    def _start(
        params_file: Path | None = CONFIG_YAML, remaps: dict[str, str] | None = None, **params: Any
    ) -> NodeProcess:
        node = NodeProcess(
            ros_domain, tmp_path / f"node{len(started)}.log", params, params_file, remaps
        )
        started.append(node)
        return node

    yield _start
    for node in started:
        node.stop()


@pytest.fixture
def start_fusion_node(
    tmp_path: Path, ros_domain: int
) -> Iterator[Callable[..., NodeProcess]]:
    """Start fusion_node processes (config/fusion.yaml, then keyword parameters)."""
    started: list[NodeProcess] = []

    def _start(
        params_file: Path | None = FUSION_YAML, remaps: dict[str, str] | None = None, **params: Any
    ) -> NodeProcess:
        node = NodeProcess(
            ros_domain, tmp_path / f"fusion{len(started)}.log", params, params_file, remaps,
            module="recon3d_ros.fusion_node",
        )
        started.append(node)
        return node

    yield _start
    for node in started:
        node.stop()


# ---------------------------------------------------------------------------------- test-side ROS
class Collector:
    """Messages received on one topic, with their receive time (``time.time()``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[float, Any]] = []

    def __call__(self, msg: Any) -> None:
        with self.lock:
            self.items.append((time.time(), msg))

    def messages(self) -> list[Any]:
        with self.lock:
            return [m for _, m in self.items]

    def timed(self) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.items)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()

    def __len__(self) -> int:
        with self.lock:
            return len(self.items)


class RosHarness:
    """A real rclpy context + node in the test process, spun by a background executor."""

    def __init__(self, domain: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.domain = domain
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(f"test_harness_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except (ExternalShutdownException, Exception):  # context shut down under us
            pass

    def publisher(self, msg_type: Any, topic: str, qos: Any = None) -> Any:
        from rclpy.qos import qos_profile_sensor_data

        return self.node.create_publisher(
            msg_type, topic, qos if qos is not None else qos_profile_sensor_data
        )

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> Collector:
        collector = Collector()
        self.node.create_subscription(msg_type, topic, collector, qos)
        return collector

    def now_stamp(self) -> Any:
        from builtin_interfaces.msg import Time

        ns = time.time_ns()
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()


@pytest.fixture
def ros(ros_domain: int) -> Iterator[RosHarness]:
    harness = RosHarness(ros_domain)
    yield harness
    harness.close()


def wait_until(predicate: Callable[[], bool], timeout: float, period: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return predicate()


@pytest.fixture
def wait_for() -> Callable[[Callable[[], bool], float], bool]:
    """Poll a predicate until it holds or a timeout passes; returns whether it held."""
    return wait_until


# ---------------------------------------------------------------------------------- messages
def make_image(rgb: np.ndarray, stamp: Any, frame_id: str, encoding: str = "rgb8") -> Any:
    """Build a dense sensor_msgs/Image field by field (independent of the code under test)."""
    from sensor_msgs.msg import Image

    arr = np.ascontiguousarray(rgb)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.strides[0])
    data = array.array("B")
    data.frombytes(arr.tobytes())
    msg.data = data
    return msg


def make_camera_info(
    width: int,
    height: int,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    stamp: Any,
    frame_id: str,
    d: list[float] | None = None,
) -> Any:
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = width, height
    msg.distortion_model = "plumb_bob"
    msg.d = list(d) if d is not None else [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def read_depth(msg: Any) -> np.ndarray:
    """Read a 32FC1 sensor_msgs/Image as H x W float32 (checks encoding and step)."""
    assert msg.encoding == "32FC1", msg.encoding
    assert msg.step == msg.width * 4
    dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
    return np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width)


def read_cloud_xyz(msg: Any) -> np.ndarray:
    """x, y, z of an organized PointCloud2 as H x W x 3, read by its PointField layout."""
    fields = {f.name: (f.offset, f.datatype, f.count) for f in msg.fields}
    assert not msg.is_bigendian
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.row_step)
    pts = raw[:, :msg.width * msg.point_step].reshape(msg.height, msg.width, msg.point_step)
    out = np.empty((msg.height, msg.width, 3), np.float32)
    for i, name in enumerate("xyz"):
        offset, datatype, count = fields[name]
        assert (datatype, count) == (7, 1)  # FLOAT32
        out[..., i] = np.ascontiguousarray(pts[..., offset:offset + 4]).view("<f4")[..., 0]
    return out


@pytest.fixture
def msgs() -> Any:
    """Build and read messages.

    ``msgs.image(rgb, stamp, frame)``, ``msgs.camera_info(...)``, ``msgs.depth(image_msg)``,
    ``msgs.cloud_xyz(cloud_msg)``.
    """

    class _Builders:
        image = staticmethod(make_image)
        camera_info = staticmethod(make_camera_info)
        depth = staticmethod(read_depth)
        cloud_xyz = staticmethod(read_cloud_xyz)

    return _Builders()


class CameraSender:
    """Publishes image/camera_info pairs like a camera driver (sensor-data QoS)."""

    def __init__(
        self,
        ros: RosHarness,
        image_topic: str = "image",
        info_topic: str = "camera_info",
        image_type: Any = None,
    ) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        self.ros = ros
        self.image_pub = ros.publisher(image_type or Image, image_topic)
        self.info_pub = ros.publisher(CameraInfo, info_topic)

    def send(
        self,
        rgb: np.ndarray | None = None,
        k: tuple[float, float, float, float] = (40.0, 40.0, 31.5, 23.5),
        frame: str = "cam",
        stamp: Any = None,
        image: Any = None,
        info: Any = None,
        send_info: bool = True,
        d: list[float] | None = None,
    ) -> tuple[int, int]:
        """Send one pair (``image``/``info`` replace the built messages); returns the stamp."""
        stamp = stamp if stamp is not None else self.ros.now_stamp()
        if send_info:
            if info is None:
                h, w = rgb.shape[:2]
                info = make_camera_info(w, h, *k, stamp=stamp, frame_id=frame, d=d)
            self.info_pub.publish(info)
        self.image_pub.publish(image if image is not None else make_image(rgb, stamp, frame))
        return stamp.sec, stamp.nanosec


@pytest.fixture
def camera_pub(ros: RosHarness) -> CameraSender:
    return CameraSender(ros)


@pytest.fixture
def make_camera(ros: RosHarness) -> Callable[..., CameraSender]:
    """Make senders on other topics/types (e.g. ``image/compressed``, CompressedImage)."""
    return lambda **kwargs: CameraSender(ros, **kwargs)


def stamp_key(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


@pytest.fixture
def key() -> Callable[[Any], tuple[int, int]]:
    """Get the ``(sec, nanosec)`` of a message's header stamp."""
    return stamp_key


# ---------------------------------------------------------------------------------- bad payloads
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _zeros_zlib(n: int, chunk: int = 1 << 20) -> bytes:
    """Return a zlib stream of ``n`` zero bytes (level 9) without compressing all of them.

    After a full flush the compressor starts afresh, so every 1 MiB chunk of zeros codes to
    the same bytes: code one and repeat it. The trailer is Adler-32 of ``n`` zeros, which is
    ``(n mod 65521) << 16 | 1`` (RFC 1950: A stays 1, B adds A per byte).
    """
    import zlib

    c = zlib.compressobj(9)
    first = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    assert first[2:] == block  # only the 2-byte zlib header differs
    full, rest = divmod(n, chunk)
    tail = c.compress(bytes(rest)) + c.flush()
    adler = ((n % 65521) << 16) | 1
    return first[:2] + block * full + tail[:-4] + adler.to_bytes(4, "big")


class BadPayloads:
    """Hostile or broken jpeg/png payloads, built byte by byte (not by the code under test)."""

    @staticmethod
    def png(width: int, height: int, rows: int | None = None) -> bytes:
        """Build an all-black 8-bit RGB png with valid chunks and CRCs.

        ``rows`` < ``height`` puts fewer rows in IDAT than IHDR declares.
        """
        import struct

        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        n_rows = height if rows is None else rows
        idat = _zeros_zlib(n_rows * (1 + 3 * width))
        sig = b"\x89PNG\r\n\x1a\n"
        chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
        return sig + chunks

    @staticmethod
    def jpeg(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
        """Encode noise as a baseline JPEG of a few KB with the OpenCV encoder."""
        import cv2

        noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
        ok, jpg = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return jpg.tobytes()

    @classmethod
    def jpeg_bomb(cls, width: int = 16000, height: int = 16000) -> bytes:
        """Patch the SOF0 frame header of a small real jpeg to declare another size."""
        data = bytearray(cls.jpeg())
        sof = data.find(b"\xff\xc0")
        assert sof > 0 and data[sof + 4] == 8  # SOF0, 8-bit precision
        data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
        return bytes(data)

    @classmethod
    def png_bomb(cls, width: int = 16000, height: int = 16000) -> bytes:
        """Build a complete all-zero png: 16000 x 16000 is 0.76 MB for 768 MB of pixels."""
        return cls.png(width, height)


@pytest.fixture
def bad_payloads() -> type[BadPayloads]:
    """Build decompression bombs and corrupt jpeg/png payloads."""
    return BadPayloads
