"""Analytic ray casting against the primitives a synthetic scene is made of.

World frame: y up, metres. Rays are ``origin + t * direction`` with ``direction`` the camera's
unnormalised optical ray ``R @ ((u - cx) / fx, (v - cy) / fy, 1)``, so the hit parameter ``t`` is
exactly the z-depth of the hit in the camera's optical frame: no conversion, no rounding.
Every primitive returns, per ray, ``t`` (``inf`` on a miss) and an outward unit normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "Material",
    "Plane",
    "Box",
    "RoomShell",
    "Sphere",
    "Cylinder",
    "Primitive",
    "Hits",
    "cast_rays",
    "yaw_matrix",
]

F = npt.NDArray[np.float64]
EPS = 1e-6


@dataclass(frozen=True)
class Material:
    """Procedural surface appearance (see :mod:`recon3d_ros.synth.textures`)."""

    color: tuple[float, float, float] = (0.7, 0.7, 0.7)  # linear RGB albedo 0..1
    color2: tuple[float, float, float] = (0.4, 0.4, 0.4)
    pattern: str = "plain"
    scale: float = 1.0  # pattern period in metres
    roughness: float = 0.5  # amplitude of the noise modulation
    emissive: float = 0.0  # windows, lamps: adds light regardless of shading
    seed: int = 0


@dataclass(frozen=True)
class Plane:
    """Infinite plane ``dot(normal, p) = offset`` (a ground plane, a single wall)."""

    normal: tuple[float, float, float]
    offset: float
    material: Material = field(default_factory=Material)

    def intersect(self, o: F, d: F) -> tuple[F, F]:
        n = np.asarray(self.normal, dtype=np.float64)
        n = n / np.linalg.norm(n)
        denom = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.offset - o @ n) / denom
        t = np.where((np.abs(denom) > 1e-12) & (t > EPS), t, np.inf)
        # Face the normal towards the camera so both sides shade.
        normals = np.where((denom > 0)[:, None], -n, n)
        return t, normals


def yaw_matrix(yaw: float) -> F:
    """Rotation about world +y by ``yaw`` radians."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _sphere_candidates(o: F, d: F, center: F, radius: float) -> npt.NDArray[np.intp]:
    """Return the rays that can hit a sphere (a conservative pre-test for other shapes)."""
    a = np.einsum("ij,ij->i", d, d)
    if (
        o.shape[0] > 0 and o.strides[0] == 0
    ):  # one shared origin (primary rays): a mat-vec instead of row dots
        oc0 = o[0] - center
        b = d @ oc0
        c = float(oc0 @ oc0) - radius * radius
    else:
        oc = o - center
        b = np.einsum("ij,ij->i", oc, d)
        c = np.einsum("ij,ij->i", oc, oc) - radius * radius
    disc = b * b - a * c
    # Hit when the discriminant is non-negative and the far root lies ahead of the origin.
    return np.nonzero((disc >= 0) & ((c <= 0) | (b < 0)))[0]


def _slabs(o: F, d: F, lo: F, hi: F) -> tuple[F, F, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Slab test: entry/exit ``t`` of rays against an axis-aligned box and the axes they cross."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (lo - o) * inv
        t2 = (hi - o) * inv
    # A ray parallel to a slab and outside it never enters: NaN from 0*inf must count as a miss.
    tmin = np.where(np.isnan(t1) | np.isnan(t2), -np.inf, np.minimum(t1, t2))
    tmax = np.where(np.isnan(t1) | np.isnan(t2), np.inf, np.maximum(t1, t2))
    parallel_outside = (d == 0) & ((o < lo) | (o > hi))
    tmin = np.where(parallel_outside, np.inf, tmin)
    enter_axis = np.argmax(tmin, axis=1)
    exit_axis = np.argmin(tmax, axis=1)
    rows = np.arange(o.shape[0])
    return tmin[rows, enter_axis], tmax[rows, exit_axis], enter_axis, exit_axis


@dataclass(frozen=True)
class Box:
    """A solid box: centre, half sizes and a rotation about the vertical axis."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float = 0.0
    material: Material = field(default_factory=Material)

    def _local(self, o: F, d: F) -> tuple[F, F, F]:
        rot = yaw_matrix(self.yaw)
        c = np.asarray(self.center, dtype=np.float64)
        return (o - c) @ rot, d @ rot, rot  # row vectors: x @ R == R^T x

    def intersect(self, o: F, d: F) -> tuple[F, F]:
        n = o.shape[0]
        t = np.full(n, np.inf)
        normals = np.zeros((n, 3))
        # Cull with the bounding sphere first: most boxes cover a small part of the image.
        cand = _sphere_candidates(
            o, d, np.asarray(self.center, dtype=np.float64), float(np.linalg.norm(self.half))
        )
        if cand.size == 0:
            return t, normals
        lo_, d_, rot = self._local(o[cand], d[cand])
        h = np.asarray(self.half, dtype=np.float64)
        t_in, t_out, axis, _ = _slabs(lo_, d_, -h, h)
        hit = (t_in <= t_out) & (t_in > EPS)
        t[cand] = np.where(hit, t_in, np.inf)
        n_local = np.zeros_like(d_)
        rows = np.arange(d_.shape[0])
        n_local[rows, axis] = -np.sign(d_[rows, axis])
        normals[cand] = n_local @ rot.T
        return t, normals

    def contains(self, p: F, margin: float = 0.0) -> bool:
        rot = yaw_matrix(self.yaw)
        q = (np.asarray(p, dtype=np.float64) - np.asarray(self.center)) @ rot
        return bool(np.all(np.abs(q) <= np.asarray(self.half) + margin))


@dataclass(frozen=True)
class RoomShell:
    """The inside of an axis-aligned room: floor, ceiling and four walls, seen from within.

    ``materials``: floor, ceiling, walls (x-, x+, z-, z+).
    """

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    materials: tuple[Material, ...] = ()

    def intersect(self, o: F, d: F) -> tuple[F, F]:
        lo = np.asarray(self.lo, dtype=np.float64)
        hi = np.asarray(self.hi, dtype=np.float64)
        _, t_out, _, axis = _slabs(o, d, lo, hi)
        t = np.where(t_out > EPS, t_out, np.inf)
        normals = np.zeros_like(d)
        rows = np.arange(d.shape[0])
        normals[rows, axis] = -np.sign(d[rows, axis])  # inward
        return t, normals

    def face_index(self, normals: F) -> npt.NDArray[np.intp]:
        """0 floor, 1 ceiling, 2..5 walls, from the inward normals of hits."""
        ny, nx, nz = normals[:, 1], normals[:, 0], normals[:, 2]
        face = np.full(normals.shape[0], 2, dtype=np.intp)
        face[ny > 0.5] = 0
        face[ny < -0.5] = 1
        face[nx < -0.5] = 3
        face[nz > 0.5] = 4
        face[nz < -0.5] = 5
        return face


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    material: Material = field(default_factory=Material)

    def intersect(self, o: F, d: F) -> tuple[F, F]:
        c = np.asarray(self.center, dtype=np.float64)
        oc = o - c
        a = np.einsum("ij,ij->i", d, d)
        b = np.einsum("ij,ij->i", oc, d)
        cc = np.einsum("ij,ij->i", oc, oc) - self.radius**2
        disc = b * b - a * cc
        sq = np.sqrt(np.maximum(disc, 0.0))
        t = (-b - sq) / a
        t = np.where((disc >= 0) & (t > EPS), t, np.inf)
        p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
        return t, (p - c) / self.radius


@dataclass(frozen=True)
class Cylinder:
    """A vertical solid cylinder from ``y0`` to ``y1`` (side plus both caps)."""

    center_xz: tuple[float, float]
    radius: float
    y0: float
    y1: float
    material: Material = field(default_factory=Material)

    def intersect(self, o: F, d: F) -> tuple[F, F]:
        cx, cz = self.center_xz
        ox, oz = o[:, 0] - cx, o[:, 2] - cz
        dx, dz = d[:, 0], d[:, 2]
        a = dx * dx + dz * dz
        b = ox * dx + oz * dz
        c = ox * ox + oz * oz - self.radius**2
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - sq) / a
        y_side = o[:, 1] + t_side * d[:, 1]
        side_ok = (
            (a > 1e-12) & (disc >= 0) & (t_side > EPS) & (y_side >= self.y0) & (y_side <= self.y1)
        )
        t_side = np.where(side_ok, t_side, np.inf)
        t_cap = np.full(o.shape[0], np.inf)
        cap_n = np.zeros(o.shape[0])
        for y_cap, n_y in ((self.y1, 1.0), (self.y0, -1.0)):
            with np.errstate(divide="ignore", invalid="ignore"):
                tc = (y_cap - o[:, 1]) / d[:, 1]
                px, pz = ox + tc * dx, oz + tc * dz
                inside = px * px + pz * pz <= self.radius**2
            facing = d[:, 1] * n_y < 0
            ok = facing & (tc > EPS) & inside & (tc < t_cap)
            t_cap = np.where(ok, tc, t_cap)
            cap_n = np.where(ok, n_y, cap_n)
        use_cap = t_cap < t_side
        t = np.where(use_cap, t_cap, t_side)
        ts = np.where(np.isfinite(t_side), t_side, 0.0)
        side_n = np.stack(
            [(ox + ts * dx) / self.radius, np.zeros_like(ox), (oz + ts * dz) / self.radius], 1
        )
        cap_vec = np.stack([np.zeros_like(cap_n), cap_n, np.zeros_like(cap_n)], 1)
        normals = np.where(use_cap[:, None], cap_vec, side_n)
        return t, normals


Primitive = "Plane | Box | RoomShell | Sphere | Cylinder"


@dataclass
class Hits:
    """Nearest hit per ray: ``t`` (inf = nothing), primitive index (-1) and unit normal."""

    t: F
    index: npt.NDArray[np.intp]
    normal: F


def cast_rays(primitives: list, o: F, d: F) -> Hits:
    """Nearest intersection of each ray with a list of primitives."""
    n = d.shape[0]
    best_t = np.full(n, np.inf)
    best_i = np.full(n, -1, dtype=np.intp)
    best_n = np.zeros((n, 3))
    for i, prim in enumerate(primitives):
        t, normals = prim.intersect(o, d)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        best_i[closer] = i
        best_n[closer] = normals[closer]
    return Hits(best_t, best_i, best_n)


def occluded(primitives: list, points: F, to_light: F, max_t: F) -> npt.NDArray[np.bool_]:
    """Flag segments ``points -> points + to_light * max_t`` that hit any primitive."""
    start = points + to_light * 1e-3
    blocked = np.zeros(points.shape[0], dtype=bool)
    for prim in primitives:
        t, _ = prim.intersect(start, to_light)
        blocked |= t < max_t
    return blocked
