"""RGB-D folder reader: PGM/PNG depth and their scales, zero as missing, KITTI LiDAR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from recon3d_ros.errors import DatasetError  # noqa: E402
from recon3d_ros.evaluation.dataset import load_rgbd_folder, project_lidar  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rgbd"


def _write_folder(root: Path, depth_ext: str, scale: float, fy: float = 50.0) -> np.ndarray:
    (root / "color").mkdir(parents=True)
    (root / "depth").mkdir()
    raw = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 10
    raw[0, 0] = 0
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB order
    cv2.imwrite(str(root / "color" / "a.png"), rgb[..., ::-1])
    cv2.imwrite(str(root / "depth" / f"a.{depth_ext}"), raw)
    info = {
        "fx": 50.0,
        "fy": fy,
        "cx": 7.5,
        "cy": 5.5,
        "width": 16,
        "height": 12,
        "depth_scale": scale,
        "color": "color/{i}.png",
        "depth": "depth/{i}." + depth_ext,
        "frames": ["a"],
    }
    (root / "intrinsics.json").write_text(json.dumps(info))
    return raw


@pytest.mark.parametrize("ext,scale", [("pgm", 1000.0), ("png", 5000.0)])
def test_depth_scale_zero_as_missing_and_rgb_order(tmp_path, ext, scale):
    raw = _write_folder(tmp_path, ext, scale, fy=-50.0)  # ICL-style negated fy
    (frame,) = load_rgbd_folder(tmp_path)
    assert frame.name == "a" and frame.rgb[0, 0, 0] == 200 and frame.rgb[0, 0, 2] == 0
    assert np.isnan(frame.depth_m[0, 0])
    np.testing.assert_allclose(frame.depth_m[1:], raw[1:] / scale, rtol=1e-6)
    assert frame.camera.fy == 50.0 and frame.camera.cx == 7.5


def test_missing_files_and_bad_layouts_raise_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_rgbd_folder(tmp_path / "nope")
    with pytest.raises(DatasetError, match="intrinsics.json"):
        load_rgbd_folder(tmp_path)
    _write_folder(tmp_path / "f", "png", 1000.0)
    (tmp_path / "f" / "depth" / "a.png").unlink()
    with pytest.raises(DatasetError, match="cannot read depth"):
        load_rgbd_folder(tmp_path / "f")


def test_lidar_projection_keeps_the_nearest_point_per_pixel():
    # Identity "LiDAR" = camera frame, K with f = 10, c = (4, 4).
    lidar2img = np.array([[10, 0, 4, 0], [0, 10, 4, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    pts = np.array(
        [[0, 0, 5, 0], [0, 0, 2, 0], [0.4, 0, 2, 0], [0, 0, -3, 0], [100, 0, 1, 0]], np.float32
    )
    depth = project_lidar(pts, lidar2img, 9, 9)
    assert depth[4, 4] == pytest.approx(2.0)  # the nearer of two points on the optical axis
    assert depth[4, 6] == pytest.approx(2.0)  # x = 0.4 at 2 m: u = 4 + 10 * 0.2
    assert np.isfinite(depth).sum() == 2  # behind the camera and outside the image are dropped


def test_kitti_layout(tmp_path):
    lidar2img = np.array([[10, 0, 4, 0], [0, 10, 4, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    cam2img = lidar2img.copy()
    (tmp_path / "0001_calib.json").write_text(
        json.dumps({"lidar2img": lidar2img.tolist(), "cam2img": cam2img.tolist()})
    )
    np.array([[0, 0, 3, 0.5]], np.float32).tofile(tmp_path / "0001.bin")
    cv2.imwrite(str(tmp_path / "0001.png"), np.zeros((9, 9, 3), np.uint8))
    (frame,) = load_rgbd_folder(tmp_path)
    assert frame.name == "0001" and frame.camera.fx == 10.0
    assert frame.depth_m[4, 4] == pytest.approx(3.0) and np.isfinite(frame.depth_m).sum() == 1


@pytest.mark.parametrize(
    "name,count,median",
    [
        ("kinect_room", 5, (2.0, 4.0)),
        ("redwood", 5, (1.0, 3.0)),
        ("icl", 5, (2.0, 4.0)),
        ("kitti", 1, (5.0, 20.0)),
    ],
)
def test_shared_sets(name, count, median):
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(
            f"{folder} not present (the shared RGB-D evaluation data lives outside the repo)"
        )
    frames = load_rgbd_folder(folder)
    assert len(frames) == count
    d = frames[0].depth_m
    assert d.shape == frames[0].rgb.shape[:2]
    assert median[0] < float(np.nanmedian(d)) < median[1]
    if name == "kitti":
        assert 15000 < np.isfinite(d).sum() < 20000  # ~17k LiDAR points land in the image
