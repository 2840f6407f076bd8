"""RGB-D folder files: depth units and holes, channel order, intrinsics and their resolution."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.rgbd_io import (  # noqa: E402
    camera_for,
    image_files,
    Intrinsics,
    read_depth,
    read_intrinsics,
    read_layout,
    read_rgb,
    read_rgbd_frames,
    write_intrinsics_json,
)
from recon3d_ros.errors import CameraModelError, DatasetError  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd"

# A 4x3 frame: millimetres with two holes (0), and a colour image of known RGB pixels.
DEPTH_MM = np.array([[0, 1000, 1500, 2000], [250, 65535, 0, 3001], [1, 2, 3, 4]], np.uint16)
RGB = np.array(
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]] * 3, dtype=np.uint8
)  # red, green, blue, a mix: any channel swap shows


def _write_folder(root: Path, info: dict, depth_ext: str = "png") -> None:
    (root / "color").mkdir(parents=True)
    (root / "depth").mkdir()
    cv2.imwrite(str(root / "color" / "f0.png"), np.ascontiguousarray(RGB[..., ::-1]))  # BGR
    cv2.imwrite(str(root / "depth" / f"f0.{depth_ext}"), DEPTH_MM)
    layout = {"color": "color/{i}.png", "depth": "depth/{i}." + depth_ext, "frames": ["f0"]}
    (root / "intrinsics.json").write_text(json.dumps({**info, **layout}))


def test_hand_written_folder_reads_metres_holes_and_rgb(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"fx": 5.0, "fy": 6.0, "cx": 1.5, "cy": 1.0, "depth_scale": 1000.0})
    (frame,) = read_rgbd_frames(tmp_path)
    assert frame.name == "f0"
    np.testing.assert_array_equal(frame.rgb, RGB)
    expected = np.array(
        [[np.nan, 1.0, 1.5, 2.0], [0.25, 65.535, np.nan, 3.001], [0.001, 0.002, 0.003, 0.004]]
    )
    np.testing.assert_allclose(frame.depth_m, expected, rtol=1e-6)  # NaN where NaN
    assert frame.depth_m.dtype == np.float32
    cam = frame.camera
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (4, 3, 5.0, 6.0, 1.5, 1.0)


def test_pgm_depth_scale_and_negated_fy(tmp_path: Path) -> None:
    """ICL-NUIM: depth_scale 5000 and fy stored negated (a y-up camera) read as usual."""
    _write_folder(
        tmp_path, {"fx": 5.0, "fy": -6.0, "cx": 1.5, "cy": 1.0, "depth_scale": 5000.0}, "pgm"
    )
    (frame,) = read_rgbd_frames(tmp_path)
    assert frame.depth_m[0, 1] == pytest.approx(0.2)  # 1000 / 5000
    assert frame.depth_m[2, 3] == pytest.approx(0.0008)
    assert frame.camera.fy == 6.0


def test_calibration_made_at_twice_the_resolution_is_rescaled(tmp_path: Path) -> None:
    # Calibrated at 8x6; the files are 4x3. cv2.resize pixel centres: c' = (c + 0.5) / 2 - 0.5.
    info = {"fx": 10.0, "fy": 12.0, "cx": 3.5, "cy": 2.5, "width": 8, "height": 6}
    _write_folder(tmp_path, info)
    (frame,) = read_rgbd_frames(tmp_path)
    cam = frame.camera
    assert (cam.width, cam.height) == (4, 3)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == pytest.approx((5.0, 6.0, 1.5, 1.0))
    # No depth_scale in the file: millimetres.
    assert frame.depth_m[0, 1] == pytest.approx(1.0)


def test_folder_errors_name_the_problem(tmp_path: Path) -> None:
    _write_folder(tmp_path / "a", {"fx": 5.0, "fy": 5.0, "cx": 1.5, "cy": 1.0})
    (tmp_path / "a" / "depth" / "f0.png").unlink()
    with pytest.raises(DatasetError, match="does not exist"):
        read_rgbd_frames(tmp_path / "a")
    _write_folder(tmp_path / "b", {"fx": 5.0, "fy": 5.0, "cx": 1.5, "cy": 1.0})
    cv2.imwrite(str(tmp_path / "b" / "depth" / "f0.png"), np.zeros((6, 8), np.uint16))
    with pytest.raises(DatasetError, match="register depth to colour"):
        read_rgbd_frames(tmp_path / "b")
    _write_folder(tmp_path / "c", {"fx": 5.0, "fy": 5.0, "cx": 1.5, "cy": 1.0, "depth_scale": 0})
    with pytest.raises(DatasetError, match="depth_scale must be > 0"):
        read_layout(tmp_path / "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "intrinsics.json").write_text(json.dumps({"fx": 1, "fy": 1, "cx": 0}))
    with pytest.raises(CameraModelError, match="cy"):
        read_layout(tmp_path / "d")


def test_read_depth_units_of_each_kind(tmp_path: Path) -> None:
    metres = np.array([[1.25, 0.0], [-1.0, np.nan]], np.float32)
    np.save(tmp_path / "m.npy", metres)
    got = read_depth(tmp_path / "m.npy")
    assert got[0, 0] == pytest.approx(1.25)
    assert np.isnan(got[0, 1]) and np.isnan(got[1]).all()  # 0, negative and NaN: no measurement
    assert read_depth(tmp_path / "m.npy", depth_scale=5.0)[0, 0] == pytest.approx(0.25)
    np.save(tmp_path / "mm.npy", np.array([[4000, 0], [1, 65536]], np.int32))
    np.testing.assert_allclose(read_depth(tmp_path / "mm.npy"), [[4.0, np.nan], [0.001, 65.536]])
    cv2.imwrite(str(tmp_path / "eight.png"), np.full((2, 2), 9, np.uint8))
    with pytest.raises(DatasetError, match="8-bit"):
        read_depth(tmp_path / "eight.png")
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(DatasetError, match="one channel"):
        read_depth(tmp_path / "colour.png")
    with pytest.raises(DatasetError, match="does not exist"):
        read_depth(tmp_path / "missing.png")


def test_intrinsics_json_and_camera_guess(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"fx": 500, "fy": 510, "cx": 319.5, "cy": 239.5, "extra": 1}))
    assert read_intrinsics(path) == Intrinsics(500.0, 510.0, 319.5, 239.5)
    path.write_text(json.dumps({"fx": 1.0, "fy": 1.0}))
    with pytest.raises(CameraModelError, match="cx"):
        read_intrinsics(path)
    path.write_text("[1, 2]")
    with pytest.raises(CameraModelError, match="JSON object"):
        read_intrinsics(path)
    # No calibration: a 60 degree field of view, fx = (640 / 2) / tan(30 deg) = 554.256 px.
    guess = camera_for(640, 480)
    assert guess.fx == pytest.approx(320.0 / math.tan(math.radians(30.0)))
    assert (guess.cx, guess.cy) == (319.5, 239.5)
    scaled = camera_for(320, 240, Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480))
    assert (scaled.fx, scaled.fy, scaled.cx, scaled.cy) == pytest.approx(
        (250.0, 255.0, 159.5, 119.5)
    )


def test_written_intrinsics_are_read_back(tmp_path: Path) -> None:
    camera = PinholeCamera(4, 3, 5.0, 6.0, 1.5, 1.0)
    path = write_intrinsics_json(tmp_path, camera, ["f0"], "color/{i}.png", "hand-made")
    stored = json.loads(path.read_text())
    assert stored["depth_scale"] == 1000.0 and stored["depth"] == "depth/{i}.png"
    assert stored["note"] == "hand-made"
    (tmp_path / "color").mkdir()
    (tmp_path / "depth").mkdir()
    cv2.imwrite(str(tmp_path / "color" / "f0.png"), np.ascontiguousarray(RGB[..., ::-1]))
    cv2.imwrite(str(tmp_path / "depth" / "f0.png"), DEPTH_MM)
    (frame,) = read_rgbd_frames(tmp_path)
    assert frame.camera == camera
    assert frame.depth_m[1, 0] == pytest.approx(0.25)


def test_image_files_in_name_order_and_rgb_order(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "c.PNG"):
        cv2.imwrite(str(tmp_path / name), np.zeros((2, 2, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in image_files(tmp_path)] == ["a.jpg", "b.png", "c.PNG"]
    cv2.imwrite(str(tmp_path / "b.png"), np.array([[[0, 0, 200]]], np.uint8))  # red in BGR
    assert read_rgb(tmp_path / "b.png").tolist() == [[[200, 0, 0]]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        image_files(tmp_path / "empty")
    with pytest.raises(DatasetError, match="cannot read image"):
        read_rgb(tmp_path / "notes.txt")


def _read_pgm16(path: Path) -> np.ndarray:
    """Read a binary 16-bit PGM by its format (Netpbm): 'P5 W H MAXVAL', big-endian samples."""
    data = path.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P5" and int(fields[3]) > 255  # 2 bytes a sample
    width, height = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1:], ">u2", count=width * height).reshape(height, width)


def test_real_kinect_frame_is_millimetres() -> None:
    """kinect_room: 16-bit binary PGM in millimetres (the data's README), 0 = no measurement."""
    folder = SHARED / "kinect_room"
    if not (folder / "intrinsics.json").is_file():
        pytest.skip(f"{folder} not present (the shared RGB-D data lives outside the repo)")
    raw = _read_pgm16(folder / "depth" / "1.pgm")
    frames = read_rgbd_frames(folder)
    depth = frames[0].depth_m
    assert frames[0].name == "1" and depth.shape == raw.shape == (480, 640)
    np.testing.assert_array_equal(np.isnan(depth), raw == 0)
    np.testing.assert_allclose(depth[raw > 0], raw[raw > 0] / 1000.0, rtol=1e-6)
    cam = frames[0].camera
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (518.0, 519.0, 325.5, 253.5)
