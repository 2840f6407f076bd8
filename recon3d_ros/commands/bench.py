"""``recon3d bench``: per-stage latency of the node's per-frame path, without a camera.

The frame runs through the node's own :class:`~recon3d_ros.inference.pipeline.FramePipeline`,
built from node parameters (:meth:`NodeSettings.build_pipeline`: the node's defaults, ``-p
name:=value`` like ``ros2 run``, and the model options), so rectification, metric scale, the
edge filter and the depth range are timed exactly as the node runs them.

Stages (medians over ``--iterations`` after ``--warmup``):

* ``decode_ms``: incoming ``sensor_msgs/Image`` to RGB numpy (``ros.conversions.image_to_rgb``);
* ``preprocess_ms``: rectification (``rectify_ms``, with ``--distorted``) plus the engine's
  resize + normalise; ``inference_ms``: the network;
* ``postprocess_ms``: everything between the network and ``publish()``: raw output to metric
  depth (``depth_postprocess_ms``), metric scale (``scale_ms``), edge filter + depth range
  (``filter_ms``), colour on the depth grid (``colour_ms``), the 32FC1 depth message
  (``depth_msg_ms``) and the cloud + its PointCloud2 message (``cloud_ms``); ``memcpy_ms``, a
  plain copy of the cloud's byte count in the same run, is the floor ``cloud_ms`` is judged by;
* ``publish_ms``: a real rclpy publisher's ``publish()`` of the depth image, its camera_info and
  the cloud, to a matched subscriber (own ``ROS_DOMAIN_ID``, LOCALHOST discovery).

``comparisons`` shows why the fast paths matter: a naive cloud (meshgrid + np.stack + tobytes
per frame) against ``core.pointcloud.depth_to_cloud``, and the cost of assigning a numpy array
to a message's ``data`` field (rclpy checks and copies it element by element) against
``bytes`` and ``array.array``.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from recon3d_ros.commands.options import add_model_options, add_node_param_options, node_values
from recon3d_ros.core.memcpy import memcpy_ms

STAGES = ("decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "publish_ms")
DETAIL = (
    "rectify_ms",
    "depth_postprocess_ms",
    "scale_ms",
    "filter_ms",
    "colour_ms",
    "depth_msg_ms",
    "cloud_ms",
)
ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    add_model_options(parser)
    parser.add_argument(
        "--width", type=int, default=640, help="camera image width (default: %(default)s)"
    )
    parser.add_argument(
        "--height", type=int, default=480, help="camera image height (default: %(default)s)"
    )
    parser.add_argument(
        "--encoding", default="rgb8", choices=ENCODINGS, help="incoming image encoding"
    )
    parser.add_argument(
        "--input-width",
        type=int,
        default=0,
        help="network input width, as the node's input_width (default: the model's own)",
    )
    parser.add_argument(
        "--input-height",
        type=int,
        default=0,
        help="network input height, as the node's input_height (default: the model's own)",
    )
    parser.add_argument(
        "--iterations", type=int, default=50, help="timed frames (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed frames first (default: %(default)s)"
    )
    parser.add_argument(
        "--cloud-stride", type=int, default=1, help="cloud decimation, as the node's cloud_stride"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="backend CPU threads, as the node's cpu_threads; 0 keeps the backend's default, as "
        "the node does. On a busy machine 1 can be far faster than an oversubscribed default",
    )
    parser.add_argument(
        "--distorted",
        action="store_true",
        help="give the camera plumb_bob distortion, so rectification is timed too",
    )
    add_node_param_options(parser)
    parser.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="ROS_DOMAIN_ID for the publisher (default: random 1..200)",
    )


def synthetic_pattern(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """Make a deterministic textured RGB image (gradients + noise) for the network to chew on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            xx / max(width - 1, 1),
            yy / max(height - 1, 1),
            0.5 + 0.5 * np.sin(xx / 13.0) * np.cos(yy / 17.0),
        ],
        axis=-1,
    )
    noise = rng.normal(0.0, 0.05, size=base.shape).astype(np.float32)
    return (np.clip(base + noise, 0.0, 1.0) * 255.0).astype(np.uint8)


def _encode(rgb: npt.NDArray[np.uint8], encoding: str) -> npt.NDArray[np.uint8]:
    import cv2

    codes = {
        "bgr8": cv2.COLOR_RGB2BGR,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
        "mono8": cv2.COLOR_RGB2GRAY,
    }
    return rgb if encoding == "rgb8" else cv2.cvtColor(rgb, codes[encoding])


def naive_cloud_bytes(
    depth: npt.NDArray[np.float32],
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    rgb: npt.NDArray[np.uint8],
) -> bytes:
    """Build the cloud the straightforward way: a fresh meshgrid, np.stack and tobytes."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    x = (u - cx) * depth / fx
    y = (v - cy) * depth / fy
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    ).view(np.float32)
    return np.stack([x, y, depth, packed], axis=-1).astype(np.float32).tobytes()


def _time_ms(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def data_assignment_costs(nbytes: int, repeat: int = 3) -> dict[str, float]:
    """Time setting ``PointCloud2.data`` from a numpy array, ``bytes`` and ``array.array``."""
    from sensor_msgs.msg import PointCloud2

    payload = np.random.default_rng(1).integers(0, 255, size=nbytes, dtype=np.uint8)
    as_bytes = payload.tobytes()
    msg = PointCloud2()

    def assign(value: Any) -> Callable[[], None]:
        def run() -> None:
            msg.data = value

        return run

    def from_bytes() -> None:
        out = array.array("B")
        out.frombytes(as_bytes)
        msg.data = out

    return {
        "data_bytes": float(nbytes),
        "data_assign_numpy_ms": _time_ms(assign(payload), repeat),
        "data_assign_bytes_ms": _time_ms(assign(as_bytes), repeat),
        "data_assign_array_ms": _time_ms(from_bytes, repeat),
    }


def _torch_threads() -> int | None:
    """Return torch's CPU thread count after the backend set it (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def node_settings(args: argparse.Namespace) -> Any:
    """Return the depth node's settings this run stands for.

    ``--params-file`` < model options < ``-p`` (:func:`~recon3d_ros.commands.options.node_values`),
    then bench's own ``--threads``/``--cloud-stride``/``--input-*`` where given; unset parameters
    take the node's defaults, so bench times what a node with the same parameters runs.
    """
    from recon3d_ros.ros.params import settings_from_values

    values = node_values(args)
    if args.threads > 0:
        values["cpu_threads"] = args.threads
    if args.cloud_stride != 1:
        values["cloud_stride"] = args.cloud_stride
    for name in ("input_width", "input_height"):
        if getattr(args, name) > 0:
            values[name] = getattr(args, name)
    return settings_from_values(values)


def bench_camera(args: argparse.Namespace) -> Any:
    """Return the synthetic camera: 60 degrees wide, plumb_bob distortion with ``--distorted``."""
    from dataclasses import replace

    from recon3d_ros.core.camera import PinholeCamera

    camera = PinholeCamera.from_fov(args.width, args.height, 60.0, frame_id="camera_optical_frame")
    if args.distorted:
        camera = replace(camera, distortion_model="plumb_bob", d=(-0.12, 0.03, 0.0005, -0.0004, 0))
    return camera


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, time every stage, return the result dict (rclpy must not be up yet)."""
    from recon3d_ros.demo.harness import configure_ros_environment

    domain_id = configure_ros_environment(args.domain_id)
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header

    from recon3d_ros.errors import ConfigError
    from recon3d_ros.ros import conversions, topics
    from recon3d_ros.ros.qos import output_qos

    if args.width < 8 or args.height < 8 or args.iterations < 1 or args.warmup < 0:
        raise ConfigError("need --width/--height >= 8, --iterations >= 1 and --warmup >= 0")
    settings = node_settings(args)
    pipeline = settings.build_pipeline()
    engine = pipeline.engine
    camera = bench_camera(args)
    rgb_in = synthetic_pattern(args.width, args.height)
    header = Header(stamp=conversions.ns_to_stamp(time.time_ns()), frame_id=camera.frame_id)
    image_msg = conversions.array_to_image_msg(
        _encode(rgb_in, args.encoding), args.encoding, header
    )

    rclpy.init()
    try:
        node = rclpy.create_node("recon3d_bench")
        listener = rclpy.create_node("recon3d_bench_listener")
        qos = output_qos()
        pubs = {
            "depth": node.create_publisher(Image, topics.DEPTH_IMAGE, qos),
            "info": node.create_publisher(CameraInfo, topics.DEPTH_CAMERA_INFO, qos),
            "points": node.create_publisher(PointCloud2, topics.POINTS, qos),
        }
        # A matched reader makes publish() serialise and hand data to the transport, as with rviz.
        subs = [
            listener.create_subscription(
                Image, topics.DEPTH_IMAGE, lambda _m: None, qos_profile_sensor_data
            ),
            listener.create_subscription(
                CameraInfo, topics.DEPTH_CAMERA_INFO, lambda _m: None, qos_profile_sensor_data
            ),
            listener.create_subscription(
                PointCloud2, topics.POINTS, lambda _m: None, qos_profile_sensor_data
            ),
        ]
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(
            p.get_subscription_count() == 0 for p in pubs.values()
        ):
            time.sleep(0.02)
        matched = all(p.get_subscription_count() > 0 for p in pubs.values())

        samples: dict[str, list[float]] = {k: [] for k in STAGES + DETAIL}
        for i in range(args.warmup + args.iterations):
            t0 = time.perf_counter()
            rgb = conversions.image_to_rgb(image_msg)
            t1 = time.perf_counter()
            frame = pipeline.process(rgb, camera)
            t2 = time.perf_counter()
            header = Header(
                stamp=conversions.ns_to_stamp(time.time_ns()), frame_id=camera.frame_id
            )
            depth_msg = conversions.depth_to_image_msg(frame.depth, header)
            info_msg = conversions.camera_to_info_msg(frame.camera, header)
            t3 = time.perf_counter()
            cloud = pipeline.cloud(frame)
            cloud_msg = conversions.cloud_to_msg(cloud, header)
            t4 = time.perf_counter()
            pubs["depth"].publish(depth_msg)
            pubs["info"].publish(info_msg)
            pubs["points"].publish(cloud_msg)
            t5 = time.perf_counter()
            if i < args.warmup:
                continue
            ft = frame.timings
            depth_msg_ms = (t3 - t2) * 1e3
            cloud_ms = (t4 - t3) * 1e3
            samples["decode_ms"].append((t1 - t0) * 1e3)
            samples["rectify_ms"].append(ft.rectify_ms)
            samples["preprocess_ms"].append(ft.rectify_ms + ft.preprocess_ms)
            samples["inference_ms"].append(ft.inference_ms)
            samples["depth_postprocess_ms"].append(ft.depth_postprocess_ms)
            samples["scale_ms"].append(ft.scale_ms)
            samples["filter_ms"].append(ft.filter_ms)
            samples["colour_ms"].append(ft.colour_ms)
            samples["depth_msg_ms"].append(depth_msg_ms)
            samples["cloud_ms"].append(cloud_ms)
            samples["postprocess_ms"].append(
                ft.depth_postprocess_ms
                + ft.scale_ms
                + ft.filter_ms
                + ft.colour_ms
                + depth_msg_ms
                + cloud_ms
            )
            samples["publish_ms"].append((t5 - t4) * 1e3)
        depth = frame.depth
        out_camera = frame.camera
        colour = frame.rgb if frame.rgb is not None else rgb

        result: dict[str, Any] = {k: statistics.median(v) for k, v in samples.items()}
        # The floor for filling the cloud message: a plain copy of its byte count, same run.
        result["memcpy_ms"] = memcpy_ms(len(cloud.data))
        result["cloud_vs_memcpy"] = result["cloud_ms"] / max(result["memcpy_ms"], 1e-6)
        total = sum(result[k] for k in STAGES)
        result.update(
            {
                "total_ms": total,
                "fps": 1000.0 / total if total > 0 else float("inf"),
                "width": args.width,
                "height": args.height,
                "encoding": args.encoding,
                "model": str(args.model),
                "backend": engine.backend,
                "device": engine.device,
                "precision": engine.precision,
                "network_input": f"{engine.config.input_width}x{engine.config.input_height}",
                "iterations": args.iterations,
                "cloud_points": int(cloud.width * cloud.height),
                "cloud_bytes": len(cloud.data),
                "subscriber_matched": matched,
                "ros_domain_id": domain_id,
                # Figures from a busy machine mislead: say how busy it was.
                "load_average_1min": os.getloadavg()[0],
                "torch_threads": _torch_threads(),
                "cpu_count": os.cpu_count(),
            }
        )
        fx, fy, cx, cy = out_camera.fx, out_camera.fy, out_camera.cx, out_camera.cy
        comparisons: dict[str, float] = {
            "cloud_core_ms": result["cloud_ms"],
            "cloud_naive_ms": _time_ms(
                lambda: conversions.byte_array(naive_cloud_bytes(depth, fx, fy, cx, cy, colour)),
                min(args.iterations, 10),
            ),
        }
        comparisons.update(data_assignment_costs(len(cloud.data)))
        comparisons["numpy_vs_bytes_ratio"] = comparisons["data_assign_numpy_ms"] / max(
            comparisons["data_assign_bytes_ms"], 1e-6
        )
        result["comparisons"] = comparisons
        for sub in subs:
            listener.destroy_subscription(sub)
        listener.destroy_node()
        node.destroy_node()
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"recon3d bench: {result['width']}x{result['height']} {result['encoding']}, "
        f"model {result['model']} "
        f"({result['backend']} on {result['device']}, {result['precision']}, network input "
        f"{result['network_input']}, {result['torch_threads']} torch threads), "
        f"median of {result['iterations']} frames",
        "",
        f"  {'stage':<34}{'ms':>10}",
    ]
    rows = [
        ("decode (Image -> RGB)", "decode_ms"),
        ("preprocess (rectify, resize, norm.)", "preprocess_ms"),
        ("  rectify", "rectify_ms"),
        ("inference", "inference_ms"),
        ("postprocess (depth, messages)", "postprocess_ms"),
        ("  raw output -> metric depth", "depth_postprocess_ms"),
        ("  metric scale", "scale_ms"),
        ("  edge filter + depth range", "filter_ms"),
        ("  colour on the depth grid", "colour_ms"),
        ("  depth Image message", "depth_msg_ms"),
        ("  cloud + PointCloud2", "cloud_ms"),
        ("  (memcpy of the cloud's bytes)", "memcpy_ms"),
        ("  (cloud / memcpy, x)", "cloud_vs_memcpy"),
        ("publish (depth, info, points)", "publish_ms"),
        ("total", "total_ms"),
    ]
    for label, key in rows:
        lines.append(f"  {label:<34}{result[key]:>10.2f}")
    lines.append(f"  {'throughput (frames/s)':<34}{result['fps']:>10.1f}")
    c = result["comparisons"]
    mb = c["data_bytes"] / 1e6
    lines += [
        "",
        f"  cloud of {result['cloud_points']} points ({mb:.1f} MB):",
        f"    core depth_to_cloud + message  {c['cloud_core_ms']:8.2f} ms",
        f"    naive meshgrid + stack + bytes {c['cloud_naive_ms']:8.2f} ms",
        "  assigning PointCloud2.data:",
        f"    numpy array                    {c['data_assign_numpy_ms']:8.2f} ms",
        f"    bytes                          {c['data_assign_bytes_ms']:8.2f} ms",
        f"    array.array('B')               {c['data_assign_array_ms']:8.2f} ms",
        f"    numpy / bytes                  {c['numpy_vs_bytes_ratio']:8.0f} x",
    ]
    load, cpus = result["load_average_1min"], result["cpu_count"]
    if cpus and load > 0.8 * cpus:
        lines.append(
            f"  note: load average {load:.1f} on {cpus} CPUs while measuring: other processes "
            "competed for the CPU, so these figures are pessimistic"
        )
    if not result["subscriber_matched"]:
        lines.append("  note: no subscriber matched within 5 s; publish_ms is without a reader")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = run_benchmark(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result))
    sys.stdout.flush()
    return 0
