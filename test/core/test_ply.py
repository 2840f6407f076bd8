"""Tests for recon3d_ros.core.ply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.ply import depth_to_mesh, read_ply, write_ply
from recon3d_ros.errors import DatasetError, EncodingError

CAM = PinholeCamera(width=4, height=3, fx=2.0, fy=2.0, cx=1.5, cy=1.0)


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_skips_nan_points_and_remaps_faces(tmp_path: Path, binary: bool) -> None:
    points = np.array(
        [[0, 0, 1], [np.nan, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1.5]], np.float32
    )
    colors = np.array([[255, 0, 0], [1, 2, 3], [0, 255, 0], [0, 0, 255], [9, 8, 7]], np.uint8)
    faces = np.array([[0, 2, 3], [0, 1, 3], [2, 4, 3]], np.int32)  # face 1 uses the NaN point
    path = tmp_path / "cloud.ply"
    n = write_ply(path, points, colors, faces, binary=binary)
    assert n == 4
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert ("binary_little_endian" in header) == binary
    assert "element vertex 4" in header and "element face 2" in header
    data = read_ply(path)
    keep = [0, 2, 3, 4]
    np.testing.assert_array_equal(data.points, points[keep])
    np.testing.assert_array_equal(data.colors, colors[keep])
    # old indices 0, 2, 3, 4 -> new 0, 1, 2, 3
    np.testing.assert_array_equal(data.faces, [[0, 1, 2], [1, 3, 2]])


def test_points_only(tmp_path: Path) -> None:
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    path = tmp_path / "p.ply"
    write_ply(path, pts)
    data = read_ply(path)
    np.testing.assert_array_equal(data.points, pts)
    assert data.colors is None and data.faces is None
    # binary size: header + 12 bytes per vertex
    assert path.stat().st_size == path.read_bytes().index(b"end_header\n") + 11 + 12 * 100


def test_write_validation_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(EncodingError, match="colours"):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), np.zeros((2, 3), np.uint8))
    with pytest.raises(EncodingError, match="face indices"):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), faces=np.array([[0, 1, 3]]))
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply")
    with pytest.raises(DatasetError, match="PLY"):
        read_ply(bad)


def test_mesh_of_flat_plane() -> None:
    depth = np.full((3, 4), 2.0, np.float32)
    rgb = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
    vertices, colors, faces = depth_to_mesh(depth, CAM, rgb)
    assert vertices.shape == (12, 3) and faces.shape == (2 * 2 * 3, 3)
    np.testing.assert_allclose(vertices[5], [(1 - 1.5) * 2 / 2, 0.0, 2.0])
    np.testing.assert_array_equal(colors, rgb.reshape(-1, 3))
    # Every triangle faces the camera: normal has negative z (points back toward the origin).
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (normals[:, 2] < 0).all()
    # Each quad is covered exactly once: total projected area = (W-1)*(H-1) pixels * z^2/f^2.
    area = 0.5 * np.abs(normals[:, 2]).sum()
    assert area == pytest.approx(3 * 2 * (2.0 / 2.0) ** 2)


def test_mesh_drops_triangles_across_edges_and_nan() -> None:
    depth = np.full((3, 4), 1.0, np.float32)
    depth[:, 2:] = 3.0  # a discontinuity between columns 1 and 2
    _, _, faces = depth_to_mesh(depth, CAM, max_edge_ratio=0.1)
    assert faces.shape[0] == 2 * 2 * 2  # only quads in columns 0-1 and 2-3 survive
    depth[1, 0] = np.nan
    vertices, _, faces = depth_to_mesh(depth, CAM, max_edge_ratio=0.1)
    assert vertices.shape[0] == 11
    assert np.isfinite(vertices).all()
    # Pixel (1, 0) is in both triangles of quad (0, 0) and in (a, c, b) of quad (1, 0).
    assert faces.shape[0] == 8 - 3
    assert faces.max() < vertices.shape[0]


def test_mesh_stride() -> None:
    cam = PinholeCamera(5, 5, 2.0, 2.0, 2.0, 2.0)
    vertices, _, faces = depth_to_mesh(np.full((5, 5), 1.0, np.float32), cam, stride=2)
    assert vertices.shape == (9, 3) and faces.shape == (8, 3)
    np.testing.assert_allclose(vertices[2], [(4 - 2.0) / 2.0, (0 - 2.0) / 2.0, 1.0])
