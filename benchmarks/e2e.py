"""End to end over real DDS: camera process -> depth node -> two consumer processes (figures).

Per case (image size x DDS set-up) this starts, each as its own process with its own
``ROS_DOMAIN_ID`` and LOCALHOST discovery:

* a camera: ``image`` (rgb8) + ``camera_info`` with one stamp (the wall clock at publish) at
  ``--rate`` Hz, QoS ``--camera-qos`` (``reliable``, keep last 10, as usb_cam / v4l2_camera
  publish with rclcpp's default; or ``sensor_data``);
* the depth node (``--model``, default the shipped model; its defaults, so best-effort input);
* a reliable consumer of ``points`` (keep last 5, as rviz2's PointCloud2 display) that also
  reads ``/diagnostics``, and a best-effort one (sensor-data QoS, as Nav2's obstacle and voxel
  layers).

The camera publishes for ``--warmup`` seconds (not counted: model warm-up, discovery) and then
``--seconds``; frames whose stamp falls in that window are counted. Each case prints one JSON
object: the camera's rate; from the node's ``/diagnostics`` (its 1 Hz counters, interpolated at
the window's edges) its output rate and frames received, dropped (superseded while busy),
rejected and lost before the node; its CPU % from ``/proc/<pid>/stat`` (100 = one core);
for each consumer the clouds received in the window, their rate, their fraction of the node's
output (the window's clouds either consumer received: the node's counters are 1 Hz snapshots)
and of the camera's frames, and stamp-to-receipt latency p50 / p95 / max (ms). The
1-minute load average before and after the case says how busy the machine was.

Set-ups:

* ``profile``: what the launch files give every process they start: ``config/
  fastdds_large_data.xml`` in FASTDDS_DEFAULT_PROFILES_FILE and the malloc thresholds of
  ``recon3d_ros/ros/malloc_tuning.py`` in GLIBC_TUNABLES (camera, node, consumers);
* ``profile_plain_consumers``: the profile everywhere, but the camera and the consumers with
  glibc's own malloc settings (an rviz2 or Nav2 started outside the launch file);
* ``stock``: no profile and no GLIBC_TUNABLES in any process.

In every set-up the node applies the malloc thresholds to itself (its executables do, unless
the environment has malloc settings of its own).

Run: ``PYTHONPATH=. python benchmarks/e2e.py [--seconds 30 --rate 30 --sizes 640x480,1280x720
--setups profile,stock] [--markdown]`` (about 50 s per case at the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

import numpy as np

from recon3d_ros.demo.harness import NodeProcess, PACKAGE_ROOT, percentiles, ros_environment
from recon3d_ros.ros import dds_profile, malloc_tuning, topics

SETUPS = ("profile", "profile_plain_consumers", "stock")
DEFAULT_SETUPS = ("profile", "stock")
_READY = "ready"
_START = "start"


# ------------------------------------------------------------------------------- child roles
def _qos(name: str) -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if name == "sensor_data":
        return qos_profile_sensor_data
    depth = 10 if name == "camera_reliable" else 5
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
    )


def run_camera(args: argparse.Namespace) -> int:
    """Publish image + camera_info at ``--rate``; write the stamps sent to ``--out``."""
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from recon3d_ros.core.camera import PinholeCamera
    from recon3d_ros.ros import conversions

    rclpy.init()
    node = rclpy.create_node("e2e_camera")
    qos = _qos("camera_reliable" if args.camera_qos == "reliable" else "sensor_data")
    image_pub = node.create_publisher(Image, topics.IMAGE, qos)
    info_pub = node.create_publisher(CameraInfo, topics.CAMERA_INFO, qos)
    camera = PinholeCamera.from_fov(args.width, args.height, 70.0, frame_id="camera_optical_frame")
    rng = np.random.default_rng(0)
    # A textured frame (the model's cost does not depend on the content).
    rgb = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    header = Header(frame_id=camera.frame_id)
    image = conversions.array_to_image_msg(rgb, "rgb8", header)
    info = conversions.camera_to_info_msg(camera, header)
    deadline = time.monotonic() + args.startup_timeout
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if image_pub.get_subscription_count() == 0:
        print("the depth node never subscribed to image", file=sys.stderr, flush=True)
        return 1
    time.sleep(1.0)  # let the camera_info subscription match too
    period_ns = int(1e9 / args.rate)
    count = int(round((args.warmup + args.seconds) * args.rate))
    t0 = time.time_ns()
    print(f"{_START} {t0}", flush=True)
    stamps = []
    for i in range(count):
        target = t0 + i * period_ns
        delay = (target - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        stamp_ns = time.time_ns()
        stamp = conversions.ns_to_stamp(stamp_ns)
        image.header.stamp = stamp
        info.header.stamp = stamp
        info_pub.publish(info)
        image_pub.publish(image)
        stamps.append(stamp_ns)
    Path(args.out).write_text(json.dumps({"sent": stamps}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


def run_consumer(args: argparse.Namespace) -> int:
    """Record (stamp, receipt) of every cloud until ``--stop`` exists; write them to ``--out``."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import PointCloud2

    rclpy.init()
    node = rclpy.create_node(f"e2e_consumer_{args.reliability}")
    clouds: list[tuple[int, int]] = []
    diagnostics: list[tuple[int, dict[str, str]]] = []

    def on_cloud(msg: Any) -> None:
        clouds.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                       time.time_ns()))

    def on_diagnostics(msg: Any) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "frames_published" in values:
                diagnostics.append((stamp, values))

    qos = _qos("sensor_data" if args.reliability == "best_effort" else "reliable")
    node.create_subscription(PointCloud2, topics.POINTS, on_cloud, qos)
    if args.diagnostics:
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diagnostics, 10)
    points = node.resolve_topic_name(topics.POINTS)
    deadline = time.monotonic() + args.startup_timeout
    while node.count_publishers(points) == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)
    print(_READY, flush=True)
    stop = Path(args.stop)
    while not stop.exists():
        rclpy.spin_once(node, timeout_sec=0.05)
    Path(args.out).write_text(json.dumps({"clouds": clouds, "diagnostics": diagnostics}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


# ------------------------------------------------------------------------------- orchestration
def _child(role_args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", ""))
                                        if p)
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), *role_args], env=env,
                            stdout=subprocess.PIPE, stderr=None, text=True)


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """Read ``proc``'s stdout until a line starting with ``prefix`` (a blocking read)."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {proc.args[2:5]} exited (code {proc.wait()}) before "
                               f"{prefix!r}")
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"child {proc.args[2:5]} did not print {prefix!r} in {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sleep_until_wall(t_ns: int) -> None:
    delay = (t_ns - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def counter_at(diagnostics: Sequence[tuple[int, dict[str, str]]], key: str, t_ns: float) -> float:
    """Counter ``key`` of the node's /diagnostics at time ``t_ns``, linear between snapshots."""
    times = np.array([t for t, _ in diagnostics], dtype=np.float64)
    values = np.array([float(v.get(key, "nan")) for _, v in diagnostics], dtype=np.float64)
    if times.size == 0:
        return float("nan")
    return float(np.interp(t_ns, times, values))


def _in_window(clouds: Sequence[Sequence[int]], w0: int, w1: int) -> dict[int, int]:
    """Stamp -> receipt time of the clouds whose image stamp lies in ``[w0, w1)``."""
    return {int(s): int(r) for s, r in clouds if w0 <= s < w1}


def _consumer_figures(window: dict[int, int], seconds: float, delivered: int,
                      sent: int) -> dict[str, Any]:
    lat = percentiles([(r - s) / 1e6 for s, r in window.items()], (50, 95))
    return {
        "received": len(window),
        "hz": round(len(window) / seconds, 2),
        "fraction_of_node_output": round(len(window) / delivered, 3) if delivered else None,
        "fraction_of_camera": round(len(window) / sent, 3) if sent else None,
        "latency_ms": {k: round(v, 1) for k, v in lat.items()},
    }


def run_case(args: argparse.Namespace, width: int, height: int, setup: str,
             tmp: Path) -> dict[str, Any]:
    """Run one case and return its figures."""
    base = {k: v for k, v in os.environ.items()
            if k not in (dds_profile.PROFILE_ENV, "FASTDDS_BUILTIN_TRANSPORTS",
                         malloc_tuning.TUNABLES_ENV)}
    env = ros_environment(random.randint(1, 200), base=base)  # profile and malloc tunables
    if setup == "stock":
        env.pop(dds_profile.PROFILE_ENV, None)
        env.pop(malloc_tuning.TUNABLES_ENV, None)
    plain = dict(env)  # the camera's and the consumers'
    if setup == "profile_plain_consumers":
        plain.pop(malloc_tuning.TUNABLES_ENV, None)
    profile = env.get(dds_profile.PROFILE_ENV)
    env.setdefault("OMP_NUM_THREADS", "1")
    case_dir = tmp / f"{width}x{height}_{setup}"
    case_dir.mkdir(parents=True, exist_ok=True)
    stop = case_dir / "stop"
    load_before = os.getloadavg()[0]
    node = NodeProcess(args.model, params=dict(args.param), env=env,
                       log_path=case_dir / "node.log").start()
    children: list[subprocess.Popen[str]] = []
    try:
        common = ["--startup-timeout", str(args.startup_timeout), "--stop", str(stop)]
        reliable = _child(["--role", "consumer", "--reliability", "reliable", "--diagnostics",
                           "--out", str(case_dir / "reliable.json"), *common], plain)
        best = _child(["--role", "consumer", "--reliability", "best_effort",
                       "--out", str(case_dir / "best_effort.json"), *common], plain)
        children += [reliable, best]
        for consumer in (reliable, best):
            _wait_line(consumer, _READY, args.startup_timeout + 10)
        camera = _child(["--role", "camera", "--width", str(width), "--height", str(height),
                         "--rate", str(args.rate), "--seconds", str(args.seconds),
                         "--warmup", str(args.warmup), "--camera-qos", args.camera_qos,
                         "--startup-timeout", str(args.startup_timeout),
                         "--out", str(case_dir / "camera.json")], plain)
        children.append(camera)
        t0 = int(_wait_line(camera, _START, args.startup_timeout + 30).split()[1])
        w0 = t0 + int(args.warmup * 1e9)
        w1 = w0 + int(args.seconds * 1e9)
        _sleep_until_wall(w0)
        pids = {"node": node.pid, "camera": camera.pid, "reliable": reliable.pid,
                "best_effort": best.pid}
        cpu0, wall0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
        _sleep_until_wall(w1)
        cpu1, wall1 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
        cpu = {k: round(100.0 * (cpu1[k] - cpu0[k]) / (wall1 - wall0), 1) for k in pids}
        if camera.wait(timeout=30) != 0:
            raise RuntimeError(f"the camera process failed; node log:\n{node.log_tail()}")
        time.sleep(2.0)  # the last frames' clouds and a /diagnostics after the window
        stop.touch()
        for consumer in (reliable, best):
            consumer.wait(timeout=30)
    finally:
        stop.touch()
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        node.stop()
    sent = [s for s in json.loads((case_dir / "camera.json").read_text())["sent"]
            if w0 <= s < w1]
    rel = json.loads((case_dir / "reliable.json").read_text())
    bef = json.loads((case_dir / "best_effort.json").read_text())
    diag = [(int(t), v) for t, v in rel["diagnostics"]]
    # A cloud counted in the window was published about one node latency after its stamp:
    # read the node's counters at the window's edges shifted by the median latency.
    shift = float(np.median([r - s for s, r in rel["clouds"]])) if rel["clouds"] else 0.0

    def delta(key: str) -> float:
        return counter_at(diag, key, w1 + shift) - counter_at(diag, key, w0 + shift)

    published = delta("frames_published")
    rel_window = _in_window(rel["clouds"], w0, w1)
    be_window = _in_window(bef["clouds"], w0, w1)
    # The clouds of the window the node published, exactly: those either consumer received
    # (the /diagnostics counters are 1 Hz snapshots, good to about 1 %).
    delivered = len(rel_window.keys() | be_window.keys())
    return {
        "case": f"{width}x{height} {setup}",
        "width": width,
        "height": height,
        "dds": setup,
        "profile": profile,
        "node_environment_malloc": env.get(malloc_tuning.TUNABLES_ENV),
        "consumers_malloc": plain.get(malloc_tuning.TUNABLES_ENV),
        "rate_hz": args.rate,
        "seconds": args.seconds,
        "camera_qos": args.camera_qos,
        "camera": {"sent": len(sent), "hz": round(len(sent) / args.seconds, 2),
                   "cpu_percent": cpu["camera"]},
        "node": {
            "output_hz": round(published / args.seconds, 2),
            "published": round(published),
            "received": round(delta("frames_received")),
            "dropped": round(delta("frames_dropped")),
            "rejected": round(delta("frames_rejected")),
            "lost_before_node": round(delta("frames_lost_before_node")),
            "cpu_percent": cpu["node"],
            # The node's own split of its stamp-to-publish latency (medians over its last
            # frames, from the last /diagnostics of the run: ros/diagnostics.LATENCY_STAGES).
            "latency_p50_ms": _node_stages(diag),
        },
        "consumers": {
            "reliable": _consumer_figures(rel_window, args.seconds, delivered, len(sent))
            | {"cpu_percent": cpu["reliable"]},
            "best_effort": _consumer_figures(be_window, args.seconds, delivered, len(sent))
            | {"cpu_percent": cpu["best_effort"]},
        },
        "load_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }


def _node_stages(diagnostics: Sequence[tuple[int, dict[str, str]]]) -> dict[str, float]:
    if not diagnostics:
        return {}
    values = diagnostics[-1][1]
    keys = {"total": "latency_p50_ms"} | {
        stage: f"latency_{stage}_p50_ms" for stage in ("arrival", "wait", "network", "publish")
    }
    return {name: float(values[key]) for name, key in keys.items() if key in values}


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Return the cases as the README's markdown table."""
    lines = ["| camera | DDS | node output | reliable consumer | best-effort consumer | "
             "p95 stamp-to-receipt (rel. / b.e.) | node CPU | load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel, be = r["consumers"]["reliable"], r["consumers"]["best_effort"]
        lines.append(
            f"| {r['width']}x{r['height']} @ {r['rate_hz']:g} Hz | {r['dds']} | "
            f"{r['node']['output_hz']:.1f} Hz | {rel['hz']:.1f} Hz "
            f"({rel['fraction_of_node_output']}) | {be['hz']:.1f} Hz "
            f"({be['fraction_of_node_output']}) | {rel['latency_ms']['p95']:.0f} / "
            f"{be['latency_ms']['p95']:.0f} ms | {r['node']['cpu_percent']:.0f} % | "
            f"{r['load_1min']['before']:.2f} |")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--sizes", default="640x480,1280x720", help="comma-separated WxH")
    parser.add_argument("--setups", default=",".join(DEFAULT_SETUPS),
                        help="comma-separated, of: " + ", ".join(SETUPS) + " (module doc)")
    parser.add_argument("--model", default="default", help="the node's model parameter")
    parser.add_argument("--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="another node parameter")
    parser.add_argument("--camera-qos", choices=("reliable", "sensor_data"), default="reliable")
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    # Internal: the child processes.
    parser.add_argument("--role", choices=("camera", "consumer"), help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=640, help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, default=480, help=argparse.SUPPRESS)
    parser.add_argument("--reliability", default="reliable", help=argparse.SUPPRESS)
    parser.add_argument("--diagnostics", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--stop", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "camera":
        return run_camera(args)
    if args.role == "consumer":
        return run_consumer(args)
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if any(s not in SETUPS for s in setups):
        parser.error(f"--setups takes {', '.join(SETUPS)}")
    tmp = Path(tempfile.mkdtemp(prefix="recon3d_e2e_"))
    rows = []
    for size in args.sizes.split(","):
        width, height = _size(size)
        for setup in setups:
            row = run_case(args, width, height, setup, tmp)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
