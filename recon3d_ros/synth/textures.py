"""Procedural surface textures evaluated at hit points (no image assets).

Patterns are functions of 2-D surface coordinates in metres, so their apparent size shrinks
with distance exactly as real texture does: a depth cue the network should learn, and one that
keeps working across focal lengths.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recon3d_ros.synth.geometry import Material

__all__ = ["PATTERNS", "value_noise", "fbm", "shade_material", "surface_uv"]

F = npt.NDArray[np.float64]

_LATTICE_SIZE = 256
_LATTICE = np.random.default_rng(12345).random((_LATTICE_SIZE, _LATTICE_SIZE))

PATTERNS = (
    "plain",
    "plaster",
    "wood",
    "tiles",
    "carpet",
    "stripes",
    "checker",
    "brick",
    "facade",
    "asphalt",
    "grass",
    "leaves",
    "fabric",
)


def value_noise(u: F, v: F) -> F:
    """Smooth lattice noise in [0, 1], period 256 units."""
    x0 = np.floor(u)
    y0 = np.floor(v)
    fx = u - x0
    fy = v - y0
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    i0 = x0.astype(np.int64) & (_LATTICE_SIZE - 1)
    j0 = y0.astype(np.int64) & (_LATTICE_SIZE - 1)
    i1 = (i0 + 1) & (_LATTICE_SIZE - 1)
    j1 = (j0 + 1) & (_LATTICE_SIZE - 1)
    a = _LATTICE[j0, i0]
    b = _LATTICE[j0, i1]
    c = _LATTICE[j1, i0]
    d = _LATTICE[j1, i1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def fbm(u: F, v: F, octaves: int = 3) -> F:
    """Fractal noise in roughly [-0.5, 0.5]."""
    total = np.zeros_like(u)
    amp, norm, freq = 1.0, 0.0, 1.0
    for k in range(octaves):
        total += amp * value_noise(u * freq + 17.3 * k, v * freq + 9.1 * k)
        norm += amp
        amp *= 0.5
        freq *= 2.03
    return total / norm - 0.5


def _cell_hash(i: F, j: F, seed: int) -> F:
    """Hash each integer cell to a pseudo-random value in [0, 1)."""
    x = np.sin(i * 127.1 + j * 311.7 + seed * 74.7) * 43758.5453
    return x - np.floor(x)


def surface_uv(points: F, normals: F) -> tuple[F, F]:
    """Planar texture coordinates: drop the axis the surface faces (tri-planar, no blending)."""
    axis = np.argmax(np.abs(normals), axis=1)
    u = np.where(axis == 0, points[:, 2], points[:, 0])
    v = np.where(axis == 1, points[:, 2], points[:, 1])
    return u, v


def shade_material(mat: Material, u: F, v: F) -> F:
    """Linear-RGB albedo (N x 3) of ``mat`` at surface coordinates ``u``, ``v`` (metres)."""
    c1 = np.asarray(mat.color, dtype=np.float64)
    c2 = np.asarray(mat.color2, dtype=np.float64)
    s = max(mat.scale, 1e-3)
    off = (mat.seed % 97) * 3.7
    uu, vv = u / s + off, v / s + off * 0.7
    p = mat.pattern
    mix: F  # 0 -> color, 1 -> color2
    mod = np.ones_like(u)  # brightness modulation
    if p == "plaster":
        mix = np.zeros_like(u)
        mod = 1.0 + mat.roughness * 0.35 * fbm(uu * 4, vv * 4, 4)
    elif p == "wood":
        plank = np.floor(vv)
        tint = _cell_hash(plank, plank * 0.0, mat.seed)
        grain = np.sin((uu * 0.5 + 2.0 * fbm(uu * 0.3, vv * 6, 2)) * 18.0 + tint * 10)
        mix = np.clip(0.5 + 0.35 * grain + 0.4 * (tint - 0.5), 0, 1)
        seam = (vv - plank) < 0.04
        mod = np.where(seam, 0.55, 1.0) * (1.0 + 0.2 * fbm(uu * 8, vv * 8))
    elif p == "tiles":
        fu, fv = uu - np.floor(uu), vv - np.floor(vv)
        grout = (fu < 0.06) | (fv < 0.06)
        tint = _cell_hash(np.floor(uu), np.floor(vv), mat.seed)
        mix = grout.astype(np.float64)
        mod = 1.0 + mat.roughness * 0.3 * (tint - 0.5) + 0.1 * fbm(uu * 3, vv * 3)
    elif p == "carpet":
        mix = np.clip(0.5 + 1.2 * fbm(uu * 3, vv * 3, 2), 0, 1) * 0.4
        mod = 1.0 + 0.5 * mat.roughness * (value_noise(uu * 40, vv * 40) - 0.5)
    elif p == "stripes":
        mix = ((np.floor(uu * 2) % 2) == 0).astype(np.float64)
        mod = 1.0 + 0.1 * fbm(uu * 4, vv * 4)
    elif p == "checker":
        mix = ((np.floor(uu) + np.floor(vv)) % 2).astype(np.float64)
        mod = 1.0 + 0.1 * fbm(uu * 4, vv * 4)
    elif p == "brick":
        row = np.floor(vv * 3)
        bu = uu * 1.5 + 0.5 * (row % 2)
        fu, fv = bu - np.floor(bu), vv * 3 - row
        mortar = (fu < 0.05) | (fv < 0.08)
        tint = _cell_hash(np.floor(bu), row, mat.seed)
        mix = mortar.astype(np.float64)
        mod = 1.0 + 0.35 * (tint - 0.5) + 0.15 * fbm(uu * 6, vv * 6)
    elif p == "facade":
        # Windows on a grid: u in bays of ``scale`` metres, v in storeys of 3 m.
        fu = uu - np.floor(uu)
        fv = (v / 3.0) - np.floor(v / 3.0)
        window = (fu > 0.25) & (fu < 0.75) & (fv > 0.3) & (fv < 0.8)
        mix = window.astype(np.float64)
        mod = (
            1.0
            + 0.2 * fbm(uu * 2, vv * 2)
            + np.where(
                window, 0.3 * (_cell_hash(np.floor(uu), np.floor(v / 3), mat.seed) - 0.5), 0
            )
        )
    elif p == "asphalt":
        mix = np.zeros_like(u)
        mod = 1.0 + 0.25 * fbm(uu * 8, vv * 8, 3) + 0.15 * (value_noise(uu * 60, vv * 60) - 0.5)
        lane = (np.abs(u - np.round(u / 3.5) * 3.5) < 0.06) & ((np.floor(v / 3.0) % 2) == 0)
        mix = np.where(lane, 1.0, mix)
    elif p in ("grass", "leaves"):
        mix = np.clip(0.5 + 1.5 * fbm(uu * 2, vv * 2, 3), 0, 1)
        mod = 1.0 + 0.6 * (value_noise(uu * 30, vv * 30) - 0.5)
    elif p == "fabric":
        weave = np.sin(uu * 60) * np.sin(vv * 60)
        mix = np.clip(0.3 + 0.8 * fbm(uu, vv, 2), 0, 1) * 0.5
        mod = 1.0 + 0.08 * weave + 0.15 * fbm(uu * 5, vv * 5)
    else:  # plain
        mix = np.zeros_like(u)
        mod = 1.0 + mat.roughness * 0.2 * fbm(uu * 2, vv * 2)
    albedo = c1[None] * (1 - mix)[:, None] + c2[None] * mix[:, None]
    return np.clip(albedo * mod[:, None], 0.0, 1.0)
