"""Frame sources of the demo: images, folders, videos and their intrinsics."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import recon3d_ros.demo.sources as sources_module
from recon3d_ros.demo.sources import folder_frames, image_frames, video_frames
from recon3d_ros.errors import DatasetError


def _write(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[..., 0] = value
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return rgb


def test_sources_do_not_import_the_trajectory() -> None:
    """trajectory.py imports Frame from sources.py; the reverse import would be a cycle."""
    tree = ast.parse(Path(sources_module.__file__).read_text())
    imports = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert imports and not [line for line in imports if "trajectory" in line]


def test_image_frames_repeat_and_downscale(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", 200, size=(80, 60))
    frames = list(image_frames(tmp_path / "a.png", count=3, max_width=40))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.name for f in frames] == ["a_000", "a_001", "a_002"]  # one file per frame
    assert frames[0].rgb.shape == (30, 40, 3) and frames[0].rgb[0, 0, 0] == 200
    assert frames[0].camera.width == 40
    with pytest.raises(DatasetError):
        list(image_frames(tmp_path / "missing.png"))


def test_folder_frames_uses_rgbd_layout(tmp_path: Path) -> None:
    (tmp_path / "rgb").mkdir()
    for name, value in (("002", 30), ("001", 20), ("010", 40)):
        _write(tmp_path / "rgb" / f"{name}.png", value)
    (tmp_path / "rgb" / "notes.txt").write_text("ignored")
    (tmp_path / "intrinsics.json").write_text(
        json.dumps({"fx": 50.0, "fy": 50.0, "cx": 19.5, "cy": 14.5})
    )
    frames = list(folder_frames(tmp_path))
    assert [f.name for f in frames] == ["001", "002", "010"]
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [20, 30, 40]
    assert frames[0].camera.fx == 50.0
    assert len(list(folder_frames(tmp_path, limit=2))) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        list(folder_frames(tmp_path / "empty"))


def test_video_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for value in (0, 100, 200, 250):
        writer.write(np.full((24, 32, 3), value, np.uint8))
    writer.release()
    frames = list(video_frames(path))
    assert len(frames) == 4 and frames[0].rgb.shape == (24, 32, 3)
    assert [abs(int(f.rgb.mean()) - v) <= 6 for f, v in zip(frames, (0, 100, 200, 250))] == [
        True
    ] * 4
    assert len(list(video_frames(path, limit=2))) == 2
    with pytest.raises(DatasetError):
        list(video_frames(tmp_path / "none.avi"))
