"""Meshes and surface clouds on disk (binary PLY) and a preview picture of a mesh.

The PLY files are the ones :mod:`recon3d_ros.core.ply` writes (binary little-endian, float
``x y z``, uchar ``red green blue``, int triangle lists), which MeshLab, CloudCompare, Blender
and Open3D open. :func:`render_preview` draws the mesh on the CPU, without a display or OpenGL:
flat-shaded triangles painted far to near (painter's algorithm) from two viewpoints.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.ply import read_ply, write_ply
from recon3d_ros.errors import ReconstructionError
from recon3d_ros.reconstruction.tsdf import Mesh

__all__ = ["read_mesh_ply", "render_preview", "write_mesh_ply", "write_points_ply"]

BACKGROUND = (40, 40, 40)
#: Light that reaches a face seen edge-on: keeps its colour recognisable.
AMBIENT = 0.35


def write_mesh_ply(path: Path | str, mesh: Mesh) -> int:
    """Write ``mesh`` as binary PLY with vertex colours; returns the vertex count."""
    try:
        return write_ply(path, mesh.vertices, mesh.colors, mesh.triangles)
    except OSError as exc:
        raise ReconstructionError(f"cannot write mesh {path}: {exc}") from exc


def read_mesh_ply(path: Path | str) -> Mesh:
    """Read a triangle mesh PLY (colours grey when the file has none)."""
    try:
        data = read_ply(path)
    except OSError as exc:
        raise ReconstructionError(f"cannot read mesh {path}: {exc}") from exc
    n = data.points.shape[0]
    colors = data.colors if data.colors is not None else np.full((n, 3), 128, np.uint8)
    faces = data.faces if data.faces is not None else np.zeros((0, 3), np.int32)
    return Mesh(
        np.ascontiguousarray(data.points, dtype=np.float32),
        np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3),
        np.ascontiguousarray(colors, dtype=np.uint8).reshape(-1, 3),
    )


def write_points_ply(
    path: Path | str, points: npt.NDArray[np.floating], colors: npt.NDArray[np.uint8] | None
) -> int:
    """Write a coloured point cloud as binary PLY; returns the point count."""
    try:
        return write_ply(path, points, colors)
    except OSError as exc:
        raise ReconstructionError(f"cannot write points {path}: {exc}") from exc


def _rotation(axis: npt.NDArray[np.float64], angle: float) -> npt.NDArray[np.float64]:
    a = axis / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.asarray(np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K)


def _view_directions(
    vertices: npt.NDArray[np.float64], normals: npt.NDArray[np.float64]
) -> list[npt.NDArray[np.float64]]:
    """Two viewing directions: from where most faces look, then turned 60 degrees from it."""
    facing = normals.sum(axis=0)
    if np.linalg.norm(facing) < 0.1 * np.linalg.norm(normals, axis=1).sum():
        # A closed object faces every way: look at it obliquely, three sides at once.
        facing = -np.array([1.0, 1.0, 2.0])
    look = -facing / np.linalg.norm(facing)  # view direction: towards the faces' fronts
    centred = vertices - vertices.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 20000)], full_matrices=False)
    turn_axis = vt[1] - (vt[1] @ look) * look
    if np.linalg.norm(turn_axis) < 1e-6:
        turn_axis = np.cross(look, [1.0, 0.0, 0.0])
    return [look, _rotation(turn_axis, math.radians(60)) @ look]


def _draw(
    mesh: Mesh,
    normals: npt.NDArray[np.float64],
    look: npt.NDArray[np.float64],
    width: int,
    height: int,
    down: npt.NDArray[np.float64],
) -> npt.NDArray[np.uint8]:
    import cv2

    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    v = mesh.vertices.astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre, radius = (lo + hi) / 2, max(float(np.linalg.norm(hi - lo)) / 2, 1e-6)
    # Camera basis: z along ``look``, image y as close to the world's ``down`` as it can be.
    z = look / np.linalg.norm(look)
    d = down / np.linalg.norm(down)
    if abs(float(d @ z)) > 0.95:
        d = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
    x = np.cross(d, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    f = 0.5 * min(width, height) / math.tan(math.radians(25))  # 50-degree view of the sphere
    eye = centre - z * (radius / math.sin(math.radians(25)) * 1.05)
    cam = (v - eye) @ R.T
    zc = np.maximum(cam[:, 2], 1e-6)
    uv = np.stack([f * cam[:, 0] / zc + width / 2, f * cam[:, 1] / zc + height / 2], axis=1)
    tris = mesh.triangles
    shade = AMBIENT + (1 - AMBIENT) * np.abs(normals @ z)
    colour = mesh.colors[tris].astype(np.float64).mean(axis=1) * shade[:, None]
    depth = cam[tris, 2].mean(axis=1)
    order = np.argsort(-depth)  # far first, near painted over it
    pts = np.round(uv[tris] * 16).astype(np.int32)  # 4 fractional bits for cv2's shift
    colour_u8 = np.clip(colour, 0, 255).astype(np.uint8)
    for i in order:
        c = colour_u8[i]
        cv2.fillConvexPoly(image, pts[i], (int(c[0]), int(c[1]), int(c[2])), cv2.LINE_8, 4)
    return image


def render_preview(
    mesh: Mesh,
    path: Path | str,
    size: tuple[int, int] = (640, 480),
    down: npt.NDArray[np.floating] | None = None,
) -> Path:
    """Write a PNG of ``mesh`` from two viewpoints side by side (each ``size``, width x height).

    ``down`` is the world direction drawn downwards: default ``+y``, which is right for a map
    whose world is the first camera's optical frame; pass ``-up`` for a z-up or y-up world
    (e.g. the first pose's ``T[:3, 1]``, its camera's image-down axis).
    """
    import cv2

    if mesh.is_empty:
        raise ReconstructionError("the mesh is empty: nothing to preview (was any frame fused?)")
    width, height = int(size[0]), int(size[1])
    v = mesh.vertices.astype(np.float64)
    t = mesh.triangles
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    area2 = np.linalg.norm(n, axis=1, keepdims=True)
    unit = n / np.maximum(area2, 1e-12)
    world_down = np.array([0.0, 1.0, 0.0]) if down is None else np.asarray(down, np.float64)
    if world_down.shape != (3,) or not np.linalg.norm(world_down) > 0:
        raise ReconstructionError(f"down must be a non-zero 3-vector, got {down!r}")
    views = [
        _draw(mesh, unit, look, width, height, world_down) for look in _view_directions(v, n)
    ]
    out = Path(path)
    if not cv2.imwrite(str(out), np.concatenate(views, axis=1)[..., ::-1]):
        raise ReconstructionError(f"cannot write the preview {out} (folder missing or read-only?)")
    return out
