"""Random scene layouts: furnished rooms, corridors, streets and open yards.

Everything is drawn from one ``numpy.random.Generator`` so a seed fixes the whole scene.
Sizes follow real interiors and streets (doors 2 m, tables 0.75 m, cars 1.5 m, storeys 3 m):
absolute scale is what a metric depth network has to learn from the image.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ConfigError
from recon3d_ros.synth.geometry import Box, Cylinder, Material, Plane, RoomShell, Sphere

__all__ = [
    "PointLight",
    "Sun",
    "Scene",
    "CameraPose",
    "SCENE_KINDS",
    "sample_scene",
    "look_rotation",
]

SCENE_KINDS = ("room", "corridor", "street", "yard")
_KIND_WEIGHTS = (0.55, 0.12, 0.23, 0.10)


@dataclass(frozen=True)
class PointLight:
    position: tuple[float, float, float]
    intensity: float  # irradiance at 1 m, in units of the albedo
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shadows: bool = True


@dataclass(frozen=True)
class Sun:
    direction: tuple[float, float, float]  # towards the sun, unit
    intensity: float
    color: tuple[float, float, float] = (1.0, 0.97, 0.9)


@dataclass(frozen=True)
class CameraPose:
    """Camera centre in the world and optical-to-world rotation (x right, y down, z forward)."""

    position: tuple[float, float, float]
    rotation: npt.NDArray[np.float64]


@dataclass
class Scene:
    kind: str
    primitives: list = field(default_factory=list)
    lights: list[PointLight] = field(default_factory=list)
    sun: Sun | None = None
    ambient: float = 0.3
    ambient_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sky: bool = False
    pose: CameraPose | None = None


def look_rotation(yaw: float, pitch: float, roll: float = 0.0) -> npt.NDArray[np.float64]:
    """Return the optical-to-world rotation of a camera.

    ``yaw`` is the heading (about +y, 0 looks along +z), ``pitch`` positive looks up, ``roll`` is
    about the optical axis; all in radians.
    """
    base = np.diag([1.0, -1.0, 1.0])  # optical y points down, world y up
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(-pitch), math.sin(-pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ base @ r_roll


# ---------------------------------------------------------------------------- materials
def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (r**2.2, g**2.2, b**2.2)  # sRGB-ish to linear


def _mat(rng: np.random.Generator, family: str) -> Material:
    seed = int(rng.integers(0, 1 << 30))
    u = rng.random
    if family == "wall":
        pattern = rng.choice(
            ["plaster", "plain", "plaster", "stripes", "brick", "tiles", "fabric"],
            p=[0.35, 0.25, 0.1, 0.1, 0.07, 0.06, 0.07],
        )
        h = u()
        c = _hsv(h, 0.05 + 0.35 * u() ** 2, 0.6 + 0.38 * u())
        c2 = _hsv(h + 0.1 * (u() - 0.5), 0.1 + 0.3 * u(), 0.4 + 0.5 * u())
        if pattern == "brick":
            c = _hsv(0.02 + 0.05 * u(), 0.4 + 0.3 * u(), 0.35 + 0.35 * u())
            c2 = _hsv(0.1, 0.1, 0.6 + 0.2 * u())
        return Material(
            c,
            c2,
            str(pattern),
            0.15 + 0.6 * u() if pattern != "brick" else 0.6,
            0.5 + u(),
            seed=seed,
        )
    if family == "floor":
        pattern = rng.choice(
            ["wood", "tiles", "carpet", "plain", "checker"], p=[0.4, 0.25, 0.2, 0.1, 0.05]
        )
        if pattern == "wood":
            c = _hsv(0.05 + 0.06 * u(), 0.4 + 0.4 * u(), 0.25 + 0.5 * u())
            c2 = tuple(v * (0.5 + 0.3 * u()) for v in c)
            return Material(c, c2, "wood", 0.12 + 0.15 * u(), 0.5, seed=seed)
        if pattern == "carpet":
            c = _hsv(u(), 0.1 + 0.5 * u(), 0.2 + 0.5 * u())
            return Material(
                c, _hsv(u(), 0.3 * u(), 0.2 + 0.5 * u()), "carpet", 0.5 + u(), 0.5 + u(), seed=seed
            )
        h = u()
        return Material(
            _hsv(h, 0.3 * u(), 0.4 + 0.55 * u()),
            _hsv(h, 0.2 * u(), 0.2 + 0.6 * u()),
            str(pattern),
            0.2 + 0.5 * u(),
            0.6,
            seed=seed,
        )
    if family == "ceiling":
        v = 0.75 + 0.23 * u()
        return Material(
            _hsv(0.1, 0.05 * u(), v), _hsv(0.1, 0.05, v * 0.9), "plaster", 0.5, 0.3, seed=seed
        )
    if family == "wood":
        c = _hsv(0.04 + 0.07 * u(), 0.35 + 0.45 * u(), 0.15 + 0.55 * u())
        return Material(
            c, tuple(v * (0.4 + 0.4 * u()) for v in c), "wood", 0.05 + 0.2 * u(), 0.5, seed=seed
        )
    if family == "fabric":
        c = _hsv(u(), 0.1 + 0.7 * u(), 0.15 + 0.7 * u())
        pattern = rng.choice(["fabric", "stripes", "plain", "checker"], p=[0.6, 0.15, 0.15, 0.1])
        return Material(
            c,
            _hsv(u(), 0.5 * u(), 0.2 + 0.7 * u()),
            str(pattern),
            0.05 + 0.3 * u(),
            0.8,
            seed=seed,
        )
    if family == "object":
        kind = rng.choice(
            ["plain", "wood", "stripes", "checker", "fabric", "tiles"],
            p=[0.45, 0.2, 0.1, 0.08, 0.12, 0.05],
        )
        c = _hsv(u(), 0.8 * u(), 0.1 + 0.85 * u())
        return Material(
            c, _hsv(u(), 0.8 * u(), 0.1 + 0.85 * u()), str(kind), 0.03 + 0.3 * u(), u(), seed=seed
        )
    if family == "metal":
        v = 0.2 + 0.6 * u()
        return Material(_hsv(0.6, 0.05, v), _hsv(0.6, 0.05, v * 0.7), "plain", 0.3, 0.2, seed=seed)
    if family == "facade":
        pattern = rng.choice(["facade", "brick", "plaster"], p=[0.6, 0.2, 0.2])
        c = _hsv(0.05 + 0.1 * u(), 0.1 + 0.4 * u(), 0.4 + 0.55 * u())
        win = _hsv(0.6, 0.2 * u(), 0.08 + 0.25 * u())
        scale = 2.0 + 2.0 * u() if pattern == "facade" else 0.5 + 0.3 * u()
        return Material(c, win, str(pattern), scale, 0.6, seed=seed)
    if family == "road":
        return Material(
            _hsv(0.6, 0.05, 0.25 + 0.25 * u()),
            _hsv(0.1, 0.05, 0.85),
            "asphalt",
            0.5 + u(),
            0.5,
            seed=seed,
        )
    if family == "ground":
        pattern = rng.choice(["grass", "asphalt", "tiles", "plaster"], p=[0.45, 0.25, 0.15, 0.15])
        if pattern == "grass":
            return Material(
                _hsv(0.22 + 0.08 * u(), 0.5 + 0.3 * u(), 0.25 + 0.3 * u()),
                _hsv(0.15 + 0.1 * u(), 0.5, 0.2 + 0.3 * u()),
                "grass",
                0.3 + 0.5 * u(),
                0.7,
                seed=seed,
            )
        return Material(
            _hsv(0.08, 0.1 * u(), 0.35 + 0.4 * u()),
            _hsv(0.08, 0.1, 0.3 + 0.3 * u()),
            str(pattern),
            0.3 + 0.7 * u(),
            0.6,
            seed=seed,
        )
    if family == "car":
        c = _hsv(u(), 0.8 * u() ** 0.5 if u() < 0.6 else 0.05, 0.1 + 0.8 * u())
        return Material(c, c, "plain", 1.0, 0.1, seed=seed)
    if family == "leaves":
        return Material(
            _hsv(0.2 + 0.12 * u(), 0.5 + 0.4 * u(), 0.15 + 0.3 * u()),
            _hsv(0.18, 0.6, 0.1 + 0.2 * u()),
            "leaves",
            0.2 + 0.3 * u(),
            0.8,
            seed=seed,
        )
    raise ConfigError(f"unknown material family {family!r}")


def _window_mat(rng: np.random.Generator) -> Material:
    v = 0.7 + 0.3 * rng.random()
    return Material(
        _hsv(0.58, 0.15 * rng.random(), v),
        _hsv(0.3, 0.3, v * 0.6),
        "plaster",
        1.0,
        0.6,
        emissive=1.0 + 2.0 * rng.random(),
        seed=int(rng.integers(1 << 30)),
    )


# ---------------------------------------------------------------------------- furniture
def _legs(
    cx: float,
    cz: float,
    hx: float,
    hz: float,
    height: float,
    yaw: float,
    thick: float,
    mat: Material,
) -> list:
    c, s = math.cos(yaw), math.sin(yaw)
    out = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = sx * (hx - thick), sz * (hz - thick)
            wx, wz = cx + c * lx + s * lz, cz - s * lx + c * lz
            out.append(Box((wx, height / 2, wz), (thick, height / 2, thick), yaw, mat))
    return out


def _table(rng, x, z, yaw, mat) -> list:
    hx, hz = 0.35 + 0.6 * rng.random(), 0.3 + 0.25 * rng.random()
    h = 0.42 + 0.35 * rng.random() if rng.random() < 0.3 else 0.72 + 0.06 * rng.random()
    top = 0.015 + 0.03 * rng.random()
    return [Box((x, h - top, z), (hx, top, hz), yaw, mat)] + _legs(
        x, z, hx, hz, h - 2 * top, yaw, 0.025, mat
    )


def _chair(rng, x, z, yaw, mat) -> list:
    hs = 0.2 + 0.05 * rng.random()
    seat = 0.43 + 0.05 * rng.random()
    c, s = math.cos(yaw), math.sin(yaw)
    bx, bz = x + s * (-hs), z + c * (-hs)
    back_h = 0.35 + 0.25 * rng.random()
    return [
        Box((x, seat, z), (hs, 0.025, hs), yaw, mat),
        Box((bx, seat + back_h / 2, bz), (hs, back_h / 2, 0.02), yaw, mat),
    ] + _legs(x, z, hs, hs, seat - 0.025, yaw, 0.02, mat)


def _cabinet(rng, x, z, yaw, mat) -> list:
    h = 0.5 + 1.7 * rng.random()
    hx, hz = 0.3 + 0.5 * rng.random(), 0.18 + 0.15 * rng.random()
    out = [Box((x, h / 2, z), (hx, h / 2, hz), yaw, mat)]
    if rng.random() < 0.5:  # a thing on top
        out.append(
            Box((x, h + 0.1, z), (0.1 + 0.1 * rng.random(), 0.1, 0.1), yaw, _mat(rng, "object"))
        )
    return out


def _sofa(rng, x, z, yaw, mat) -> list:
    hx, hz = 0.7 + 0.5 * rng.random(), 0.4 + 0.15 * rng.random()
    seat = 0.4 + 0.1 * rng.random()
    c, s = math.cos(yaw), math.sin(yaw)
    back = 0.35 + 0.2 * rng.random()
    bx, bz = x - s * (hz - 0.1), z - c * (hz - 0.1)
    return [
        Box((x, seat / 2, z), (hx, seat / 2, hz), yaw, mat),
        Box((bx, seat + back / 2, bz), (hx, back / 2, 0.1), yaw, mat),
    ]


def _clutter(rng, x, z, base_y: float) -> list:
    k = rng.random()
    mat = _mat(rng, "object")
    if k < 0.45:
        hx, hy, hz = (
            0.05 + 0.25 * rng.random(),
            0.05 + 0.25 * rng.random(),
            0.05 + 0.25 * rng.random(),
        )
        return [Box((x, base_y + hy, z), (hx, hy, hz), float(rng.random() * math.pi), mat)]
    if k < 0.7:
        r = 0.04 + 0.25 * rng.random()
        return [Sphere((x, base_y + r, z), r, mat)]
    r = 0.03 + 0.2 * rng.random()
    return [Cylinder((x, z), r, base_y, base_y + 0.1 + 0.8 * rng.random(), mat)]


def _lamp(rng, x, z) -> list:
    h = 1.2 + 0.6 * rng.random()
    metal = _mat(rng, "metal")
    shade = Material(
        _hsv(0.1, 0.2 * rng.random(), 0.85),
        _hsv(0.1, 0.2, 0.8),
        "fabric",
        0.1,
        0.3,
        emissive=0.5 * rng.random(),
        seed=int(rng.integers(1 << 30)),
    )
    r = 0.12 + 0.12 * rng.random()
    return [
        Cylinder((x, z), 0.015, 0.0, h, metal),
        Cylinder((x, z), 0.12, 0.0, 0.03, metal),
        Cylinder((x, z), r, h, h + 0.25 + 0.1 * rng.random(), shade),
    ]


def _plant(rng, x, z) -> list:
    pot_h = 0.2 + 0.3 * rng.random()
    r = 0.12 + 0.12 * rng.random()
    return [
        Cylinder((x, z), r, 0.0, pot_h, _mat(rng, "object")),
        Sphere(
            (x, pot_h + 0.25 + 0.2 * rng.random(), z),
            0.2 + 0.25 * rng.random(),
            _mat(rng, "leaves"),
        ),
    ]


def _wall_items(rng, lo, hi) -> list:
    """Pictures, doors, windows and shelves flush with the walls of a room shell."""
    out = []
    height = hi[1]
    for _ in range(int(rng.integers(1, 7))):
        wall = int(rng.integers(4))
        axis = 0 if wall < 2 else 2
        other = 2 - axis
        side = lo[axis] if wall % 2 == 0 else hi[axis]
        inward = 1.0 if wall % 2 == 0 else -1.0
        span = (lo[other] + 0.4, hi[other] - 0.4)
        if span[1] <= span[0]:
            continue
        pos = span[0] + (span[1] - span[0]) * rng.random()
        k = rng.random()
        if k < 0.4:  # picture / poster / tv
            w, h = 0.2 + 0.6 * rng.random(), 0.2 + 0.5 * rng.random()
            yc = 1.1 + 0.7 * rng.random()
            mat = (
                _mat(rng, "object")
                if rng.random() < 0.7
                else Material(
                    (0.02, 0.02, 0.02),
                    (0.05, 0.05, 0.05),
                    "plain",
                    1,
                    0.1,
                    seed=int(rng.integers(1 << 30)),
                )
            )
            thick = 0.01 + 0.04 * rng.random()
        elif k < 0.65:  # door
            w, h = 0.42 + 0.05 * rng.random(), 1.0 + 0.05 * rng.random()
            yc, thick, mat = h, 0.02 + 0.03 * rng.random(), _mat(rng, "wood")
            h = min(h, height / 2 - 0.05)
        elif k < 0.85:  # window
            w, h = 0.4 + 0.6 * rng.random(), 0.4 + 0.4 * rng.random()
            yc, thick, mat = 0.9 + h + 0.2 * rng.random(), 0.01, _window_mat(rng)
            if yc + h > height:
                yc = height - h - 0.05
        else:  # wall shelf
            w, h = 0.3 + 0.5 * rng.random(), 0.02
            yc, thick, mat = 1.0 + rng.random(), 0.1 + 0.1 * rng.random(), _mat(rng, "wood")
        center = [0.0, yc, 0.0]
        half = [0.0, h, 0.0]
        center[axis] = side + inward * thick
        half[axis] = thick
        center[other] = pos
        half[other] = w
        out.append(Box(tuple(center), tuple(half), 0.0, mat))
    return out


# ---------------------------------------------------------------------------- camera
def _camera_height(rng: np.random.Generator, indoor: bool) -> float:
    r = rng.random()
    if r < 0.25:
        return 0.3 + 0.6 * rng.random()  # ground robot
    if indoor:
        return 0.9 + 1.0 * rng.random()
    return 1.2 + 0.6 * rng.random()  # car roof, person


def _pose(rng, position, yaw, pitch_mean=-0.12, pitch_sd=0.15) -> CameraPose:
    pitch = float(np.clip(rng.normal(pitch_mean, pitch_sd), -0.6, 0.35))
    roll = float(np.clip(rng.normal(0.0, 0.05), -0.15, 0.15))
    return CameraPose(tuple(float(v) for v in position), look_rotation(yaw, pitch, roll))


# ---------------------------------------------------------------------------- scenes
def _room(rng: np.random.Generator, corridor: bool) -> Scene:
    if corridor:
        w, length = 1.4 + 1.6 * rng.random(), 8.0 + 20.0 * rng.random()
        sx, sz = (w, length) if rng.random() < 0.5 else (length, w)
    else:
        sx, sz = 2.5 + 6.0 * rng.random(), 2.5 + 7.0 * rng.random()
    height = 2.3 + 0.9 * rng.random()
    lo = (-sx / 2, 0.0, -sz / 2)
    hi = (sx / 2, height, sz / 2)
    wall = _mat(rng, "wall")
    walls = [wall if rng.random() < 0.8 else _mat(rng, "wall") for _ in range(4)]
    shell = RoomShell(lo, hi, (_mat(rng, "floor"), _mat(rng, "ceiling"), *walls))
    scene = Scene("corridor" if corridor else "room", [shell])
    cam_h = min(_camera_height(rng, True), height - 0.3)
    margin = 0.35
    cam = np.array(
        [
            lo[0] + margin + (sx - 2 * margin) * rng.random(),
            cam_h,
            lo[2] + margin + (sz - 2 * margin) * rng.random(),
        ]
    )
    if corridor:
        along_x = sx > sz
        cam[0 if along_x else 2] = (lo if rng.random() < 0.5 else hi)[0 if along_x else 2] * (
            0.6 + 0.3 * rng.random()
        )
        to_center = -np.sign(cam[0 if along_x else 2]) or 1.0
        base_yaw = (
            (math.pi / 2 if along_x else 0.0)
            if to_center > 0
            else (-math.pi / 2 if along_x else math.pi)
        )
        yaw = base_yaw + rng.normal(0, 0.25)
    else:
        # Face into the room (give or take 70 degrees): photos rarely stare at a bare wall.
        yaw = math.atan2(-cam[0], -cam[2]) + rng.uniform(-1.2, 1.2)
    scene.pose = _pose(rng, cam, yaw)

    objects: list = _wall_items(rng, lo, hi)
    n_furniture = int(rng.integers(0, 4)) if corridor else int(rng.integers(2, 12))
    wood = _mat(rng, "wood")
    for _ in range(n_furniture):
        x = lo[0] + 0.3 + (sx - 0.6) * rng.random()
        z = lo[2] + 0.3 + (sz - 0.6) * rng.random()
        yaw_o = float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2]) + rng.normal(0, 0.1))
        k = rng.random()
        if k < 0.2:
            group = _table(rng, x, z, yaw_o, wood if rng.random() < 0.7 else _mat(rng, "object"))
            top = group[0]
            for _ in range(int(rng.integers(0, 4))):
                tx = top.center[0] + (rng.random() - 0.5) * top.half[0]
                tz = top.center[2] + (rng.random() - 0.5) * top.half[2]
                group += _clutter(rng, tx, tz, top.center[1] + top.half[1])
            for _ in range(int(rng.integers(0, 5))):  # chairs around it
                ang = rng.random() * 2 * math.pi
                d = 0.5 + 0.5 * rng.random()
                group += _chair(
                    rng, x + d * math.cos(ang), z + d * math.sin(ang), -ang + math.pi / 2, wood
                )
        elif k < 0.35:
            group = _chair(rng, x, z, yaw_o, wood if rng.random() < 0.6 else _mat(rng, "object"))
        elif k < 0.55:
            # Against the nearest wall.
            if rng.random() < 0.5:
                x = lo[0] + 0.3 if x < 0 else hi[0] - 0.3
                yaw_o = math.pi / 2
            else:
                z = lo[2] + 0.3 if z < 0 else hi[2] - 0.3
                yaw_o = 0.0
            group = _cabinet(rng, x, z, yaw_o, wood if rng.random() < 0.5 else _mat(rng, "object"))
        elif k < 0.68:
            group = _sofa(rng, x, z, yaw_o, _mat(rng, "fabric"))
        elif k < 0.75:
            group = _lamp(rng, x, z)
        elif k < 0.82:
            group = _plant(rng, x, z)
        else:
            group = []
            for _ in range(int(rng.integers(1, 4))):
                group += _clutter(rng, x + rng.normal(0, 0.3), z + rng.normal(0, 0.3), 0.0)
        objects += group
    cam_pt = np.asarray(scene.pose.position)
    scene.primitives += [p for p in objects if not _contains(p, cam_pt, 0.15)]

    for _ in range(int(rng.integers(1, 4))):
        lp = (lo[0] + sx * rng.random(), height - 0.15, lo[2] + sz * rng.random())
        warm = rng.random()
        scene.lights.append(
            PointLight(
                lp,
                0.8 + 3.0 * rng.random() * (height / 2.5) ** 2,
                (1.0, 0.9 + 0.1 * warm, 0.75 + 0.25 * warm),
                shadows=True,
            )
        )
    if rng.random() < 0.4:  # daylight through a window
        el = 0.3 + 0.5 * rng.random()
        az = rng.random() * 2 * math.pi
        scene.sun = Sun(
            (math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)),
            0.3 + 0.6 * rng.random(),
        )
    scene.ambient = 0.12 + 0.35 * rng.random()
    return scene


def _contains(prim, point: npt.NDArray[np.float64], margin: float) -> bool:
    if isinstance(prim, Box):
        return prim.contains(point, margin)
    if isinstance(prim, Sphere):
        return float(np.linalg.norm(point - np.asarray(prim.center))) < prim.radius + margin
    if isinstance(prim, Cylinder):
        dx, dz = point[0] - prim.center_xz[0], point[2] - prim.center_xz[1]
        return (
            math.hypot(dx, dz) < prim.radius + margin
            and prim.y0 - margin < point[1] < prim.y1 + margin
        )
    return False


def _car(rng, x, z, yaw) -> list:
    body = _mat(rng, "car")
    glass = Material(
        (0.03, 0.04, 0.05), (0.05, 0.05, 0.06), "plain", 1.0, 0.2, seed=int(rng.integers(1 << 30))
    )
    tyre = Material((0.02, 0.02, 0.02), (0.03, 0.03, 0.03), "plain", 1.0, 0.1, seed=1)
    length, width = 1.9 + 0.5 * rng.random(), 0.82 + 0.12 * rng.random()
    c, s = math.cos(yaw), math.sin(yaw)
    cab_off = -0.2 + 0.3 * rng.random()
    return [
        Box((x, 0.28, z), (width * 0.92, 0.2, length * 0.9), yaw, tyre),
        Box((x, 0.72, z), (width, 0.28, length), yaw, body),
        Box(
            (x + s * cab_off, 1.18, z + c * cab_off), (width * 0.88, 0.2, length * 0.5), yaw, glass
        ),
        Box(
            (x + s * cab_off, 1.41, z + c * cab_off),
            (width * 0.86, 0.03, length * 0.45),
            yaw,
            body,
        ),
    ]


def _tree(rng, x, z) -> list:
    trunk_h = 1.5 + 3.0 * rng.random()
    bark = Material(
        _hsv(0.07, 0.4, 0.15 + 0.15 * rng.random()),
        _hsv(0.07, 0.3, 0.1),
        "wood",
        0.1,
        0.5,
        seed=int(rng.integers(1 << 30)),
    )
    r = 1.0 + 2.5 * rng.random()
    out = [Cylinder((x, z), 0.1 + 0.2 * rng.random(), 0.0, trunk_h + r * 0.5, bark)]
    for _ in range(int(rng.integers(1, 4))):
        out.append(
            Sphere(
                (
                    x + rng.normal(0, r * 0.3),
                    trunk_h + r * (0.6 + 0.4 * rng.random()),
                    z + rng.normal(0, r * 0.3),
                ),
                r * (0.6 + 0.4 * rng.random()),
                _mat(rng, "leaves"),
            )
        )
    return out


def _street(rng: np.random.Generator) -> Scene:
    road_half = 2.5 + 5.0 * rng.random()
    walk = 1.5 + 2.5 * rng.random()
    scene = Scene("street", [Plane((0, 1, 0), 0.0, _mat(rng, "road"))], sky=True)
    curb = 0.1 + 0.08 * rng.random()
    walk_mat = (
        _mat(rng, "ground")
        if rng.random() < 0.4
        else Material(
            _hsv(0.08, 0.05, 0.5 + 0.3 * rng.random()),
            _hsv(0.08, 0.05, 0.4),
            "tiles",
            0.3 + 0.3 * rng.random(),
            0.5,
            seed=int(rng.integers(1 << 30)),
        )
    )
    length = 200.0
    for side in (-1, 1):
        scene.primitives.append(
            Box(
                (side * (road_half + walk / 2), curb / 2, length / 2 - 20),
                (walk / 2, curb / 2, length / 2),
                0.0,
                walk_mat,
            )
        )
        z = -15.0 + 10 * rng.random()
        facade_x = road_half + walk
        while z < 160:
            k = rng.random()
            depth_b = 6 + 10 * rng.random()
            set_back = 0.0 if rng.random() < 0.6 else 3 + 8 * rng.random()
            if k < 0.7:
                w = 5 + 15 * rng.random()
                h = 3 + 15 * rng.random()
                scene.primitives.append(
                    Box(
                        (side * (facade_x + set_back + depth_b), h / 2, z + w / 2),
                        (depth_b, h / 2, w / 2),
                        0.0,
                        _mat(rng, "facade"),
                    )
                )
                if rng.random() < 0.4:  # pitched roof hint: a narrower box on top
                    scene.primitives.append(
                        Box(
                            (side * (facade_x + set_back + depth_b), h + 1.0, z + w / 2),
                            (depth_b * 0.7, 1.0, w / 2),
                            0.0,
                            _mat(rng, "facade"),
                        )
                    )
            else:
                w = 3 + 10 * rng.random()
                if rng.random() < 0.5:  # a wall or hedge
                    hh = 0.5 + 1.5 * rng.random()
                    mat = _mat(rng, "leaves") if rng.random() < 0.5 else _mat(rng, "wall")
                    scene.primitives.append(
                        Box(
                            (side * (facade_x + 0.3), hh / 2, z + w / 2),
                            (0.3, hh / 2, w / 2),
                            0.0,
                            mat,
                        )
                    )
            z += w + (0 if rng.random() < 0.6 else 2 + 6 * rng.random())
        # Parked cars, trees and poles along the kerb.
        z = -5 + 5 * rng.random()
        while z < 90:
            k = rng.random()
            if k < 0.55:
                scene.primitives += _car(
                    rng,
                    side * (road_half - 1.1 - 0.3 * rng.random()),
                    z,
                    float(rng.normal(0, 0.05)),
                )
                z += 4.5 + 6 * rng.random()
            elif k < 0.8:
                scene.primitives += _tree(
                    rng, side * (road_half + 0.6 + (walk - 0.8) * rng.random()), z
                )
                z += 5 + 10 * rng.random()
            else:
                scene.primitives.append(
                    Cylinder(
                        (side * (road_half + 0.4), z),
                        0.05 + 0.05 * rng.random(),
                        0.0,
                        3 + 5 * rng.random(),
                        _mat(rng, "metal"),
                    )
                )
                z += 3 + 10 * rng.random()
    for _ in range(int(rng.integers(0, 4))):  # cars in the lanes ahead
        lane_x = (rng.random() - 0.5) * road_half
        scene.primitives += _car(rng, lane_x, 8 + 60 * rng.random(), float(rng.normal(0, 0.05)))
    if rng.random() < 0.5:  # street ends in a building
        scene.primitives.append(
            Box((0, 10, 120 + 60 * rng.random()), (60, 10, 5), 0.0, _mat(rng, "facade"))
        )
    cam_x = (rng.random() - 0.5) * road_half
    scene.pose = _pose(
        rng, (cam_x, _camera_height(rng, False), 0.0), float(rng.normal(0, 0.2)), -0.03, 0.06
    )
    _outdoor_light(rng, scene)
    return scene


def _yard(rng: np.random.Generator) -> Scene:
    scene = Scene("yard", [Plane((0, 1, 0), 0.0, _mat(rng, "ground"))], sky=True)
    for _ in range(int(rng.integers(3, 20))):
        ang, dist = rng.random() * 2 * math.pi, 2 + 50 * rng.random() ** 1.5
        x, z = dist * math.sin(ang), dist * math.cos(ang)
        k = rng.random()
        if k < 0.35:
            w, h, d = 2 + 10 * rng.random(), 2.5 + 10 * rng.random(), 2 + 10 * rng.random()
            scene.primitives.append(
                Box(
                    (x, h / 2, z),
                    (w / 2, h / 2, d / 2),
                    float(rng.random() * 3),
                    _mat(rng, "facade"),
                )
            )
        elif k < 0.55:
            scene.primitives += _tree(rng, x, z)
        elif k < 0.75:
            scene.primitives += _car(rng, x, z, float(rng.random() * 6.3))
        else:
            scene.primitives += _clutter(rng, x * 0.2, z * 0.2, 0.0)
    pose_pos = np.array([0.0, _camera_height(rng, False), 0.0])
    scene.primitives = [p for p in scene.primitives if not _contains(p, pose_pos, 0.5)]
    scene.pose = _pose(rng, pose_pos, float(rng.random() * 2 * math.pi), -0.08, 0.1)
    _outdoor_light(rng, scene)
    return scene


def _outdoor_light(rng: np.random.Generator, scene: Scene) -> None:
    el = 0.25 + 1.0 * rng.random()
    az = rng.random() * 2 * math.pi
    overcast = rng.random() < 0.3
    scene.sun = Sun(
        (math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)),
        (0.3 if overcast else 1.2) + 0.8 * rng.random(),
    )
    scene.ambient = (0.5 if overcast else 0.25) + 0.2 * rng.random()
    scene.ambient_color = (0.85, 0.92, 1.0)


def sample_scene(rng: np.random.Generator, kind: str | None = None) -> Scene:
    """Draw a random scene (with camera pose) of ``kind``, or of a kind drawn by the weights."""
    if kind is None:
        kind = str(rng.choice(SCENE_KINDS, p=_KIND_WEIGHTS))
    if kind == "room":
        return _room(rng, corridor=False)
    if kind == "corridor":
        return _room(rng, corridor=True)
    if kind == "street":
        return _street(rng)
    if kind == "yard":
        return _yard(rng)
    raise ConfigError(f"unknown scene kind {kind!r}; choose one of {SCENE_KINDS}")
