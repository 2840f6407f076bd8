"""Frame sources for the offline tools: a rosbag2, a video, an image folder, an RGB-D folder.

Every source yields :class:`Frame` objects (RGB, camera, stamp, and where the source has them,
metric depth and a ``T_world_camera`` pose), so ``recon3d reconstruct`` does not care where the
frames came from. :func:`open_source` picks the kind from the path.

* rosbag2 (mcap or sqlite3, read with ``rosbags``; no ROS install needed): an image or
  compressed image topic, its CameraInfo (paired by stamp, like the node), optionally a
  recorded depth topic, and poses from ``/tf`` + ``/tf_static`` (the chain from ``map_frame``
  to the image's frame id) or from a ``nav_msgs/Odometry`` / ``geometry_msgs/PoseStamped``
  topic. Small topics (CameraInfo, TF, poses) are read in a first pass, so a transform
  recorded after its image still counts; images and depth stream in a second pass.
* video (``cv2.VideoCapture``) and image folder: RGB only, stamps from the frame rate; the
  camera from an ``intrinsics.json`` when given, else a ``hfov_deg`` guess.
* RGB-D folder (``../shared/data/rgbd`` format, :mod:`recon3d_ros.core.rgbd_io`): depth, and
  poses from ``trajectory.log`` (Redwood) or ``pose.txt`` (``tx ty tz qx qy qz qw`` rows).

A pose file in TUM format can replace a source's poses (:class:`TumPoses`): matched by stamp
for a bag, by frame order for the sources whose stamps are only frame numbers.
Frames a source cannot use at all (no CameraInfo, an undecodable image) are counted in
:attr:`FrameSource.dropped` with the reason; frames without a pose are yielded with
``pose=None`` and the reason in :attr:`Frame.note`, and counted in
:attr:`FrameSource.pose_failures`, so the caller reports them rather than guess a pose.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.rgbd_io import (
    DEFAULT_HFOV_DEG,
    INTRINSICS_FILE,
    Intrinsics,
    camera_for,
    image_files,
    read_depth,
    read_intrinsics,
    read_layout,
    read_rgb,
)
from recon3d_ros.errors import CameraModelError, DatasetError, EncodingError

__all__ = [
    "Frame",
    "FrameSource",
    "BagOptions",
    "BagSource",
    "CameraInfoIndex",
    "TfTree",
    "VideoSource",
    "ImageFolderSource",
    "RgbdFolderSource",
    "TumPoses",
    "VIDEO_SUFFIXES",
    "is_bag",
    "open_source",
    "undistort_frame",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
BAG_SUFFIXES = (".mcap", ".db3")
DEFAULT_FRAME_ID = "camera_optical_frame"
_NS = 1_000_000_000
#: Images held back waiting for the depth of their stamp (depth is recorded a few ms apart).
_MAX_PENDING = 32
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """One frame: ``rgb`` H x W x 3 uint8, its camera, stamp, and depth / pose where known."""

    rgb: npt.NDArray[np.uint8]
    camera: PinholeCamera
    stamp_ns: int
    depth_m: npt.NDArray[np.float32] | None = None  # H x W metres, NaN invalid
    pose: Matrix | None = None  # 4x4 T_world_camera
    frame_id: str = DEFAULT_FRAME_ID
    note: str = ""  # why pose (or depth) is missing
    # The camera a distorted ``camera``'s images are undistorted into: CameraInfo ``P`` (as
    # image_proc and the node), None for ``K``. See :func:`undistort_frame`.
    rectified: PinholeCamera | None = None


class FrameSource:
    """Base of the sources: iterate for frames; the flags say what they carry."""

    kind = "source"
    has_depth = False
    has_poses = False
    #: True when stamps are real times (a bag); else they count frames at ``fps``.
    has_stamps = False

    def __init__(self) -> None:
        self.dropped: Counter[str] = Counter()
        self.pose_failures: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        """Return how many frames the source holds (an upper bound for a bag)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Describe the source for the summary."""
        return {"kind": self.kind}


def _stamp_for(index: int, fps: float) -> int:
    return int(round(index * _NS / fps))


# ---------------------------------------------------------------------------------- folders
def _folder_intrinsics(folder: Path, intrinsics: Intrinsics | None) -> Intrinsics | None:
    if intrinsics is not None:
        return intrinsics
    path = folder / INTRINSICS_FILE
    return read_intrinsics(path) if path.is_file() else None


def _name_stamps(files: list[Path]) -> list[int] | None:
    """Stamps (ns) from file names that are decimal seconds, as the TUM RGB-D dataset's.

    Every stem must be a number with a decimal point (``1305031102.175304``), increasing in
    name order; zero-padded integers (``000123``) count frames, not time, and give None.
    """
    stamps = []
    for path in files:
        stem = path.stem
        if "." not in stem:
            return None
        try:
            seconds = float(stem)
        except ValueError:
            return None
        stamps.append(int(round(seconds * _NS)))
    if not stamps or any(b <= a for a, b in zip(stamps, stamps[1:])):
        return None
    return stamps


class ImageFolderSource(FrameSource):
    """The images of a folder in name order (no depth, no poses).

    Names that are times in seconds (TUM's ``rgb/1305031102.175304.png``) are the frames'
    stamps (``has_stamps``), so a TUM pose file is matched to them by time; otherwise frames
    are counted at ``fps``.
    """

    kind = "image folder"

    def __init__(
        self,
        folder: Path,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = DEFAULT_HFOV_DEG,
        fps: float = 10.0,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.files = image_files(self.folder)
        self.intrinsics = _folder_intrinsics(self.folder, intrinsics)
        self.hfov_deg = hfov_deg
        self.fps = fps
        self.stamps = _name_stamps(self.files)
        self.has_stamps = self.stamps is not None

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            rgb = read_rgb(path)
            h, w = rgb.shape[:2]
            camera = camera_for(w, h, self.intrinsics, self.hfov_deg, DEFAULT_FRAME_ID)
            stamp = self.stamps[i] if self.stamps is not None else _stamp_for(i, self.fps)
            yield Frame(rgb, camera, stamp, frame_id=DEFAULT_FRAME_ID)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.folder), "frames": len(self.files)}


class VideoSource(FrameSource):
    """The frames of a video file, stamped by its frame rate (no depth, no poses)."""

    kind = "video"

    def __init__(
        self,
        path: Path,
        intrinsics: Intrinsics | None = None,
        hfov_deg: float = DEFAULT_HFOV_DEG,
    ) -> None:
        super().__init__()
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"video {self.path} does not exist")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise DatasetError(
                f"OpenCV cannot open the video {self.path}: not a video, or a codec this "
                "OpenCV build lacks; convert it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
            )
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 30.0
        self.count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        capture.release()
        self.intrinsics = intrinsics
        self.hfov_deg = hfov_deg

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                rgb = np.ascontiguousarray(bgr[..., ::-1], dtype=np.uint8)
                h, w = rgb.shape[:2]
                camera = camera_for(w, h, self.intrinsics, self.hfov_deg, DEFAULT_FRAME_ID)
                yield Frame(rgb, camera, _stamp_for(index, self.fps), frame_id=DEFAULT_FRAME_ID)
                index += 1
        finally:
            capture.release()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "fps": self.fps, "frames": self.count}


def _read_folder_poses(folder: Path, count: int) -> tuple[list[Matrix] | None, str]:
    """Poses of an RGB-D folder (``trajectory.log``, else ``pose.txt``), one per frame."""
    from recon3d_ros.reconstruction.poses import read_pose_txt, read_trajectory_log

    for name, reader in (("trajectory.log", read_trajectory_log), ("pose.txt", read_pose_txt)):
        path = folder / name
        if path.is_file():
            poses = list(reader(path))
            if len(poses) < count:
                raise DatasetError(
                    f"{path} holds {len(poses)} poses but {folder} has {count} frames; give "
                    "one pose per frame (or --poses estimate)"
                )
            return poses[:count], name
    return None, ""


class RgbdFolderSource(FrameSource):
    """An ``intrinsics.json`` RGB-D folder: colour, recorded depth and, if present, poses."""

    kind = "rgbd folder"
    has_depth = True

    def __init__(self, folder: Path, fps: float = 10.0, y_up_poses: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.layout = read_layout(self.folder)
        self.fps = fps
        self.poses, self.pose_file = _read_folder_poses(self.folder, len(self.layout.frames))
        if self.poses is not None and y_up_poses:
            # Poses of a y-up camera (ICL-NUIM's programs): T @ F (F flips y) puts the optical
            # frame's y down like the image rows (../shared/data/rgbd/README.md) but is a
            # reflection; mirroring the world too, F @ T @ F, is a rotation with the same
            # relative motion, so the map is the scene's mirror image in a y-flipped world.
            flip = np.diag([1.0, -1.0, 1.0, 1.0])
            self.poses = [flip @ np.asarray(p) @ flip for p in self.poses]
        self.y_up_poses = y_up_poses
        self.has_poses = self.poses is not None

    def __len__(self) -> int:
        return len(self.layout.frames)

    def __iter__(self) -> Iterator[Frame]:
        layout = self.layout
        for i, fid in enumerate(layout.frames):
            rgb = read_rgb(self.folder / layout.color.format(i=fid))
            depth = read_depth(self.folder / layout.depth.format(i=fid), layout.depth_scale)
            h, w = rgb.shape[:2]
            if depth.shape != (h, w):
                self.dropped["depth size differs from colour"] += 1
                continue
            camera = layout.intrinsics.camera(w, h, frame_id=DEFAULT_FRAME_ID)
            pose = None if self.poses is None else np.asarray(self.poses[i], dtype=np.float64)
            yield Frame(rgb, camera, _stamp_for(i, self.fps), depth, pose, DEFAULT_FRAME_ID)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.folder),
            "frames": len(self.layout.frames),
            "pose_file": self.pose_file or None,
            "y_up_poses": self.y_up_poses,
        }


# ---------------------------------------------------------------------------------- TUM
class TumPoses(FrameSource):
    """Another source's frames with the poses of a TUM file (``stamp tx ty tz qx qy qz qw``).

    For a bag, and a folder whose file names are times (TUM's layout), the pose is looked up at
    the frame's stamp (interpolated, within ``tolerance_s``); other folders and videos have no
    real stamps, so their i-th frame takes the file's i-th pose.
    """

    has_poses = True

    def __init__(self, inner: FrameSource, path: Path, tolerance_s: float = 0.05) -> None:
        super().__init__()
        from recon3d_ros.reconstruction.poses import PoseBuffer, read_tum

        self.inner = inner
        self.kind = inner.kind
        self.has_depth = inner.has_depth
        self.has_stamps = inner.has_stamps
        self.dropped = inner.dropped
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"pose file {self.path} does not exist")
        self.stamped = read_tum(self.path)
        if not self.stamped:
            raise DatasetError(
                f"pose file {self.path} holds no poses (TUM rows: t tx ty tz qx qy qz qw)"
            )
        self.buffer = PoseBuffer(tolerance_s)
        for stamp_s, pose in self.stamped:
            self.buffer.add(int(round(stamp_s * _NS)), pose)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[Frame]:
        for i, frame in enumerate(self.inner):
            if self.has_stamps:
                pose = self.buffer.lookup(frame.stamp_ns)
                why = f"no pose in {self.path.name} near t={frame.stamp_ns / _NS:.3f}"
            else:
                pose = self.stamped[i][1] if i < len(self.stamped) else None
                why = f"{self.path.name} has only {len(self.stamped)} poses"
            if pose is None:
                self.pose_failures["no pose in the TUM file"] += 1
            yield replace(frame, pose=pose, note="" if pose is not None else why)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "pose_file": str(self.path)}


# ---------------------------------------------------------------------------------- bags
def is_bag(path: Path) -> bool:
    """Return True for a rosbag2 directory (``metadata.yaml``) or an ``.mcap``/``.db3`` file."""
    p = Path(path)
    if p.is_dir():
        return (p / "metadata.yaml").is_file()
    return p.is_file() and p.suffix.lower() in BAG_SUFFIXES


@dataclass(frozen=True)
class BagOptions:
    """Which topics of a bag to read and how to match them; ``""`` = find it in the bag."""

    image_topic: str = ""
    camera_info_topic: str = ""
    depth_topic: str = ""
    read_depth: bool = False
    pose_topic: str = ""  # nav_msgs/Odometry or geometry_msgs/PoseStamped; "" = /tf
    map_frame: str = "map"
    use_tf: bool = True
    pose_tolerance_s: float = 0.05
    camera_info_tolerance_s: float = 0.05
    camera_info_policy: str = "stamped"  # or "latched"; "stamped" falls back to a sole calibration
    depth_tolerance_s: float = 0.02


def image_namespace(topic: str, msgtype: str) -> str:
    """Return the namespace a camera's topics share.

    ``/cam/image_raw`` and ``/cam/image/compressed`` both give ``/cam``.
    """
    from recon3d_ros.reconstruction.bag_messages import COMPRESSED_IMAGE

    base = topic.rstrip("/")
    if msgtype == COMPRESSED_IMAGE and base.endswith("/compressed"):
        base = base[: -len("/compressed")]
    return base.rsplit("/", 1)[0] if "/" in base.lstrip("/") else ""


class CameraInfoIndex:
    """Every CameraInfo of a recording, to pair images by stamp like the node's pairer.

    ``stamped``: the CameraInfo with the image's stamp, else the nearest within the tolerance
    while the calibration is not changing around the image. ``latched``: the newest recorded
    before the image. ``fallback_single``: a recording whose CameraInfo messages all hold one
    calibration (a camera that latches it once) uses it for every image.
    """

    def __init__(
        self, infos: Sequence[tuple[int, int, Any]], policy: str = "stamped",
        tolerance_ns: int = 50_000_000, fallback_single: bool = False,
    ) -> None:
        from recon3d_ros.ros.sync import calibration_of

        # (stamp, log time, message) by stamp
        self.infos = sorted(infos, key=lambda item: (item[0], item[1]))
        self.by_log = sorted(infos, key=lambda item: item[1])
        self.stamps = np.array([s for s, _, _ in self.infos], dtype=np.int64)
        self.keys = [calibration_of(m) for _, _, m in self.infos]
        self.policy = policy
        self.tolerance_ns = int(tolerance_ns)
        self.single = self.infos[0][2] if fallback_single and len(set(self.keys)) == 1 else None

    def __len__(self) -> int:
        return len(self.infos)

    def match(self, stamp_ns: int, log_ns: int) -> tuple[Any | None, str]:
        """Return ``(CameraInfo, "")`` or ``(None, why not)``."""
        if not self.infos:
            return None, "no camera_info"
        i = int(np.searchsorted(self.stamps, stamp_ns))
        if i < len(self.stamps) and self.stamps[i] == stamp_ns:
            return self.infos[i][2], ""
        if self.single is not None:
            return self.single, ""
        if self.policy == "latched":
            before = [m for _, t, m in self.by_log if t <= log_ns]
            return (before[-1], "") if before else (None, "no camera_info before the image")
        lo = int(np.searchsorted(self.stamps, stamp_ns - self.tolerance_ns))
        hi = int(np.searchsorted(self.stamps, stamp_ns + self.tolerance_ns, side="right"))
        if lo >= hi:
            return None, "no camera_info with a matching stamp"
        if len({self.keys[j] for j in range(lo, hi)}) > 1:
            return None, "camera_info changed near this image"
        best = min(range(lo, hi), key=lambda j: abs(int(self.stamps[j]) - stamp_ns))
        return self.infos[best][2], ""


class TfTree:
    """``/tf`` and ``/tf_static`` of a recording: ``T_parent_child`` per edge, over time."""

    def __init__(self, tolerance_s: float = 0.05) -> None:
        self.tolerance_s = tolerance_s
        self.static: dict[str, tuple[str, Matrix]] = {}
        self.dynamic: dict[str, tuple[str, Any]] = {}  # child -> (parent, PoseBuffer)

    def add(self, msg: Any, static: bool) -> None:
        """Add every transform of a ``tf2_msgs/TFMessage``."""
        from recon3d_ros.reconstruction.bag_messages import stamp_to_ns, transform_to_matrix
        from recon3d_ros.reconstruction.poses import PoseBuffer

        for t in msg.transforms:
            parent = t.header.frame_id.lstrip("/")
            child = t.child_frame_id.lstrip("/")
            matrix = transform_to_matrix(t.transform.translation, t.transform.rotation)
            if static:
                self.static[child] = (parent, matrix)
                continue
            entry = self.dynamic.get(child)
            if entry is None or entry[0] != parent:
                entry = (parent, PoseBuffer(self.tolerance_s))
                self.dynamic[child] = entry
            entry[1].add(stamp_to_ns(t.header.stamp), matrix)

    @property
    def frames(self) -> set[str]:
        edges = list(self.static.items()) + list(self.dynamic.items())
        return {child for child, _ in edges} | {parent for _, (parent, _) in edges}

    def lookup(self, target: str, source: str, stamp_ns: int) -> tuple[Matrix | None, str]:
        """``T_target_source`` at ``stamp_ns`` (``source`` must be below ``target``)."""
        target, frame = target.lstrip("/"), source.lstrip("/")
        out = np.eye(4)
        for _ in range(64):
            if frame == target:
                return out, ""
            if frame in self.static:
                parent, matrix = self.static[frame]
            elif frame in self.dynamic:
                parent, buffer = self.dynamic[frame]
                matrix = buffer.lookup(stamp_ns)
                if matrix is None:
                    return None, (
                        f"no /tf {parent} -> {frame} within {self.tolerance_s} s of "
                        f"t={stamp_ns / _NS:.3f}"
                    )
            else:
                known = ", ".join(sorted(self.frames)) or "none"
                return None, (
                    f"'{target}' is not reachable from '{source}' in /tf (stops at '{frame}'; "
                    f"frames: {known}); set --map-frame or record the transforms"
                )
            out = np.asarray(matrix, dtype=np.float64) @ out
            frame = parent
        return None, f"/tf has a loop above '{source}'"


@dataclass
class _BagTopics:
    image: Any
    info: Any
    depth: Any | None
    pose: Any | None
    tf: list[Any] = field(default_factory=list)


class BagSource(FrameSource):
    """Frames of a rosbag2 recording (see the module docstring)."""

    kind = "rosbag2"
    has_stamps = True

    def __init__(self, path: Path, options: BagOptions | None = None) -> None:
        super().__init__()
        from recon3d_ros.reconstruction.bag_messages import typestore

        self.path = Path(path)
        self.options = options or BagOptions()
        self.typestore = typestore()
        try:
            from rosbags.rosbag2 import Reader
        except ImportError as exc:  # typestore() raised already if rosbags is missing
            raise DatasetError(f"cannot import rosbags: {exc}") from exc
        self._reader_class = Reader
        with self._open() as reader:
            self.connections = list(reader.connections)
        self.topics = self._choose_topics()
        self.has_depth = self.topics.depth is not None
        self.has_poses = self.topics.pose is not None or bool(self.topics.tf)
        self._camera_infos: CameraInfoIndex | None = None
        self._tf: TfTree | None = None
        self._poses: Any = None  # PoseBuffer of the pose topic

    # ------------------------------------------------------------------ topics
    def _open(self) -> Any:
        try:
            return self._reader_class(self.path)
        except Exception as exc:  # rosbags raises several types for unreadable bags
            raise DatasetError(f"cannot open the rosbag2 {self.path}: {exc}") from exc

    def _of_type(self, *msgtypes: str) -> list[Any]:
        return [c for c in self.connections if c.msgtype in msgtypes]

    def _named(self, topic: str, what: str, *msgtypes: str) -> Any:
        found = [c for c in self._of_type(*msgtypes) if c.topic == topic]
        if not found:
            have = sorted({f"{c.topic} ({c.msgtype})" for c in self.connections})
            raise DatasetError(
                f"{self.path} has no {what} topic '{topic}' of type {' or '.join(msgtypes)}; "
                f"topics: {', '.join(have)}"
            )
        return found[0]

    def _choose_topics(self) -> _BagTopics:
        from recon3d_ros.reconstruction import bag_messages as bm

        o = self.options
        listing = ", ".join(sorted({f"{c.topic} ({c.msgtype})" for c in self.connections}))
        if o.image_topic:
            image = self._named(o.image_topic, "image", bm.IMAGE, bm.COMPRESSED_IMAGE)
        else:
            cands = [
                c for c in self._of_type(bm.IMAGE, bm.COMPRESSED_IMAGE)
                if "depth" not in c.topic.lower()
            ]
            raw = [c for c in cands if c.msgtype == bm.IMAGE]
            # A camera often records image_raw and image_raw/compressed: take the raw one.
            pick = raw if len(raw) == 1 else cands
            if len(pick) != 1:
                raise DatasetError(
                    f"{self.path}: cannot tell which topic is the camera image "
                    f"({len(cands)} candidates); give --image-topic (topics: {listing})"
                )
            image = pick[0]
        ns = image_namespace(image.topic, image.msgtype)
        if o.camera_info_topic:
            info = self._named(o.camera_info_topic, "camera_info", bm.CAMERA_INFO)
        else:
            infos = self._of_type(bm.CAMERA_INFO)
            same_ns = [c for c in infos if c.topic == f"{ns}/camera_info"]
            not_depth = [c for c in infos if "depth" not in c.topic.lower()]
            pick = same_ns or (not_depth if len(not_depth) == 1 else [])
            if not pick:
                raise DatasetError(
                    f"{self.path}: no CameraInfo for '{image.topic}' (looked for "
                    f"'{ns}/camera_info'); give --camera-info-topic (topics: {listing})"
                )
            info = pick[0]
        depth = None
        if o.depth_topic:
            depth = self._named(o.depth_topic, "depth", bm.IMAGE)
        elif o.read_depth:
            cands = [
                c for c in self._of_type(bm.IMAGE)
                if "depth" in c.topic.lower() and c.topic != image.topic
            ]
            if len(cands) != 1:
                raise DatasetError(
                    f"{self.path}: cannot tell which topic is the recorded depth "
                    f"({len(cands)} candidates); give --depth-topic (topics: {listing})"
                )
            depth = cands[0]
        pose = None
        if o.pose_topic:
            pose = self._named(o.pose_topic, "pose", bm.ODOMETRY, bm.POSE_STAMPED)
        tf = (
            [c for c in self._of_type(bm.TF_MESSAGE) if c.topic in ("/tf", "/tf_static")]
            if o.use_tf else []
        )
        return _BagTopics(image, info, depth, pose, tf)

    # ------------------------------------------------------------------ first pass
    def _load_small_topics(self) -> None:
        from recon3d_ros.reconstruction.bag_messages import pose_to_matrix, stamp_to_ns
        from recon3d_ros.reconstruction.poses import PoseBuffer

        o = self.options
        topics = self.topics
        wanted = [topics.info, *topics.tf] + ([topics.pose] if topics.pose is not None else [])
        infos: list[tuple[int, int, Any]] = []
        tf = TfTree(o.pose_tolerance_s)
        poses = PoseBuffer(o.pose_tolerance_s)
        self._pose_child = ""
        with self._open() as reader:
            for conn, log_ns, raw in reader.messages(connections=wanted):
                msg = self.typestore.deserialize_cdr(raw, conn.msgtype)
                if conn.topic == topics.info.topic:
                    infos.append((stamp_to_ns(msg.header.stamp), log_ns, msg))
                elif topics.pose is not None and conn.topic == topics.pose.topic:
                    pose_msg = msg.pose.pose if hasattr(msg, "child_frame_id") else msg.pose
                    self._pose_child = getattr(msg, "child_frame_id", "")
                    poses.add(stamp_to_ns(msg.header.stamp), pose_to_matrix(pose_msg))
                else:
                    tf.add(msg, static=conn.topic == "/tf_static")
        self._camera_infos = CameraInfoIndex(
            infos, o.camera_info_policy, int(o.camera_info_tolerance_s * _NS),
            fallback_single=True,
        )
        self._tf = tf
        self._poses = poses if topics.pose is not None else None

    def _pose_at(self, frame_id: str, stamp_ns: int) -> tuple[Matrix | None, str]:
        if self._tf is None:
            self._load_small_topics()
        assert self._tf is not None  # set by _load_small_topics
        if self._poses is not None:
            pose = self._poses.lookup(stamp_ns)
            if pose is None:
                topic = self.topics.pose.topic if self.topics.pose is not None else "?"
                return None, f"no pose on {topic} near t={stamp_ns / _NS:.3f}"
            child = self._pose_child.lstrip("/")
            if child and child != frame_id.lstrip("/"):
                # Odometry gives the body's pose; the camera sits on it by a (static) transform.
                extrinsic, why = self._tf.lookup(child, frame_id, stamp_ns)
                if extrinsic is None:
                    return None, f"no transform {child} -> {frame_id}: {why}"
                pose = pose @ extrinsic
            return pose, ""
        if not self.topics.tf:
            return None, "the bag has no /tf and no pose topic"
        return self._tf.lookup(self.options.map_frame, frame_id, stamp_ns)

    # ------------------------------------------------------------------ second pass
    def __len__(self) -> int:
        return int(self.topics.image.msgcount)

    def camera_info_for(self, stamp_ns: int, log_ns: int) -> tuple[Any | None, str]:
        """Return the CameraInfo paired with an image (loads the small topics on first use)."""
        if self._camera_infos is None:
            self._load_small_topics()
        assert self._camera_infos is not None
        return self._camera_infos.match(stamp_ns, log_ns)

    def __iter__(self) -> Iterator[Frame]:
        from recon3d_ros.reconstruction import bag_messages as bm

        if self._camera_infos is None:
            self._load_small_topics()
        topics = self.topics
        wanted = [topics.image] + ([topics.depth] if topics.depth is not None else [])
        tolerance = int(self.options.depth_tolerance_s * _NS)
        depths: deque[tuple[int, Any]] = deque(maxlen=64)
        pending: deque[tuple[int, int, Any]] = deque()

        def ready(stamp: int) -> bool:
            newest = depths[-1][0] if depths else None
            return topics.depth is None or (newest is not None and newest >= stamp + tolerance)

        with self._open() as reader:
            for conn, log_ns, raw in reader.messages(connections=wanted):
                msg = self.typestore.deserialize_cdr(raw, conn.msgtype)
                stamp = bm.stamp_to_ns(msg.header.stamp)
                if topics.depth is not None and conn.topic == topics.depth.topic:
                    depths.append((stamp, msg))
                else:
                    pending.append((stamp, log_ns, msg))
                # A depth stream that stops must not hold every later image in memory.
                while pending and (ready(pending[0][0]) or len(pending) > _MAX_PENDING):
                    frame = self._frame(*pending.popleft(), depths, tolerance)
                    if frame is not None:
                        yield frame
        while pending:
            frame = self._frame(*pending.popleft(), depths, tolerance)
            if frame is not None:
                yield frame

    def _frame(
        self, stamp: int, log_ns: int, msg: Any, depths: deque[tuple[int, Any]], tolerance: int
    ) -> Frame | None:
        from recon3d_ros.reconstruction import bag_messages as bm

        info, why = self.camera_info_for(stamp, log_ns)
        if info is None:
            self.dropped[why] += 1
            return None
        try:
            if self.topics.image.msgtype == bm.COMPRESSED_IMAGE:
                rgb = bm.compressed_to_rgb(msg)
            else:
                rgb = bm.image_to_rgb(msg)
            camera = bm.camera_from_info(info)
            rectified = bm.rectified_camera_from_info(info)
        except (EncodingError, CameraModelError) as exc:
            self.dropped[f"bad image or camera_info: {type(exc).__name__}"] += 1
            return None
        h, w = rgb.shape[:2]
        if (camera.width, camera.height) != (w, h):
            self.dropped["camera_info size disagrees with the image"] += 1
            return None
        frame_id = msg.header.frame_id or info.header.frame_id
        depth = None
        notes = []
        if self.topics.depth is not None:
            near = [(abs(s - stamp), m) for s, m in depths if abs(s - stamp) <= tolerance]
            if near:
                depth_msg = min(near, key=lambda item: item[0])[1]
                try:
                    depth = bm.depth_image_to_m(depth_msg)
                except EncodingError as exc:
                    notes.append(f"bad depth: {exc}")
                if depth is not None and depth.shape != (h, w):
                    notes.append(f"depth is {depth.shape[1]}x{depth.shape[0]}, image {w}x{h}")
                    depth = None
            else:
                notes.append("no depth with a matching stamp")
        pose = None
        if self.has_poses:
            pose, why = self._pose_at(frame_id, stamp)
            if pose is None:
                self.pose_failures[why.split(" within")[0].split(" near")[0]] += 1
                notes.append(why)
        camera = camera.with_frame_id(frame_id)
        if rectified is not None:
            rectified = rectified.with_frame_id(frame_id)
        return Frame(rgb, camera, stamp, depth, pose, frame_id, "; ".join(notes), rectified)

    def describe(self) -> dict[str, Any]:
        t = self.topics
        return {
            "kind": self.kind,
            "path": str(self.path),
            "image_topic": t.image.topic,
            "camera_info_topic": t.info.topic,
            "depth_topic": t.depth.topic if t.depth is not None else None,
            "pose_topic": t.pose.topic if t.pose is not None else None,
            "tf": [c.topic for c in t.tf],
            "map_frame": self.options.map_frame,
        }


# ---------------------------------------------------------------------------------- undistort
def undistort_frame(frame: Frame) -> Frame:
    """Return ``frame`` with its images undistorted into ``frame.rectified`` (else ``K``).

    A frame of a distorted camera (a bag's CameraInfo with non-zero ``d``) becomes a pinhole
    frame, as the node's images do before inference: the colour bilinearly, recorded depth
    nearest-neighbour (no depth blended across edges; pixels that map outside the source
    become 0, i.e. invalid for fusion). Its depth, recorded or from the network, then fits the
    pinhole camera that fusion projects with. A frame without distortion is returned as it is.
    Raises :class:`CameraModelError` when the calibration cannot be rectified.
    """
    import cv2

    from recon3d_ros.core.rectify import rectifier_for

    rectifier = rectifier_for(frame.camera, frame.rectified)  # None: not distorted
    if rectifier is None:
        return frame
    depth = None
    if frame.depth_m is not None:
        depth = np.asarray(rectifier.rectify(frame.depth_m, cv2.INTER_NEAREST), np.float32)
    return replace(
        frame,
        rgb=np.asarray(rectifier.rectify(frame.rgb), np.uint8),
        camera=rectifier.camera.with_frame_id(frame.camera.frame_id),
        depth_m=depth,
        rectified=None,
    )


# ---------------------------------------------------------------------------------- choose
def open_source(
    path: str | Path,
    *,
    bag: BagOptions | None = None,
    intrinsics: str | Path | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    fps: float = 10.0,
    tum_poses: str | Path | None = None,
    pose_tolerance_s: float = 0.05,
    y_up_poses: bool = False,
) -> FrameSource:
    """Open ``path`` as a bag, an RGB-D folder, an image folder or a video (in that order)."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p} does not exist; give a rosbag2, a video, or a folder")
    calibration = read_intrinsics(intrinsics) if intrinsics else None
    source: FrameSource
    if is_bag(p):
        source = BagSource(p, bag)
    elif p.is_dir() and (p / INTRINSICS_FILE).is_file() and _is_rgbd_layout(p):
        source = RgbdFolderSource(p, fps, y_up_poses)
    elif p.is_dir():
        source = ImageFolderSource(p, calibration, hfov_deg, fps)
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        source = VideoSource(p, calibration, hfov_deg)
    else:
        raise DatasetError(
            f"{p} is neither a rosbag2 (folder with metadata.yaml, .mcap, .db3), a folder, "
            f"nor a video ({', '.join(VIDEO_SUFFIXES)})"
        )
    if tum_poses:
        source = TumPoses(source, Path(tum_poses), pose_tolerance_s)
    return source


def _is_rgbd_layout(folder: Path) -> bool:
    """Whether ``intrinsics.json`` names colour and depth patterns (not just a calibration)."""
    import json

    try:
        data = json.loads((folder / INTRINSICS_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in ("color", "depth", "frames"))
