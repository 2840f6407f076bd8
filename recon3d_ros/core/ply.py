"""PLY export of point clouds and depth meshes (viewable in MeshLab, CloudCompare, Open3D).

:func:`write_ply` writes binary little-endian (or ASCII) PLY with float ``x y z``, optional
uchar ``red green blue`` and optional triangle faces (``list uchar int vertex_indices``).
:func:`depth_to_mesh` triangulates an organized depth image without stretching a skin across
depth discontinuities.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.pointcloud import depth_to_points
from recon3d_ros.errors import DatasetError, EncodingError

__all__ = ["PlyData", "write_ply", "read_ply", "depth_to_mesh", "drop_invalid_vertices"]

PathLike = Union[str, "os.PathLike[str]"]

_PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


@dataclass(frozen=True)
class PlyData:
    """Contents of a PLY file: ``N x 3`` float32 points, optional colours and faces."""

    points: npt.NDArray[np.float32]
    colors: npt.NDArray[np.uint8] | None
    faces: npt.NDArray[np.int32] | None


def drop_invalid_vertices(
    points: npt.NDArray[np.floating],
    colors: npt.NDArray[np.uint8] | None = None,
    faces: npt.NDArray[np.integer] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None, npt.NDArray[np.int32] | None]:
    """Remove vertices with a non-finite coordinate, remap faces, drop faces that used them."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    keep = np.asarray(np.isfinite(pts).all(axis=1))
    cols = None if colors is None else np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if cols is not None and cols.shape[0] != pts.shape[0]:
        raise EncodingError(f"{cols.shape[0]} colours for {pts.shape[0]} points")
    new_faces = None
    if faces is not None:
        f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        if f.size and (f.min() < 0 or f.max() >= pts.shape[0]):
            raise EncodingError(
                f"face indices must be in [0, {pts.shape[0]}), got [{f.min()}, {f.max()}]"
            )
        new_index = np.cumsum(keep) - 1
        f = f[keep[f].all(axis=1)] if f.size else f
        new_faces = new_index[f].astype(np.int32)
    if keep.all():
        return pts, cols, new_faces
    return pts[keep], None if cols is None else cols[keep], new_faces


def write_ply(
    path: PathLike,
    points: npt.NDArray[np.floating],
    colors: npt.NDArray[np.uint8] | None = None,
    faces: npt.NDArray[np.integer] | None = None,
    binary: bool = True,
) -> int:
    """Write a PLY file; NaN/inf points are skipped (faces remapped). Returns the vertex count."""
    pts, cols, tris = drop_invalid_vertices(points, colors, faces)
    n = int(pts.shape[0])
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
              "comment written by recon3d_ros", f"element vertex {n}",
              "property float x", "property float y", "property float z"]
    if cols is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    if tris is not None:
        header += [f"element face {tris.shape[0]}", "property list uchar int vertex_indices"]
    header.append("end_header")
    vdtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if cols is not None:
        vdtype += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(n, dtype=vdtype)
    vertices["x"], vertices["y"], vertices["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if cols is not None:
        vertices["red"], vertices["green"], vertices["blue"] = cols[:, 0], cols[:, 1], cols[:, 2]
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            fh.write(vertices.tobytes())
            if tris is not None:
                face_rec = np.empty(tris.shape[0], dtype=[("n", "u1"), ("v", "<i4", (3,))])
                face_rec["n"] = 3
                face_rec["v"] = tris
                fh.write(face_rec.tobytes())
        else:
            _write_ascii(fh, pts, cols, tris)
    return n


def _write_ascii(
    fh: BinaryIO,
    pts: npt.NDArray[Any],
    cols: npt.NDArray[Any] | None,
    tris: npt.NDArray[Any] | None,
) -> None:
    lines = []
    for i in range(pts.shape[0]):
        line = f"{pts[i, 0]:.9g} {pts[i, 1]:.9g} {pts[i, 2]:.9g}"
        if cols is not None:
            line += f" {cols[i, 0]} {cols[i, 1]} {cols[i, 2]}"
        lines.append(line)
    if tris is not None:
        lines += [f"3 {a} {b} {c}" for a, b, c in tris]
    fh.write(("\n".join(lines) + ("\n" if lines else "")).encode("ascii"))


def read_ply(path: PathLike) -> PlyData:
    """Minimal PLY reader (binary little-endian or ASCII; vertex x/y/z[/red/green/blue], faces).

    Raises
    ------
    DatasetError
        not a PLY file or an unsupported layout.

    """
    with open(path, "rb") as fh:
        raw = fh.read()
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise DatasetError(f"{path} is not a PLY file (missing 'ply' magic or end_header)")
    body_start = raw.index(b"\n", end) + 1
    lines = raw[:end].decode("ascii", "replace").splitlines()
    fmt = ""
    elements: list[tuple[str, int, list[tuple[str, str, str | None]]]] = []
    for line in lines[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format":
            fmt = tok[1]
        elif tok[0] == "element":
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property" and elements:
            if tok[1] == "list":  # property list <count type> <item type> name
                elements[-1][2].append((tok[4], _ply_type(tok[3], path), _ply_type(tok[2], path)))
            else:
                elements[-1][2].append((tok[2], _ply_type(tok[1], path), None))
    if fmt not in ("binary_little_endian", "ascii"):
        raise DatasetError(
            f"{path}: PLY format {fmt!r} is not supported (binary_little_endian or ascii)"
        )
    body = raw[body_start:]
    data: dict[str, dict[str, npt.NDArray[Any]]] = {}
    if fmt == "ascii":
        tokens = body.split()
        pos = 0
        for name, count, props in elements:
            cols: dict[str, list[Any]] = {p[0]: [] for p in props}  # values or lists
            for _ in range(count):
                for pname, _ptype, list_count in props:
                    if list_count is not None:
                        k = int(tokens[pos])
                        cols[pname].append([float(t) for t in tokens[pos + 1:pos + 1 + k]])
                        pos += 1 + k
                    else:
                        cols[pname].append(float(tokens[pos]))
                        pos += 1
            data[name] = {k: np.asarray(v) for k, v in cols.items()}
    else:
        offset = 0
        for name, count, props in elements:
            if any(p[2] is not None for p in props):
                pname, item, count_type = props[0]
                if len(props) != 1 or count_type is None:
                    raise DatasetError(f"{path}: element {name!r} mixes lists and scalars")
                # Triangles only: fixed-size records (count byte + 3 indices).
                rec = np.dtype([("n", "<" + count_type), ("v", "<" + item, (3,))])
                arr = np.frombuffer(body, dtype=rec, count=count, offset=offset)
                if count and not (arr["n"] == 3).all():
                    raise DatasetError(f"{path}: only triangle faces are supported")
                data[name] = {pname: arr["v"]}
                offset += rec.itemsize * count
            else:
                rec = np.dtype([(p[0], "<" + p[1]) for p in props])
                arr = np.frombuffer(body, dtype=rec, count=count, offset=offset)
                data[name] = {p[0]: arr[p[0]] for p in props}
                offset += rec.itemsize * count
    vertex = data.get("vertex")
    if vertex is None or not {"x", "y", "z"} <= set(vertex):
        raise DatasetError(f"{path}: no vertex element with x, y, z")
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    colors = None
    if {"red", "green", "blue"} <= set(vertex):
        rgb = [vertex["red"], vertex["green"], vertex["blue"]]
        colors = np.stack(rgb, axis=1).astype(np.uint8)
    faces = None
    if "face" in data:
        (flist,) = data["face"].values()
        faces = np.asarray(flist, dtype=np.int32).reshape(-1, 3)
    return PlyData(points=points, colors=colors, faces=faces)


def _ply_type(name: str, path: PathLike) -> str:
    try:
        return _PLY_TYPES[name]
    except KeyError:
        raise DatasetError(f"{path}: unknown PLY property type {name!r}") from None


def depth_to_mesh(
    depth: npt.NDArray[np.floating],
    camera: PinholeCamera,
    rgb: npt.NDArray[np.uint8] | None = None,
    max_edge_ratio: float = 0.1,
    stride: int = 1,
    min_depth: float = 0.0,
    max_depth: float = math.inf,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None, npt.NDArray[np.int32]]:
    """Triangulate an organized depth image into ``(vertices, colors, faces)``.

    Each 2x2 block of (strided) pixels gives two triangles; a triangle is dropped when a vertex
    is invalid or its depth spread ``(max z - min z) / min z`` exceeds ``max_edge_ratio``, so
    no skin is stretched across depth discontinuities. Triangles are wound counter-clockwise
    as seen from the camera (normals point back at it). Invalid vertices are removed and the
    face indices refer to the compacted vertex list.
    """
    if not max_edge_ratio > 0:
        raise EncodingError(f"max_edge_ratio must be > 0, got {max_edge_ratio}")
    grid = depth_to_points(depth, camera, stride=stride, min_depth=min_depth, max_depth=max_depth)
    rows, cols = grid.shape[:2]
    idx = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    a, b = idx[:-1, :-1], idx[:-1, 1:]  # top-left, top-right
    c, d = idx[1:, :-1], idx[1:, 1:]    # bottom-left, bottom-right
    # (a, c, b) and (b, c, d): counter-clockwise seen from the camera (x right, y down).
    tris = np.concatenate(
        [np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)]
    )
    z = grid[..., 2].reshape(-1)
    tz = z[tris]
    with np.errstate(invalid="ignore"):
        zmin = tz.min(axis=1)
        ok = np.isfinite(tz).all(axis=1) & ((tz.max(axis=1) - zmin) <= max_edge_ratio * zmin)
    colours = None
    if rgb is not None:
        rgb = np.asarray(rgb, dtype=np.uint8)
        if rgb.shape != np.asarray(depth).shape + (3,):
            raise EncodingError(f"rgb must be H x W x 3 matching depth, got {rgb.shape}")
        colours = rgb[::stride, ::stride].reshape(-1, 3)
    vertices, colours, faces = drop_invalid_vertices(grid.reshape(-1, 3), colours, tris[ok])
    return vertices, colours, np.zeros((0, 3), np.int32) if faces is None else faces
