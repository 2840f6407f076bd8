"""Mesh and point PLY files (read back by Open3D too) and the mesh preview picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from recon3d_ros.errors import ReconstructionError  # noqa: E402
from recon3d_ros.reconstruction.mesh_io import (  # noqa: E402
    read_mesh_ply,
    render_preview,
    write_mesh_ply,
    write_points_ply,
)
from recon3d_ros.reconstruction.tsdf import Mesh  # noqa: E402


def _cube() -> Mesh:
    """Build a unit cube: 8 vertices, 12 outward-facing triangles, one colour per vertex."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    colors = (np.arange(24).reshape(8, 3) * 10).astype(np.uint8)
    return Mesh(v, np.array(tris, np.int32), colors)


def test_mesh_ply_round_trip(tmp_path: Path) -> None:
    mesh = _cube()
    path = tmp_path / "cube.ply"
    assert write_mesh_ply(path, mesh) == 8
    assert b"binary_little_endian" in path.read_bytes()[:200]
    back = read_mesh_ply(path)
    np.testing.assert_array_equal(back.vertices, mesh.vertices)
    np.testing.assert_array_equal(back.triangles, mesh.triangles)
    np.testing.assert_array_equal(back.colors, mesh.colors)


def test_open3d_reads_the_mesh(tmp_path: Path) -> None:
    o3d = pytest.importorskip("open3d")
    mesh = _cube()
    write_mesh_ply(tmp_path / "cube.ply", mesh)
    theirs = o3d.io.read_triangle_mesh(str(tmp_path / "cube.ply"))
    np.testing.assert_allclose(np.asarray(theirs.vertices), mesh.vertices)
    np.testing.assert_array_equal(np.asarray(theirs.triangles), mesh.triangles)
    np.testing.assert_allclose(np.asarray(theirs.vertex_colors) * 255, mesh.colors, atol=0.5)


def test_points_ply(tmp_path: Path) -> None:
    o3d = pytest.importorskip("open3d")
    pts = np.array([[0, 0, 1], [1, 2, 3], [np.nan, 0, 0]], np.float32)
    cols = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    assert write_points_ply(tmp_path / "p.ply", pts, cols) == 2  # the NaN point is dropped
    cloud = o3d.io.read_point_cloud(str(tmp_path / "p.ply"))
    np.testing.assert_allclose(np.asarray(cloud.points), pts[:2])
    np.testing.assert_allclose(np.asarray(cloud.colors), cols[:2] / 255.0)


def test_preview_shows_the_mesh_twice(tmp_path: Path) -> None:
    mesh = _cube()
    mesh.colors[:] = (200, 30, 30)  # red: shading keeps red the strongest channel
    path = render_preview(mesh, tmp_path / "preview.png", size=(160, 120))
    image = cv2.imread(str(path))[..., ::-1]
    assert image.shape == (120, 320, 3)
    for half in (image[:, :160], image[:, 160:]):
        painted = (np.abs(half.astype(int) - 40).sum(axis=2) > 0)  # not the background
        assert 0.05 < painted.mean() < 0.9  # the cube fills part of each view
        red = half[painted]
        assert (red[:, 0] > red[:, 1]).all() and (red[:, 0] > red[:, 2]).all()
        # Flat shading: faces at different angles get different brightness.
        assert len(np.unique(red[:, 0])) >= 2


def test_preview_of_an_empty_mesh_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReconstructionError, match="empty"):
        render_preview(Mesh(), tmp_path / "x.png")
