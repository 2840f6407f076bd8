"""Write frames (:class:`~recon3d_ros.reconstruction.sources.Frame`) into a rosbag2 recording.

This turns an RGB-D folder, a video or any source into the topics a camera driver and a robot
would record: ``image`` (rgb8) or ``image/compressed`` (jpeg), ``camera_info``, optionally a
16UC1 depth image, and the poses as ``/tf`` (``map_frame -> body_frame``, one per frame) plus
``/tf_static`` (``body_frame -> camera frame``), so ``recon3d reconstruct`` and ``recon3d bag``
can be tried on users' folders and tests get real bags (mcap or sqlite3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.encodings import depth_m_to_mm16
from recon3d_ros.errors import ConfigError
from recon3d_ros.reconstruction import bag_messages as bm
from recon3d_ros.reconstruction.sources import Frame

__all__ = ["STORAGES", "OPTICAL_IN_BODY", "storage_plugin", "write_frames_bag"]

STORAGES = ("mcap", "sqlite3")
#: ``T_body_optical`` of a camera looking along the body's x axis (REP 103: body x forward,
#: y left, z up; optical z forward, x right, y down).
OPTICAL_IN_BODY: npt.NDArray[np.float64] = np.array(
    [[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def storage_plugin(storage: str) -> Any:
    """Return the ``rosbags`` storage plugin for ``mcap`` or ``sqlite3``."""
    from rosbags.rosbag2 import StoragePlugin

    if storage not in STORAGES:
        raise ConfigError(f"storage must be one of {STORAGES}, got {storage!r}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


def write_frames_bag(
    path: Path,
    frames: Iterable[Frame],
    *,
    storage: str = "mcap",
    namespace: str = "/camera",
    compressed: bool = False,
    depth_topic: str | None = "/camera/aligned_depth/image",
    map_frame: str = "map",
    body_frame: str = "base_link",
    body_to_camera: npt.NDArray[np.float64] = OPTICAL_IN_BODY,
) -> int:
    """Write ``frames`` to a new bag at ``path``; return how many were written.

    Poses (where a frame has one) become ``map_frame -> body_frame`` transforms such that
    ``T_map_camera = T_map_body @ body_to_camera`` is the frame's pose.
    """
    from rosbags.rosbag2 import Writer

    ts = bm.typestore()
    count = 0
    static_sent = False
    with Writer(Path(path), version=9, storage_plugin=storage_plugin(storage)) as writer:
        image_topic = f"{namespace}/image/compressed" if compressed else f"{namespace}/image"
        image_conn = writer.add_connection(
            image_topic, bm.COMPRESSED_IMAGE if compressed else bm.IMAGE, typestore=ts
        )
        info_conn = writer.add_connection(f"{namespace}/camera_info", bm.CAMERA_INFO, typestore=ts)
        depth_conn = (
            writer.add_connection(depth_topic, bm.IMAGE, typestore=ts) if depth_topic else None
        )
        tf_conn = writer.add_connection("/tf", bm.TF_MESSAGE, typestore=ts)
        static_conn = writer.add_connection("/tf_static", bm.TF_MESSAGE, typestore=ts)
        camera_in_body = np.asarray(body_to_camera, dtype=np.float64)

        def put(conn: Any, msg: Any, log_ns: int) -> None:
            writer.write(conn, log_ns, bytes(ts.serialize_cdr(msg, conn.msgtype)))

        for frame in frames:
            stamp = int(frame.stamp_ns)
            hdr = bm.header(stamp, frame.frame_id)
            if frame.pose is not None:
                if not static_sent:
                    put(static_conn, bm.tf_message([bm.transform_msg(
                        body_frame, frame.frame_id, camera_in_body, stamp)]), stamp)
                    static_sent = True
                body = np.asarray(frame.pose) @ np.linalg.inv(camera_in_body)
                put(tf_conn, bm.tf_message([bm.transform_msg(map_frame, body_frame, body, stamp)]),
                    stamp)
            put(info_conn, bm.camera_info_msg(frame.camera, hdr, frame.rectified), stamp)
            if compressed:
                put(image_conn, bm.compressed_image_msg(frame.rgb, hdr), stamp)
            else:
                put(image_conn, bm.image_msg(frame.rgb, "rgb8", hdr), stamp)
            if depth_conn is not None and frame.depth_m is not None:
                put(depth_conn, bm.image_msg(depth_m_to_mm16(frame.depth_m), "16UC1", hdr), stamp)
            count += 1
    return count
