"""``recon3d bag IN OUT``: the depth node's pipeline run offline over a rosbag2 recording.

The output bag holds every topic of the input plus what the node would have published for the
camera image: ``depth/image`` (32FC1 metres), ``depth/camera_info`` and ``points`` (organized
PointCloud2), under the image topic's namespace (``/camera/image_raw`` gives
``/camera/depth/image``; ``--namespace`` moves them), each with the image's header (same stamp
and frame id, as the node publishes) and written at the image's record time.

With ``scale_mode: sparse`` the node's ``scale/points`` (PointCloud2) and ``scale/depth``
(metric depth image) under the same namespace are read from the bag too: the newest of each,
recorded before an image, serves that one image, as in the node.

The parameters are the node's: :func:`~recon3d_ros.ros.params.settings_from_values` of a
``--params-file`` (the node's YAML), the model options and ``-p name:=value``, then
:meth:`NodeSettings.build_pipeline`, so the same file gives the same depth as a live node.
Images are paired with CameraInfo by stamp (``camera_info_policy``, ``camera_info_tolerance``
as in the node); frames the node would drop are counted and reported with the reason.
Reading and writing use ``rosbags`` (mcap or sqlite3), so no ROS install is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from recon3d_ros.commands.options import add_model_options, add_node_param_options, node_values
from recon3d_ros.errors import ConfigError, DatasetError, Recon3dError

STORAGE_CHOICES = ("same", "mcap", "sqlite3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="rosbag2 folder (metadata.yaml) or .mcap/.db3")
    parser.add_argument("output", type=Path, help="new rosbag2 folder to write (must not exist)")
    parser.add_argument(
        "--image-topic", default="", help="camera image or compressed image topic "
        "(default: the bag's one image topic without 'depth' in its name)"
    )
    parser.add_argument(
        "--camera-info-topic", default="",
        help="its CameraInfo (default: camera_info next to the image topic)",
    )
    parser.add_argument(
        "--namespace", default=None,
        help="namespace of the added topics (default: the image topic's, e.g. /camera)",
    )
    add_node_param_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--storage", default="same", choices=STORAGE_CHOICES,
        help="storage of the output bag (default: the input's)",
    )
    parser.add_argument(
        "--max-frames", type=int, default=0, help="stop after this many images (0 = all)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress counter on stderr")


def output_topics(namespace: str) -> dict[str, str]:
    """Return the node's output topic names under ``namespace`` (``""`` = the root)."""
    from recon3d_ros.ros import topics

    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return {
        "depth": f"{ns}/{topics.DEPTH_IMAGE}",
        "info": f"{ns}/{topics.DEPTH_CAMERA_INFO}",
        "points": f"{ns}/{topics.POINTS}",
    }


class _Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.done = total, quiet, 0

    def step(self, text: str) -> None:
        self.done += 1
        if not self.quiet:
            print(f"\r{self.done}/{self.total} {text}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.quiet and self.done:
            print(file=sys.stderr)


def convert(args: argparse.Namespace) -> dict[str, Any]:
    """Run the conversion; return the report (frames written, dropped with reasons, ms)."""
    from rosbags.rosbag2 import Reader, Writer

    from recon3d_ros.reconstruction import bag_messages as bm
    from recon3d_ros.reconstruction.bag_writer import storage_plugin
    from recon3d_ros.reconstruction.sources import BagOptions, BagSource, image_namespace
    from recon3d_ros.ros.params import settings_from_values

    if args.output.exists():
        raise ConfigError(f"{args.output} exists; give a new folder for the output bag")
    settings = settings_from_values(node_values(args))
    source = BagSource(args.input, BagOptions(
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        use_tf=False,
        camera_info_policy=settings.camera_info_policy,
        camera_info_tolerance_s=settings.camera_info_tolerance,
    ))
    image_conn = source.topics.image
    namespace = (
        args.namespace if args.namespace is not None
        else image_namespace(image_conn.topic, image_conn.msgtype)
    )
    names = output_topics(namespace)
    clash = [n for n in names.values() if n in {c.topic for c in source.connections}]
    if clash:
        raise DatasetError(
            f"{args.input} already has {clash}; give --namespace for the new topics"
        )
    storage = args.storage
    if storage == "same":
        files = [args.input] if args.input.is_file() else list(args.input.iterdir())
        storage = "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"
    pipeline = settings.build_pipeline()
    ts = bm.typestore()
    dropped: Counter[str] = Counter()
    written = 0
    ms: dict[str, float] = {"decode": 0.0, "pipeline": 0.0, "messages": 0.0}
    limit = args.max_frames if args.max_frames > 0 else None
    progress = _Progress(min(len(source), limit or len(source)), args.quiet)
    with Reader(args.input) as reader, Writer(
        args.output, version=9, storage_plugin=storage_plugin(storage)
    ) as writer:
        out_conns: dict[int, Any] = {}
        for conn in reader.connections:
            out_conns[conn.id] = writer.add_connection(
                conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest,
                serialization_format=getattr(conn.ext, "serialization_format", "cdr"),
                offered_qos_profiles=getattr(conn.ext, "offered_qos_profiles", []),
            )
        depth_conn = writer.add_connection(names["depth"], bm.IMAGE, typestore=ts)
        info_conn = writer.add_connection(names["info"], bm.CAMERA_INFO, typestore=ts)
        points_conn = writer.add_connection(names["points"], bm.POINT_CLOUD2, typestore=ts)

        def put(conn: Any, msg: Any, log_ns: int) -> None:
            writer.write(conn, log_ns, bytes(ts.serialize_cdr(msg, conn.msgtype)))

        from recon3d_ros.ros import topics as node_topics

        prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
        reference_topics = {f"{prefix}/{node_topics.SCALE_POINTS}": "points",
                            f"{prefix}/{node_topics.SCALE_DEPTH}": "depth"}
        references: dict[str, Any] = {}
        sparse = settings.scale_mode == "sparse"
        images = 0
        for conn, log_ns, raw in reader.messages():
            writer.write(out_conns[conn.id], log_ns, raw)
            if sparse and conn.topic in reference_topics:
                kind = reference_topics[conn.topic]
                try:
                    references[kind] = _read_reference(ts.deserialize_cdr(raw, conn.msgtype), kind)
                except Recon3dError as exc:
                    dropped[f"bad reference on {conn.topic}: {type(exc).__name__}"] += 1
                continue
            if conn.topic != image_conn.topic or (limit is not None and images >= limit):
                continue
            images += 1
            start = time.perf_counter()
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            reference = _take_reference(references)
            result, why = _run_frame(source, pipeline, settings, msg, log_ns, reference)
            if result is None:
                dropped[why] += 1
                progress.step(f"written {written} dropped {sum(dropped.values())}")
                continue
            frame_ms, result = result
            ms["pipeline"] += frame_ms
            ms["decode"] += (time.perf_counter() - start) * 1e3 - frame_ms
            start = time.perf_counter()
            hdr = msg.header  # the node publishes with the image's header
            if settings.publish_depth:
                put(depth_conn, bm.depth_image_msg(result.depth, hdr), log_ns)
            if settings.publish_camera_info:
                put(info_conn, bm.camera_info_msg(result.camera, hdr), log_ns)
            if settings.publish_points:
                put(points_conn, bm.cloud_msg(pipeline.cloud(result), hdr), log_ns)
            ms["messages"] += (time.perf_counter() - start) * 1e3
            written += 1
            progress.step(f"written {written} dropped {sum(dropped.values())}")
    progress.close()
    return {
        "input": str(args.input),
        "output": str(args.output),
        "storage": storage,
        "image_topic": image_conn.topic,
        "camera_info_topic": source.topics.info.topic,
        "topics": names,
        "frames_written": written,
        "frames_dropped": dict(dropped),
        "ms_per_frame": {k: round(v / max(written, 1), 2) for k, v in ms.items()},
    }


def _read_reference(msg: Any, kind: str) -> Any:
    """Metric reference of the node's sparse scale mode: N x 3 points or a depth image."""
    from recon3d_ros.reconstruction import bag_messages as bm

    return bm.cloud_msg_to_xyz(msg) if kind == "points" else bm.depth_image_to_m(msg)


def _take_reference(references: dict[str, Any]) -> Any:
    """Take the newest references (each serves one image, as in the node); None without."""
    if not references:
        return None
    from recon3d_ros.inference.pipeline import ScaleReference

    reference = ScaleReference(points=references.pop("points", None),
                               depth=references.pop("depth", None))
    return reference


def _run_frame(
    source: Any, pipeline: Any, settings: Any, msg: Any, log_ns: int, reference: Any = None
) -> tuple[tuple[float, Any] | None, str]:
    """Decode, pair and run one image as the node does; ``(None, why)`` when it would drop it."""
    from recon3d_ros.core.encodings import check_pixel_count
    from recon3d_ros.errors import CameraModelError, EncodingError
    from recon3d_ros.reconstruction import bag_messages as bm

    stamp = bm.stamp_to_ns(msg.header.stamp)
    info, why = source.camera_info_for(stamp, log_ns)
    if info is None:
        return None, why
    try:
        if source.topics.image.msgtype == bm.COMPRESSED_IMAGE:
            rgb = bm.compressed_to_rgb(msg, settings.max_input_pixels)
        else:
            check_pixel_count(msg.width, msg.height, settings.max_input_pixels)
            rgb = bm.image_to_rgb(msg)
    except EncodingError as exc:
        return None, f"bad image: {exc}"
    try:
        camera = bm.camera_from_info(info)
    except CameraModelError as exc:
        return None, f"bad camera_info: {exc}"
    height, width = rgb.shape[:2]
    if (camera.width, camera.height) != (width, height):
        return None, "camera_info size disagrees with the image"
    if info.header.frame_id != msg.header.frame_id:
        return None, "camera_info frame_id disagrees with the image"
    rectified = bm.rectified_camera_from_info(info)
    start = time.perf_counter()
    try:
        result = pipeline.process(rgb, camera, reference, rectified)
    except CameraModelError as exc:
        return None, f"cannot rectify: {exc}"
    return ((time.perf_counter() - start) * 1e3, result), ""


def run(args: argparse.Namespace) -> int:
    report = convert(args)
    print(json.dumps(report, indent=1))
    return 0
