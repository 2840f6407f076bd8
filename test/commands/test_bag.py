"""``recon3d bag IN OUT``: the node's depth, camera_info and points added to a real rosbag2."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("rosbags")

from recon3d_ros.cli import main  # noqa: E402
from recon3d_ros.core.pointcloud import cloud_to_points  # noqa: E402
from recon3d_ros.core.rgbd_io import read_rgbd_frames  # noqa: E402
from recon3d_ros.reconstruction import bag_messages as bm  # noqa: E402
from recon3d_ros.reconstruction.bag_writer import write_frames_bag  # noqa: E402
from recon3d_ros.reconstruction.sources import Frame  # noqa: E402

REDWOOD = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd" / "redwood"
T0 = 1_700_000_000_123_000_000
FRAME_ID = "camera_color_optical_frame"


def _frames(count: int = 3) -> list[Frame]:
    if not REDWOOD.is_dir():
        pytest.skip(f"shared RGB-D frames absent: {REDWOOD} (see ../shared/data/rgbd/README.md)")
    out = []
    for i, f in enumerate(read_rgbd_frames(REDWOOD)[:count]):
        rgb = cv2.resize(f.rgb, (320, 240), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(f.depth_m, (320, 240), interpolation=cv2.INTER_NEAREST)
        camera = f.camera.resized(320, 240).with_frame_id(FRAME_ID)
        out.append(Frame(rgb, camera, T0 + i * 66_666_667, depth, np.eye(4), FRAME_ID))
    return out


def _read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    from rosbags.rosbag2 import Reader

    ts = bm.typestore()
    topics: dict[str, list[tuple[int, object]]] = {}
    with Reader(path) as reader:
        for conn in reader.connections:
            topics.setdefault(conn.topic, [])
        for conn, log_ns, raw in reader.messages():
            topics[conn.topic].append((log_ns, ts.deserialize_cdr(raw, conn.msgtype)))
    return topics


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_adds_depth_info_and_points_with_the_image_stamps(
    tmp_path: Path, storage: str, depth_models, capsys: pytest.CaptureFixture[str]
) -> None:
    model = depth_models.constant(2.0)
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    write_frames_bag(bag_in, _frames(), storage=storage)
    rc = main(["bag", str(bag_in), str(bag_out), "--model", str(model), "--device", "cpu",
               "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_written"] == 3 and report["frames_dropped"] == {}
    assert report["storage"] == storage
    assert any(p.suffix == (".mcap" if storage == "mcap" else ".db3") for p in bag_out.iterdir())
    before, after = _read_bag(bag_in), _read_bag(bag_out)
    # Every input topic is copied whole; the node's three outputs are added next to the image.
    for topic, messages in before.items():
        assert len(after[topic]) == len(messages), topic
    added = set(after) - set(before)
    assert added == {"/camera/depth/image", "/camera/depth/camera_info", "/camera/points"}
    images = before["/camera/image"]
    for name in added:
        assert len(after[name]) == len(images)
        for (log_img, img), (log_out, out) in zip(images, after[name]):
            assert log_out == log_img
            assert out.header.frame_id == img.header.frame_id == FRAME_ID
            assert bm.stamp_to_ns(out.header.stamp) == bm.stamp_to_ns(img.header.stamp)
    for _, depth in after["/camera/depth/image"]:
        assert (depth.encoding, depth.width, depth.height, depth.step) == ("32FC1", 320, 240, 1280)
        np.testing.assert_array_equal(bm.depth_image_to_m(depth), 2.0)  # the model's output
    _, info = after["/camera/depth/camera_info"][0]
    np.testing.assert_allclose(info.k, [262.5, 0, 159.5, 0, 262.5, 119.5, 0, 0, 1])
    _, cloud = after["/camera/points"][0]
    assert (cloud.width, cloud.height, cloud.point_step) == (320, 240, 16)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height,
                          bool(cloud.is_bigendian), cloud.row_step)
    # pixel (u=0, v=0) at 2 m: x = (0 - cx) / fx * z, by the camera_info above.
    assert pts["z"][0, 0] == pytest.approx(2.0)
    assert pts["x"][0, 0] == pytest.approx(-159.5 / 262.5 * 2.0, rel=1e-5)


def test_bag_takes_node_parameters_and_reports_dropped_frames(
    tmp_path: Path, depth_models, capsys: pytest.CaptureFixture[str]
) -> None:
    model = depth_models.constant(3.0)
    bag_in, bag_out = tmp_path / "in", tmp_path / "out"
    write_frames_bag(bag_in, _frames(2), storage="mcap", compressed=True, depth_topic=None)
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**/depth_node:\n  ros__parameters:\n    model: " + json.dumps(str(model)) +
        "\n    device: cpu\n    publish_points: false\n    output_scale: 0.25\n"
    )
    rc = main(["bag", str(bag_in), str(bag_out), "--params-file", str(params),
               "-p", "max_depth:=2.5", "--storage", "sqlite3", "--quiet"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["frames_written"] == 2
    after = _read_bag(bag_out)
    assert "/camera/points" in after and after["/camera/points"] == []  # publish_points false
    _, depth = after["/camera/depth/image"][0]
    assert (depth.width, depth.height) == (80, 60)  # output_scale 0.25
    # 3 m from the model is beyond max_depth 2.5 (-p wins over the file): all NaN.
    assert np.isnan(bm.depth_image_to_m(depth)).all()
    _, info = after["/camera/depth/camera_info"][0]
    assert (info.width, info.height) == (80, 60)

    # CameraInfo whose frame id disagrees with the image: dropped as the node drops it.
    bad = [replace(f, camera=f.camera.with_frame_id("other")) for f in _frames(2)]
    bag_bad = tmp_path / "bad"
    _write_mismatched(bag_bad, bad)
    rc = main(["bag", str(bag_bad), str(tmp_path / "bad_out"), "--model", str(model),
               "--device", "cpu", "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_written"] == 0
    assert report["frames_dropped"] == {"camera_info frame_id disagrees with the image": 2}


def _write_mismatched(path: Path, frames: list[Frame]) -> None:
    """Images stamped with FRAME_ID, CameraInfo with the camera's (another) frame id."""
    from rosbags.rosbag2 import Writer

    from recon3d_ros.reconstruction.bag_writer import storage_plugin

    ts = bm.typestore()
    with Writer(path, version=9, storage_plugin=storage_plugin("mcap")) as w:
        img = w.add_connection("/camera/image", bm.IMAGE, typestore=ts)
        info = w.add_connection("/camera/camera_info", bm.CAMERA_INFO, typestore=ts)
        for f in frames:
            w.write(info, f.stamp_ns, bytes(ts.serialize_cdr(
                bm.camera_info_msg(f.camera, bm.header(f.stamp_ns, f.camera.frame_id)),
                bm.CAMERA_INFO)))
            w.write(img, f.stamp_ns, bytes(ts.serialize_cdr(
                bm.image_msg(f.rgb, "rgb8", bm.header(f.stamp_ns, f.frame_id)), bm.IMAGE)))


def test_bag_refuses_an_existing_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag_in = tmp_path / "in"
    write_frames_bag(bag_in, _frames(1), storage="mcap")
    (tmp_path / "out").mkdir()
    assert main(["bag", str(bag_in), str(tmp_path / "out"), "--quiet"]) == 1
    assert "exists" in capsys.readouterr().err


def test_bag_sparse_scale_uses_the_recorded_reference_depth(
    tmp_path: Path, depth_models, capsys: pytest.CaptureFixture[str]
) -> None:
    from rosbags.rosbag2 import Writer

    from recon3d_ros.reconstruction.bag_writer import storage_plugin

    model = depth_models.red_ramp()  # depth = 1 + red / 255 (a relative model's output)
    frames = _frames(2)
    ts = bm.typestore()
    bag_in = tmp_path / "in"
    with Writer(bag_in, version=9, storage_plugin=storage_plugin("mcap")) as w:
        img = w.add_connection("/camera/image", bm.IMAGE, typestore=ts)
        info = w.add_connection("/camera/camera_info", bm.CAMERA_INFO, typestore=ts)
        ref = w.add_connection("/camera/scale/depth", bm.IMAGE, typestore=ts)
        for f in frames:
            hdr = bm.header(f.stamp_ns, FRAME_ID)
            # The metric truth is twice the model's depth: the fit must find that factor.
            truth = 2.0 * (1.0 + f.rgb[..., 0].astype(np.float32) / 255.0)
            for conn, msg in ((info, bm.camera_info_msg(f.camera, hdr)),
                              (ref, bm.depth_image_msg(truth, hdr)),
                              (img, bm.image_msg(f.rgb, "rgb8", hdr))):
                w.write(conn, f.stamp_ns, bytes(ts.serialize_cdr(msg, conn.msgtype)))
    depths = {}
    for mode in ("none", "sparse"):
        out = tmp_path / mode
        assert main(["bag", str(bag_in), str(out), "--model", str(model), "--device", "cpu",
                     "-p", f"scale_mode:={mode}", "-p", "scale_smoothing:=1.0",
                     "-p", "scale_only:=true", "--quiet"]) == 0
        capsys.readouterr()
        depths[mode] = [bm.depth_image_to_m(m) for _, m in _read_bag(out)["/camera/depth/image"]]
    for plain, scaled in zip(depths["none"], depths["sparse"]):
        assert np.nanmedian(scaled / plain) == pytest.approx(2.0, rel=0.03)
