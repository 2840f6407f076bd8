"""Frame sources: rosbag2 (mcap, sqlite3) with TF / odometry poses, video, folders, TUM poses."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("rosbags")

from recon3d_ros.core.rgbd_io import read_rgbd_frames  # noqa: E402
from recon3d_ros.errors import DatasetError  # noqa: E402
from recon3d_ros.reconstruction import bag_messages as bm  # noqa: E402
from recon3d_ros.reconstruction.bag_writer import (  # noqa: E402
    OPTICAL_IN_BODY,
    storage_plugin,
    write_frames_bag,
)
from recon3d_ros.reconstruction.sources import (  # noqa: E402
    BagOptions,
    BagSource,
    CameraInfoIndex,
    Frame,
    ImageFolderSource,
    RgbdFolderSource,
    TumPoses,
    VideoSource,
    open_source,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd"
REDWOOD = SHARED / "redwood"
T0 = 1_700_000_000_000_000_000  # a realistic epoch stamp, ns
PERIOD = 100_000_000  # 10 Hz
FRAME_ID = "camera_color_optical_frame"


def redwood_gt_poses() -> list[np.ndarray]:
    """trajectory.log parsed here (a header line then 4 matrix rows per frame)."""
    rows = [line.split() for line in (REDWOOD / "trajectory.log").read_text().splitlines()]
    rows = [r for r in rows if r]
    return [np.array(rows[i + 1:i + 5], dtype=np.float64) for i in range(0, len(rows), 5)]


def redwood_frames(size: tuple[int, int] = (320, 240)) -> list[Frame]:
    """Redwood's 5 frames at ``size`` (colour area-averaged, depth nearest), GT poses, 10 Hz."""
    if not REDWOOD.is_dir():
        pytest.skip(f"shared RGB-D frames absent: {REDWOOD} (see ../shared/data/rgbd/README.md)")
    frames = []
    for i, (f, pose) in enumerate(zip(read_rgbd_frames(REDWOOD), redwood_gt_poses())):
        w, h = size
        rgb = cv2.resize(f.rgb, (w, h), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(f.depth_m, (w, h), interpolation=cv2.INTER_NEAREST)
        camera = f.camera.resized(w, h).with_frame_id(FRAME_ID)
        frames.append(Frame(rgb, camera, T0 + i * PERIOD, depth, pose, FRAME_ID))
    return frames


# ---------------------------------------------------------------------------------- messages
def test_transform_to_matrix_matches_a_hand_rotation() -> None:
    # 90 degrees about z: x -> y, y -> -x.
    s = math.sqrt(0.5)
    t = SimpleNamespace(x=1.0, y=2.0, z=3.0)
    q = SimpleNamespace(x=0.0, y=0.0, z=s, w=s)
    expected = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(bm.transform_to_matrix(t, q), expected, atol=1e-12)


def test_depth_and_camera_info_messages_round_trip_through_cdr() -> None:
    ts = bm.typestore()
    from recon3d_ros.core.camera import PinholeCamera

    camera = PinholeCamera(4, 3, 5.0, 6.0, 1.5, 1.0, frame_id="cam")
    depth = np.array([[1.0, np.nan, 2.5, 3.0]] * 3, np.float32)
    hdr = bm.header(T0 + 7, "cam")
    msg = ts.deserialize_cdr(ts.serialize_cdr(bm.depth_image_msg(depth, hdr), bm.IMAGE), bm.IMAGE)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("32FC1", 4, 3, 16)
    assert bm.stamp_to_ns(msg.header.stamp) == T0 + 7 and msg.header.frame_id == "cam"
    np.testing.assert_array_equal(bm.depth_image_to_m(msg), depth)
    info = bm.camera_info_msg(camera, hdr)
    info = ts.deserialize_cdr(ts.serialize_cdr(info, bm.CAMERA_INFO), bm.CAMERA_INFO)
    assert list(info.k) == [5.0, 0.0, 1.5, 0.0, 6.0, 1.0, 0.0, 0.0, 1.0]
    back = bm.camera_from_info(info)
    assert (back.width, back.height, back.fx, back.fy, back.cx, back.cy) == (4, 3, 5, 6, 1.5, 1)


# ---------------------------------------------------------------------------------- bags
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_gives_images_depth_cameras_and_tf_poses(tmp_path: Path, storage: str) -> None:
    frames = redwood_frames()
    bag = tmp_path / "bag"
    assert write_frames_bag(bag, frames, storage=storage) == 5
    assert any(p.suffix == (".mcap" if storage == "mcap" else ".db3") for p in bag.iterdir())
    source = BagSource(bag, BagOptions(read_depth=True))
    assert source.has_depth and source.has_poses and len(source) == 5
    assert source.topics.image.topic == "/camera/image"
    assert source.topics.info.topic == "/camera/camera_info"
    got = list(source)
    assert len(got) == 5 and not source.dropped and not source.pose_failures
    for want, have, gt in zip(frames, got, redwood_gt_poses()):
        assert have.stamp_ns == want.stamp_ns and have.frame_id == FRAME_ID
        np.testing.assert_array_equal(have.rgb, want.rgb)
        # 16UC1 millimetres in the bag: within half a millimetre of the original.
        np.testing.assert_allclose(have.depth_m, want.depth_m, atol=5e-4)
        assert np.isnan(have.depth_m).sum() == np.isnan(want.depth_m).sum()
        assert (have.camera.fx, have.camera.cx, have.camera.width) == (262.5, 159.5, 320)
        # map -> base_link (dynamic) then base_link -> optical (static) is the GT camera pose.
        np.testing.assert_allclose(have.pose, gt, atol=1e-9)


def test_bag_tf_interpolates_between_stamps_and_reports_missing(tmp_path: Path) -> None:
    frames = redwood_frames()
    bag = tmp_path / "bag"
    write_frames_bag(bag, frames, storage="mcap")
    source = BagSource(bag, BagOptions(pose_tolerance_s=0.06))
    source._load_small_topics()
    mid = T0 + PERIOD // 2  # halfway between frames 0 and 1
    pose, why = source._pose_at(FRAME_ID, mid)
    gt = redwood_gt_poses()
    assert why == "" and pose is not None
    np.testing.assert_allclose(pose[:3, 3], (gt[0][:3, 3] + gt[1][:3, 3]) / 2, atol=1e-9)
    pose, why = source._pose_at(FRAME_ID, T0 + 10 * PERIOD)  # half a second after the last
    assert pose is None and "no /tf map -> base_link" in why
    wrong = BagSource(bag, BagOptions(map_frame="odom"))
    got = list(wrong)
    assert [f.pose for f in got] == [None] * 5
    assert "not reachable" in got[0].note and sum(wrong.pose_failures.values()) == 5


def _write_odometry_bag(path: Path, frames: list[Frame], msgtype: str) -> None:
    """Write images, camera_info and poses on /odom.

    The poses are Odometry of base_link (with /tf_static to the camera), or PoseStamped of
    the camera itself.
    """
    from rosbags.rosbag2 import Writer

    ts = bm.typestore()
    t = ts.types
    with Writer(path, version=9, storage_plugin=storage_plugin("mcap")) as w:
        img = w.add_connection("/cam/image_raw", bm.IMAGE, typestore=ts)
        info = w.add_connection("/cam/camera_info", bm.CAMERA_INFO, typestore=ts)
        odom = w.add_connection("/odom", msgtype, typestore=ts)
        static = w.add_connection("/tf_static", bm.TF_MESSAGE, typestore=ts)
        w.write(static, T0, bytes(ts.serialize_cdr(bm.tf_message([bm.transform_msg(
            "base_link", FRAME_ID, OPTICAL_IN_BODY, T0)]), bm.TF_MESSAGE)))
        for f in frames:
            hdr = bm.header(f.stamp_ns, FRAME_ID)
            body = f.pose @ np.linalg.inv(OPTICAL_IN_BODY)
            mat = body if msgtype == bm.ODOMETRY else f.pose
            tr = bm.transform_msg("odom", "x", mat, f.stamp_ns).transform
            pose = t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](
                    x=tr.translation.x, y=tr.translation.y, z=tr.translation.z),
                orientation=tr.rotation,
            )
            if msgtype == bm.ODOMETRY:
                msg = t[bm.ODOMETRY](
                    header=bm.header(f.stamp_ns, "odom"), child_frame_id="base_link",
                    pose=t["geometry_msgs/msg/PoseWithCovariance"](
                        pose=pose, covariance=np.zeros(36)),
                    twist=t["geometry_msgs/msg/TwistWithCovariance"](
                        twist=t["geometry_msgs/msg/Twist"](
                            linear=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                            angular=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)),
                        covariance=np.zeros(36)),
                )
            else:
                msg = t[bm.POSE_STAMPED](header=bm.header(f.stamp_ns, "odom"), pose=pose)
            w.write(odom, f.stamp_ns, bytes(ts.serialize_cdr(msg, msgtype)))
            w.write(info, f.stamp_ns, bytes(ts.serialize_cdr(
                bm.camera_info_msg(f.camera, hdr), bm.CAMERA_INFO)))
            w.write(img, f.stamp_ns, bytes(ts.serialize_cdr(
                bm.image_msg(f.rgb, "rgb8", hdr), bm.IMAGE)))


@pytest.mark.parametrize("msgtype", [bm.ODOMETRY, bm.POSE_STAMPED])
def test_bag_poses_from_an_odometry_or_pose_topic(tmp_path: Path, msgtype: str) -> None:
    frames = redwood_frames()[:3]
    bag = tmp_path / "odom_bag"
    _write_odometry_bag(bag, frames, msgtype)
    source = BagSource(bag, BagOptions(pose_topic="/odom"))
    assert source.topics.info.topic == "/cam/camera_info"  # found next to the image
    got = list(source)
    assert len(got) == 3
    for want, have in zip(frames, got):
        np.testing.assert_allclose(have.pose, want.pose, atol=1e-9)


def test_compressed_image_bag_decodes_and_sqlite_file_opens(tmp_path: Path) -> None:
    frames = redwood_frames()[:2]
    bag = tmp_path / "jpeg"
    write_frames_bag(bag, frames, storage="sqlite3", compressed=True, depth_topic=None)
    db3 = next(bag.glob("*.db3"))
    for path in (bag, db3):
        source = open_source(path)
        assert isinstance(source, BagSource)
        assert source.topics.image.topic == "/camera/image/compressed"
        got = list(source)
        assert len(got) == 2 and got[0].depth_m is None
        # JPEG: close to the original, not equal.
        err = np.abs(got[0].rgb.astype(int) - frames[0].rgb.astype(int)).mean()
        assert 0 < err < 6


def test_bag_without_camera_info_for_the_image_is_refused(tmp_path: Path) -> None:
    frames = redwood_frames()[:1]
    bag = tmp_path / "b"
    write_frames_bag(bag, frames, namespace="/a")
    with pytest.raises(DatasetError, match="image"):
        BagSource(bag, BagOptions(image_topic="/b/image"))
    with pytest.raises(DatasetError, match="camera_info"):
        BagSource(bag, BagOptions(camera_info_topic="/b/camera_info"))


def _info(k0: float, frame: str = "cam") -> SimpleNamespace:
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False)
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=frame), width=4, height=3, distortion_model="",
        d=[], k=[k0, 0, 1, 0, k0, 1, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1], p=[0] * 12,
        binning_x=0, binning_y=0, roi=roi,
    )


def test_camera_info_pairing_by_stamp_like_the_node() -> None:
    a, b = _info(5.0), _info(6.0)
    ms = 1_000_000
    index = CameraInfoIndex([(100 * ms, 100 * ms, a), (200 * ms, 200 * ms, b)],
                            tolerance_ns=30 * ms)
    assert index.match(100 * ms, 0) == (a, "")  # exact
    assert index.match(120 * ms, 0) == (a, "")  # nearest within 30 ms
    assert index.match(150 * ms, 0) == (None, "no camera_info with a matching stamp")
    close = CameraInfoIndex([(100 * ms, 0, a), (110 * ms, 0, b)], tolerance_ns=30 * ms)
    assert close.match(105 * ms, 0) == (None, "camera_info changed near this image")
    latched = CameraInfoIndex([(1, 100 * ms, a), (2, 200 * ms, b)], policy="latched")
    assert latched.match(999, 150 * ms) == (a, "")
    assert latched.match(999, 50 * ms) == (None, "no camera_info before the image")
    # One calibration for the whole recording (a driver that latches it): used for every image.
    single = CameraInfoIndex([(1, 1, a)], tolerance_ns=ms, fallback_single=True)
    assert single.match(10 ** 12, 10 ** 12) == (a, "")


# ---------------------------------------------------------------------------------- files
def test_rgbd_folder_has_depth_and_trajectory_poses() -> None:
    if not REDWOOD.is_dir():
        pytest.skip(f"shared RGB-D frames absent: {REDWOOD}")
    source = open_source(REDWOOD)
    assert isinstance(source, RgbdFolderSource) and source.has_poses and source.has_depth
    got = list(source)
    assert len(got) == 5 and source.describe()["pose_file"] == "trajectory.log"
    for have, gt in zip(got, redwood_gt_poses()):
        np.testing.assert_allclose(have.pose, gt, atol=1e-12)
    assert got[0].camera.fx == 525.0 and got[0].depth_m.shape == (480, 640)
    assert 0.5 < float(np.nanmedian(got[0].depth_m)) < 5.0


def test_tum_file_replaces_poses_by_order_for_folders(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    tum = tmp_path / "poses.tum"
    # 2 poses for 3 frames: the third frame has none (and says so).
    tum.write_text("0.0 1 2 3 0 0 0 1\n5.0 4 5 6 0 0 1 0\n")
    source = open_source(tmp_path, tum_poses=tum)
    assert isinstance(source, TumPoses)
    got = list(source)
    np.testing.assert_allclose(got[0].pose[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(got[1].pose[:3, :3], np.diag([-1.0, -1.0, 1.0]), atol=1e-12)
    assert got[2].pose is None and "only 2 poses" in got[2].note


def test_image_folder_uses_a_60_degree_guess_or_intrinsics(tmp_path: Path) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.zeros((240, 320, 3), np.uint8))
    source = open_source(tmp_path, fps=5.0)
    assert isinstance(source, ImageFolderSource) and len(source) == 2
    got = list(source)
    assert got[1].stamp_ns == 200_000_000
    assert got[0].camera.fx == pytest.approx(160 / math.tan(math.radians(30)))
    (tmp_path / "intrinsics.json").write_text(json.dumps({"fx": 300, "fy": 310, "cx": 160,
                                                          "cy": 120}))
    assert next(iter(open_source(tmp_path))).camera.fy == 310


def test_video_frames_and_stamps(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (64, 48))
    assert writer.isOpened()
    for i in range(4):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    source = open_source(path)
    assert isinstance(source, VideoSource)
    got = list(source)
    assert len(got) == 4 and got[0].rgb.shape == (48, 64, 3)
    assert got[3].stamp_ns == pytest.approx(3 / 15 * 1e9, abs=1e3)
    assert abs(int(got[2].rgb.mean()) - 120) <= 3


def test_open_source_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(DatasetError, match="neither a rosbag2"):
        open_source(other)
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(tmp_path / "missing")


def test_bag_frame_without_its_depth_says_so(tmp_path: Path) -> None:
    frames = redwood_frames()[:3]
    frames[1] = Frame(frames[1].rgb, frames[1].camera, frames[1].stamp_ns, None,
                      frames[1].pose, FRAME_ID)  # no depth recorded for the middle frame
    bag = tmp_path / "bag"
    write_frames_bag(bag, frames)
    got = list(BagSource(bag, BagOptions(read_depth=True)))
    assert [f.depth_m is None for f in got] == [False, True, False]
    assert got[1].note == "no depth with a matching stamp"
    assert got[1].pose is not None  # the pose is still there


# ---------------------------------------------------------------------------------- undistort
def test_distorted_bag_frames_are_undistorted_into_p(tmp_path: Path) -> None:
    # Markers placed where OpenCV's distortion model puts 3D points must land, after
    # undistortion, where the pinhole P camera projects the same points (by hand).
    from recon3d_ros.core.camera import PinholeCamera
    from recon3d_ros.reconstruction.sources import undistort_frame

    d = (-0.25, 0.08, 0.001, -0.001, 0.0)
    raw = PinholeCamera(320, 240, 250.0, 250.0, 160.0, 120.0, "plumb_bob", d, FRAME_ID)
    p_cam = PinholeCamera(320, 240, 200.0, 200.0, 158.0, 121.0, frame_id=FRAME_ID)
    points = np.array([[-0.6, -0.4, 2.0], [0.5, 0.35, 1.6], [0.0, 0.0, 1.2], [0.7, -0.3, 2.4]])
    k = np.array([[250.0, 0, 160.0], [0, 250.0, 120.0], [0, 0, 1]])
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, np.array(d))
    rgb = np.full((240, 320, 3), 40, np.uint8)
    depth = np.full((240, 320), 3.0, np.float32)
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]
    for (u, v), xyz, colour in zip(pixels.reshape(-1, 2), points, colours):
        u, v = int(round(u)), int(round(v))
        rgb[v - 3:v + 4, u - 3:u + 4] = colour
        depth[v - 3:v + 4, u - 3:u + 4] = xyz[2]
    frame = Frame(rgb, raw, T0, depth, None, FRAME_ID, rectified=p_cam)
    bag = tmp_path / "bag"
    write_frames_bag(bag, [frame])
    (got,) = list(BagSource(bag, BagOptions(read_depth=True)))
    assert got.camera.is_distorted and got.camera.d == d
    assert got.rectified is not None
    assert (got.rectified.fx, got.rectified.cx, got.rectified.cy) == (200.0, 158.0, 121.0)

    flat = undistort_frame(got)
    assert not flat.camera.is_distorted and flat.rectified is None
    assert (flat.camera.fx, flat.camera.fy, flat.camera.cx, flat.camera.cy) == (
        200.0, 200.0, 158.0, 121.0)
    assert flat.camera.frame_id == FRAME_ID
    for xyz, colour in zip(points, colours):
        u = int(round(200.0 * xyz[0] / xyz[2] + 158.0))
        v = int(round(200.0 * xyz[1] / xyz[2] + 121.0))
        np.testing.assert_array_equal(flat.rgb[v, u], colour)
        assert flat.depth_m is not None
        assert flat.depth_m[v, u] == pytest.approx(xyz[2], abs=5e-4)  # 16UC1 mm in the bag
    # Nearest-neighbour depth: only values that were in the image, no blends at the edges.
    valid = flat.depth_m[flat.depth_m > 0].astype(np.float64)
    allowed = np.array([3.0, *points[:, 2]])
    assert np.abs(valid[:, None] - allowed[None, :]).min(axis=1).max() < 1e-3


def test_a_frame_without_distortion_is_left_as_it_is() -> None:
    from recon3d_ros.reconstruction.sources import undistort_frame

    frame = redwood_frames()[0]
    assert undistort_frame(frame) is frame


def test_tum_file_matches_a_tum_named_folder_by_time(tmp_path: Path) -> None:
    # TUM RGB-D names its images by time; the pose file's rows are at other times, so the
    # pose of each image is interpolated between its neighbours (hand values: halfway).
    names = ["1305031102.100000", "1305031102.200000", "1305031103.900000"]
    for i, name in enumerate(names):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    tum = tmp_path / "poses.tum"
    tum.write_text("1305031102.050000 0 0 0 0 0 0 1\n"
                   "1305031102.150000 2 0 0 0 0 0 1\n"
                   "1305031102.250000 2 4 0 0 0 0 1\n")
    source = open_source(tmp_path, tum_poses=tum, pose_tolerance_s=0.06)
    assert source.has_stamps
    got = list(source)
    assert got[0].stamp_ns == 1305031102_100000000
    np.testing.assert_allclose(got[0].pose[:3, 3], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(got[1].pose[:3, 3], [2, 2, 0], atol=1e-6)
    # 1.65 s after the last pose: none, and it says so (not the third row by order).
    assert got[2].pose is None and "no pose" in got[2].note


def test_integer_file_names_count_frames_not_time(tmp_path: Path) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"), np.zeros((8, 8, 3), np.uint8))
    source = ImageFolderSource(tmp_path, fps=10.0)
    assert not source.has_stamps
    assert [f.stamp_ns for f in source] == [0, 100_000_000]
