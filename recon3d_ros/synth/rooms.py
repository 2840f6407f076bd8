"""Furnished room layouts made of catalogue models (see :mod:`recon3d_ros.synth.furniture`).

A room spans ``x`` in ``[0, w]``, ``z`` in ``[0, d]``, ``y`` (up) in ``[0, h]``. Big pieces
stand with their backs to the walls, tables with chairs and sofas with coffee tables stand in
the middle, small objects lie on table tops, shelves and the floor. The camera is either a
room view from robot (0.3-0.9 m) or person (1.3-1.8 m) height, or a close-up of a cluttered
table top from 0.3-1 m. Everything is drawn from one generator: a seed fixes the room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recon3d_ros.synth.furniture import FurnitureLibrary, SurfaceTextures
from recon3d_ros.synth.geometry import Material
from recon3d_ros.synth.scenes import CameraPose, PointLight, _mat, look_rotation

__all__ = ["Placement", "ShellSurface", "RoomLayout", "sample_room", "place_camera"]


@dataclass(frozen=True)
class Placement:
    """Model ``entry`` turned by ``yaw`` about +y (its front, +z, then faces ``(sin, 0, cos)``)."""

    entry: int
    position: tuple[float, float, float]  # base centre; y is the height of the base
    yaw: float = 0.0


@dataclass(frozen=True)
class ShellSurface:
    """Floor, ceiling or wall look: a photo tiled every ``scale`` metres, or a procedural one."""

    texture: int = -1  # index into SurfaceTextures.images; -1: use ``material``
    scale: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    material: Material = field(default_factory=Material)


@dataclass
class RoomLayout:
    size: tuple[float, float, float]  # w (x), h (y), d (z)
    floor: ShellSurface
    ceiling: ShellSurface
    walls: tuple[ShellSurface, ...]  # x = 0, x = w, z = 0, z = d
    placements: list[Placement] = field(default_factory=list)
    lights: list[PointLight] = field(default_factory=list)
    light_radius: float = 0.1  # area-light size: soft shadow edges
    ambient: float = 0.25
    ambient_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    window: tuple[int, float, float, float, float] | None = None  # wall, u0, u1, y0, y1
    window_emission: float = 0.0
    surfaces: list[int] = field(default_factory=list)  # placements with things on top
    pose: CameraPose | None = None
    kind: str = "mesh_room"


# ---------------------------------------------------------------------------- helpers
def _footprint(lib: FurnitureLibrary, p: Placement) -> tuple[float, float, float, float]:
    """World AABB (x0, z0, x1, z1) of a placement's footprint."""
    e = lib.entries[p.entry]
    c, s = abs(math.cos(p.yaw)), abs(math.sin(p.yaw))
    hx = 0.5 * (e.width * c + e.depth * s)
    hz = 0.5 * (e.width * s + e.depth * c)
    x, _, z = p.position
    return x - hx, z - hz, x + hx, z + hz


def _overlaps(a: tuple[float, ...], boxes: list[tuple[float, ...]], gap: float = 0.02) -> bool:
    return any(
        a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap
        for b in boxes
    )


def _against_wall(wall: int, back: float, along: float, w: float, d: float) -> tuple[float, float]:
    """Return (x, z) ``back`` metres out from wall 0-3 (x = 0, x = w, z = 0, z = d), ``along``."""
    if wall == 0:
        return back, along
    if wall == 1:
        return w - back, along
    if wall == 2:
        return along, back
    return along, d - back


def _pick(rng: np.random.Generator, lib: FurnitureLibrary, kinds: dict[str, float]) -> int:
    names = [k for k in kinds if lib.by_kind.get(k)]
    if not names:
        return -1
    p = np.asarray([kinds[k] for k in names], np.float64)
    kind = names[int(rng.choice(len(names), p=p / p.sum()))]
    pool = lib.by_kind[kind]
    return pool[int(rng.integers(len(pool)))]


def _surface(rng: np.random.Generator, tex: SurfaceTextures, family: str) -> ShellSurface:
    pool = tex.floor if family == "floor" else tex.wall
    photo = {"floor": 0.8, "wall": 0.3, "ceiling": 0.0}[family]
    if pool and rng.random() < photo:
        scale = float(rng.uniform(0.4, 1.6)) if family == "floor" else float(rng.uniform(0.5, 2))
        tint = tuple(float(v) for v in np.exp(rng.normal(0, 0.12, 3)) * rng.uniform(0.7, 1.2))
        return ShellSurface(int(pool[int(rng.integers(len(pool)))]), scale, tint)
    return ShellSurface(material=_mat(rng, family))


_WALL_KINDS = {"storage": 3.0, "sofa": 1.5, "bed": 1.0, "big": 2.0, "table": 1.2, "plant": 0.6,
               "lamp": 0.4, "chair": 0.5}
_SURFACE_KINDS = frozenset({"table", "storage", "big"})


# ---------------------------------------------------------------------------- layout
def sample_room(
    rng: np.random.Generator, lib: FurnitureLibrary, tex: SurfaceTextures
) -> RoomLayout:
    """Draw a random furnished room with lights and a camera pose."""
    w, d = float(rng.uniform(2.5, 7.0)), float(rng.uniform(2.5, 9.0))
    h = float(rng.uniform(2.4, 3.2))
    room = RoomLayout(
        size=(w, h, d),
        floor=_surface(rng, tex, "floor"),
        ceiling=_surface(rng, tex, "ceiling"),
        walls=tuple(_surface(rng, tex, "wall") for _ in range(4)),
    )
    if rng.random() < 0.6:  # walls of one room usually share a look
        room.walls = (room.walls[0],) * 4
    boxes: list[tuple[float, ...]] = []

    def put(p: Placement) -> bool:
        fp = _footprint(lib, p)
        if fp[0] < 0 or fp[1] < 0 or fp[2] > w or fp[3] > d or _overlaps(fp, boxes):
            return False
        boxes.append(fp)
        room.placements.append(p)
        if lib.entries[p.entry].kind in _SURFACE_KINDS:
            room.surfaces.append(len(room.placements) - 1)
        return True

    # Along the walls: backs to the wall, fronts into the room.
    for wall, yaw in ((0, math.pi / 2), (1, -math.pi / 2), (2, 0.0), (3, math.pi)):
        length = d if wall < 2 else w
        u = float(rng.uniform(0.0, 0.6))
        while u < length - 0.3:
            if rng.random() < 0.3:
                u += float(rng.uniform(0.3, 1.2))  # a gap (doors, radiators, bare wall)
                continue
            i = _pick(rng, lib, _WALL_KINDS)
            if i < 0:
                break
            e = lib.entries[i]
            along = e.width
            cu, back = u + along / 2, e.depth / 2 + 0.01
            x, z = _against_wall(wall, back, cu, w, d)
            put(Placement(i, (x, 0.0, z), yaw))
            u += along + float(rng.uniform(0.02, 0.4))
        if rng.random() < 0.5:  # something hanging on this wall
            i = _pick(rng, lib, {"wall": 1.0})
            if i >= 0:
                e = lib.entries[i]
                cu = float(rng.uniform(e.width / 2, max(e.width / 2, length - e.width / 2)))
                back = e.depth / 2 + 0.005
                x, z = _against_wall(wall, back, cu, w, d)
                room.placements.append(Placement(i, (x, e.elevation, z), yaw))
    # In the middle: dining / desk groups and lounge groups.
    for _ in range(int(rng.integers(1, 4))):
        cx, cz = float(rng.uniform(0.8, w - 0.8)), float(rng.uniform(0.8, d - 0.8))
        yaw = float(rng.uniform(-math.pi, math.pi))
        if rng.random() < 0.65:
            t = _pick(rng, lib, {"table": 1.0})
            if t < 0 or not put(Placement(t, (cx, 0.0, cz), yaw)):
                continue
            e = lib.entries[t]
            for k in range(int(rng.integers(0, 5))):
                c = _pick(rng, lib, {"chair": 1.0})
                if c < 0:
                    break
                side = k * math.pi / 2 + yaw
                reach = (e.depth if k % 2 == 0 else e.width) / 2 + 0.25
                px, pz = cx - math.sin(side) * reach, cz - math.cos(side) * reach
                put(Placement(c, (px, 0.0, pz), side + float(rng.normal(0, 0.2))))
        else:
            s = _pick(rng, lib, {"sofa": 1.0, "chair": 0.3, "person": 0.2, "plant": 0.3})
            if s >= 0:
                put(Placement(s, (cx, 0.0, cz), yaw))
    # Clutter on table tops and shelves, then on the floor.
    for si in list(room.surfaces):
        p = room.placements[si]
        e = lib.entries[p.entry]
        top = lib.surface_height(p.entry)
        if not 0.25 < top < 1.6 or e.width < 0.25 or e.depth < 0.2:
            continue
        taken: list[tuple[float, ...]] = []
        for _ in range(int(rng.integers(2, 10))):  # tries: some collide and are skipped
            i = _pick(rng, lib, {"small": 1.0})
            if i < 0:
                break
            s = lib.entries[i]
            if s.width > 0.8 * e.width or s.depth > 0.8 * e.depth:
                continue
            lx = float(rng.uniform(-(e.width - s.width) / 2, (e.width - s.width) / 2)) * 0.9
            lz = float(rng.uniform(-(e.depth - s.depth) / 2, (e.depth - s.depth) / 2)) * 0.9
            fp = (lx - s.width / 2, lz - s.depth / 2, lx + s.width / 2, lz + s.depth / 2)
            if _overlaps(fp, taken, 0.01):
                continue
            taken.append(fp)
            c, sn = math.cos(p.yaw), math.sin(p.yaw)
            wx, wz = p.position[0] + c * lx + sn * lz, p.position[2] - sn * lx + c * lz
            sy = p.yaw + float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2]))
            sy += float(rng.normal(0, 0.3))
            room.placements.append(Placement(i, (wx, top, wz), sy))
    for _ in range(int(rng.integers(0, 5))):
        i = _pick(rng, lib, {"small": 1.0})
        if i >= 0:
            x, z = float(rng.uniform(0.2, w - 0.2)), float(rng.uniform(0.2, d - 0.2))
            put(Placement(i, (x, 0.0, z), float(rng.uniform(-math.pi, math.pi))))
    # Lights near the ceiling, warm or cool, and sometimes a bright window.
    for k in range(int(rng.integers(1, 4))):
        warm = rng.random()
        colour = (1.0, 0.85 + 0.15 * (1 - warm), 0.65 + 0.35 * (1 - warm))
        pos = (float(rng.uniform(0.3, w - 0.3)), h - float(rng.uniform(0.1, 0.6)),
               float(rng.uniform(0.3, d - 0.3)))
        room.lights.append(PointLight(pos, float(rng.uniform(1.5, 6.0)) / (k + 1), colour))
    room.light_radius = float(rng.choice([0.02, 0.1, 0.3]))
    room.ambient = float(rng.uniform(0.08, 0.4))
    room.ambient_color = tuple(float(v) for v in np.exp(rng.normal(0, 0.08, 3)))
    if rng.random() < 0.4:
        wall = int(rng.integers(4))
        length = d if wall < 2 else w
        u0 = float(rng.uniform(0.1, max(0.2, length - 1.6)))
        room.window = (wall, u0, min(length - 0.05, u0 + float(rng.uniform(0.6, 2.0))),
                       float(rng.uniform(0.5, 1.0)), h - float(rng.uniform(0.2, 0.5)))
        room.window_emission = float(rng.uniform(1.5, 5.0))
    room.pose = place_camera(rng, lib, room)
    return room


def _inside_furniture(lib: FurnitureLibrary, room: RoomLayout, p: np.ndarray) -> bool:
    for pl in room.placements:
        e = lib.entries[pl.entry]
        x0, z0, x1, z1 = _footprint(lib, pl)
        y0 = pl.position[1]
        if x0 - 0.1 < p[0] < x1 + 0.1 and z0 - 0.1 < p[2] < z1 + 0.1 and y0 - 0.05 < p[1] < (
            y0 + e.height + 0.1
        ):
            return True
    return False


def place_camera(
    rng: np.random.Generator,
    lib: FurnitureLibrary,
    room: RoomLayout,
) -> CameraPose:
    """Draw a room view or (30% of the time, when there is a table) a table-top close-up."""
    w, h, d = room.size
    if room.surfaces and rng.random() < 0.3:
        for _ in range(20):
            p = room.placements[room.surfaces[int(rng.integers(len(room.surfaces)))]]
            top = lib.surface_height(p.entry)
            if not 0.25 < top < 1.3:
                continue
            e = lib.entries[p.entry]
            target = np.array([
                p.position[0] + float(rng.uniform(-0.3, 0.3)) * e.width,
                top + 0.05,
                p.position[2] + float(rng.uniform(-0.3, 0.3)) * e.depth,
            ])
            dist = float(rng.uniform(0.3, 1.0))
            elev = math.radians(float(rng.uniform(20, 70)))
            az = float(rng.uniform(-math.pi, math.pi))
            off = np.array([math.sin(az) * math.cos(elev), math.sin(elev),
                            math.cos(az) * math.cos(elev)])
            cam = target + dist * off
            if not (0.1 < cam[0] < w - 0.1 and 0.1 < cam[2] < d - 0.1 and cam[1] < h - 0.1):
                continue
            if _inside_furniture(lib, room, cam):
                continue
            room.kind = "mesh_closeup"
            return _look(rng, cam, target)
    for attempt in range(50):
        r = rng.random()
        height = rng.uniform(0.3, 0.9) if r < 0.45 else (
            rng.uniform(1.3, 1.8) if r < 0.9 else rng.uniform(0.9, 1.3))
        cam = np.array([rng.uniform(0.3, w - 0.3), float(height), rng.uniform(0.3, d - 0.3)])
        if _inside_furniture(lib, room, cam) and attempt < 49:
            continue
        if room.placements and rng.random() < 0.8:
            p = room.placements[int(rng.integers(len(room.placements)))]
            e = lib.entries[p.entry]
            target = np.array([p.position[0], p.position[1] + e.height / 2, p.position[2]])
        else:
            target = np.array([rng.uniform(0, w), rng.uniform(0.3, h - 0.3), rng.uniform(0, d)])
        if np.linalg.norm((target - cam)[[0, 2]]) < 0.8:
            continue  # too close to aim at: pick another target
        # Robots and people look roughly level: ceilings and floors should not fill the view.
        return _look(rng, cam, target, (-0.6, 0.3))
    return _look(rng, np.array([w / 2, 1.2, 0.3]), np.array([w / 2, 1.0, d]))


def _look(
    rng: np.random.Generator,
    cam: np.ndarray,
    target: np.ndarray,
    pitch_range: tuple[float, float] = (-1.5, 1.5),
) -> CameraPose:
    v = target - cam
    yaw = math.atan2(v[0], v[2]) + float(rng.normal(0, 0.08))
    pitch = math.atan2(v[1], math.hypot(v[0], v[2])) + float(rng.normal(0, 0.05))
    pitch = min(max(pitch, pitch_range[0]), pitch_range[1])
    roll = float(rng.normal(0, 0.03))
    return CameraPose(tuple(float(x) for x in cam), look_rotation(yaw, pitch, roll))
