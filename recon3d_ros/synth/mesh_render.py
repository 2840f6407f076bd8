"""Ray cast textured triangle meshes (Open3D's Embree ``RaycastingScene``, CPU) to RGB-D.

Camera rays are the same unnormalised optical rays as :mod:`recon3d_ros.synth.render` uses
(``R @ ((u - cx) / fx, (v - cy) / fy, 1)``), so Embree's hit distance ``t`` is exactly the
z-depth in the optical frame (REP 103: x right, y down, z forward). Appearance per hit: the
face's texture at its barycentric UV (bilinear, wrapped), its material colour when it has no
texture, or a procedural material (:mod:`recon3d_ros.synth.textures`) at metric surface
coordinates. Light: hemispheric ambient plus point lights with Lambert, inverse-square falloff
and shadow rays towards a point jittered over the light's radius (soft edges), then the same
camera model as the procedural generator (exposure, white balance, vignetting, blur, noise,
JPEG).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.synth.geometry import Material, yaw_matrix
from recon3d_ros.synth.render import (
    SynthFrame,
    _camera_effects,
    _tonemap,
    camera_rays,
    check_render_size,
    hemisphere_ambient,
    lamp_irradiance,
    random_camera,
)
from recon3d_ros.synth.scenes import CameraPose, PointLight
from recon3d_ros.synth.textures import shade_material, surface_uv

__all__ = ["MeshScene", "build_room_scene", "render_mesh_frame", "default_assets"]

F = npt.NDArray[np.float64]


@dataclass
class _Faces:
    color: npt.NDArray[np.float32]  # F x 3 linear albedo (multiplies the texture)
    texture: npt.NDArray[np.int32]  # F, -1: none
    procedural: npt.NDArray[np.int32]  # F, -1: none
    emission: npt.NDArray[np.float32]  # F
    uvs: npt.NDArray[np.float32]  # F x 3 x 2


class MeshScene:
    """Triangle meshes with appearance, ray cast through a pinhole camera."""

    def __init__(self) -> None:
        import open3d as o3d

        self._o3d = o3d
        self._scene = o3d.t.geometry.RaycastingScene()
        self._offsets: list[int] = []  # first global face of each geometry id
        self._faces: list[_Faces] = []
        self._count = 0
        self.textures: list[npt.NDArray[np.float32]] = []  # linear RGB, H x W x 3
        self._texture_ids: dict[int, int] = {}
        self.materials: list[Material] = []

    def add_texture(self, srgb: npt.NDArray[np.uint8], key: int | None = None) -> int:
        """Register an sRGB image; the same ``key`` returns the same id without a copy."""
        if key is not None and key in self._texture_ids:
            return self._texture_ids[key]
        self.textures.append((np.asarray(srgb, np.float32) / 255.0) ** 2.2)
        tid = len(self.textures) - 1
        if key is not None:
            self._texture_ids[key] = tid
        return tid

    def add_material(self, mat: Material) -> int:
        self.materials.append(mat)
        return len(self.materials) - 1

    def add_mesh(
        self,
        vertices: npt.ArrayLike,
        faces: npt.ArrayLike,
        color: npt.ArrayLike,
        uvs: npt.ArrayLike | None = None,
        texture: npt.ArrayLike | int = -1,
        procedural: npt.ArrayLike | int = -1,
        emission: npt.ArrayLike | float = 0.0,
    ) -> None:
        """Add triangles (world metres); per-face ``color`` (F x 3 or 3), texture ids, UVs."""
        o3d = self._o3d
        v = np.ascontiguousarray(vertices, np.float32)
        f = np.ascontiguousarray(faces, np.uint32)
        n = f.shape[0]
        if n == 0:
            return
        self._scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
        self._offsets.append(self._count)
        self._count += n
        self._faces.append(
            _Faces(
                np.broadcast_to(np.asarray(color, np.float32), (n, 3)),
                np.broadcast_to(np.asarray(texture, np.int32), (n,)),
                np.broadcast_to(np.asarray(procedural, np.int32), (n,)),
                np.broadcast_to(np.asarray(emission, np.float32), (n,)),
                np.zeros((n, 3, 2), np.float32) if uvs is None else np.asarray(uvs, np.float32),
            )
        )

    def _merged(self) -> _Faces:
        fs = self._faces
        return _Faces(*(np.concatenate([getattr(f, k) for f in fs]) for k in (
            "color", "texture", "procedural", "emission", "uvs")))

    def render(
        self,
        camera: PinholeCamera,
        pose: CameraPose,
        lights: list[PointLight] = (),
        ambient: float = 0.3,
        ambient_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
        light_radius: float = 0.0,
        rng: np.random.Generator | None = None,
        effects: bool = True,
    ) -> tuple[SynthFrame, F]:
        """Return the frame and the linear albedo image (H x W x 3) before light and camera."""
        o3d = self._o3d
        rng = rng if rng is not None else np.random.default_rng(0)
        h, w = camera.height, camera.width
        o, d = camera_rays(camera, pose)
        rays = np.concatenate([np.asarray(o), d], axis=1).astype(np.float32)
        ans = self._scene.cast_rays(o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy().astype(np.float64)
        hit = np.isfinite(t)
        depth = np.where(hit, t, np.inf).astype(np.float32).reshape(h, w)
        albedo = np.zeros((h * w, 3))
        color = np.zeros((h * w, 3))
        idx = np.nonzero(hit)[0]
        if idx.size and self._faces:
            faces = self._merged()
            gid = ans["geometry_ids"].numpy()[idx].astype(np.int64)
            face = np.asarray(self._offsets, np.int64)[gid] + ans["primitive_ids"].numpy()[idx]
            bary = ans["primitive_uvs"].numpy()[idx].astype(np.float64)
            normals = ans["primitive_normals"].numpy()[idx].astype(np.float64)
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
            dd = d[idx]
            normals[np.einsum("ij,ij->i", normals, dd) > 0] *= -1  # two-sided: face the camera
            points = np.asarray(o)[idx] + t[idx, None] * dd
            alb = self._albedo(faces, face, bary, points, normals)
            light = self._light(points, normals, lights, ambient, ambient_color, light_radius, rng)
            albedo[idx] = alb
            color[idx] = alb * (light + faces.emission[face, None])
        img = color.reshape(h, w, 3)
        rgb = _camera_effects(img, rng) if effects else _tonemap(img, 1.0)
        return SynthFrame(rgb, depth, camera, "mesh"), albedo.reshape(h, w, 3)

    def _albedo(self, faces: _Faces, face, bary: F, points: F, normals: F) -> F:
        out = faces.color[face].astype(np.float64)
        tex = faces.texture[face]
        proc = faces.procedural[face]
        if (tex >= 0).any():
            sel = np.nonzero(tex >= 0)[0]
            corner = faces.uvs[face[sel]].astype(np.float64)  # n x 3 x 2
            b1, b2 = bary[sel, 0:1], bary[sel, 1:2]
            uv = (1 - b1 - b2) * corner[:, 0] + b1 * corner[:, 1] + b2 * corner[:, 2]
            for k in np.unique(tex[sel]):
                m = tex[sel] == k
                out[sel[m]] *= _bilinear(self.textures[int(k)], uv[m])
        if (proc >= 0).any():
            sel = np.nonzero(proc >= 0)[0]
            u, v = surface_uv(points[sel], normals[sel])
            for k in np.unique(proc[sel]):
                m = proc[sel] == k
                out[sel[m]] *= shade_material(self.materials[int(k)], u[m], v[m])
        return out

    def _light(self, points, normals, lights, ambient, ambient_color, radius, rng) -> F:
        o3d = self._o3d
        light = hemisphere_ambient(np.asarray(ambient_color) * ambient, normals)
        start = points + normals * 2e-3
        for lamp in lights:
            target = np.asarray(lamp.position)[None] + _ball(rng, len(points)) * radius
            to_l = target - start
            irr = lamp_irradiance(lamp.intensity, normals, to_l)
            lit = np.nonzero(irr > 0)[0]
            if lamp.shadows and lit.size:
                rays = np.concatenate([start[lit], to_l[lit]], axis=1).astype(np.float32)
                blocked = self._scene.test_occlusions(
                    o3d.core.Tensor(rays), tnear=0.0, tfar=0.999
                ).numpy()
                irr[lit[blocked.astype(bool)]] = 0.0
            light += irr[:, None] * np.asarray(lamp.color)[None]
        return light


def _ball(rng: np.random.Generator, n: int) -> F:
    v = rng.normal(size=(n, 3))
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v * rng.random((n, 1)) ** (1 / 3)


def _bilinear(tex: npt.NDArray[np.float32], uv: F) -> F:
    """Sample a wrapped texture; OBJ convention: v = 0 is the bottom row of the image."""
    th, tw = tex.shape[:2]
    x = (uv[:, 0] % 1.0) * tw - 0.5
    y = (1.0 - uv[:, 1] % 1.0) * th - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64) % tw, y0.astype(np.int64) % th
    x1, y1 = (x0 + 1) % tw, (y0 + 1) % th
    return (
        (tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx) * (1 - fy)
        + (tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx) * fy
    )


# ---------------------------------------------------------------------------- rooms
def _add_shell(scene: MeshScene, room, surfaces) -> None:
    w, h, d = room.size
    quads = [  # corners counter-clockwise, (u, v) axes of the metric texture coordinates
        ("floor", [(0, 0, 0), (w, 0, 0), (w, 0, d), (0, 0, d)], (0, 2)),
        ("ceiling", [(0, h, 0), (w, h, 0), (w, h, d), (0, h, d)], (0, 2)),
        ("wall0", [(0, 0, 0), (0, 0, d), (0, h, d), (0, h, 0)], (2, 1)),
        ("wall1", [(w, 0, 0), (w, 0, d), (w, h, d), (w, h, 0)], (2, 1)),
        ("wall2", [(0, 0, 0), (w, 0, 0), (w, h, 0), (0, h, 0)], (0, 1)),
        ("wall3", [(0, 0, d), (w, 0, d), (w, h, d), (0, h, d)], (0, 1)),
    ]
    looks = [room.floor, room.ceiling, *room.walls]
    for (_, corners, axes), look in zip(quads, looks):
        v = np.asarray(corners, np.float64)
        tri = np.array([[0, 1, 2], [0, 2, 3]])
        if look.texture >= 0:
            tid = scene.add_texture(surfaces.images[look.texture], key=look.texture)
            uv = v[:, list(axes)] / look.scale
            scene.add_mesh(v, tri, look.tint, uvs=uv[tri], texture=tid)
        else:
            scene.add_mesh(v, tri, (1.0, 1.0, 1.0), procedural=scene.add_material(look.material))
    if room.window is not None:
        wall, u0, u1, y0, y1 = room.window
        e = 0.004  # in front of the wall, so the wall behind never wins the depth test
        if wall == 0:
            corners = [(e, y0, u0), (e, y0, u1), (e, y1, u1), (e, y1, u0)]
        elif wall == 1:
            corners = [(w - e, y0, u0), (w - e, y0, u1), (w - e, y1, u1), (w - e, y1, u0)]
        elif wall == 2:
            corners = [(u0, y0, e), (u1, y0, e), (u1, y1, e), (u0, y1, e)]
        else:
            corners = [(u0, y0, d - e), (u1, y0, d - e), (u1, y1, d - e), (u0, y1, d - e)]
        sky = Material((0.75, 0.82, 0.95), (0.5, 0.6, 0.5), "plaster", 1.0, 0.8)
        scene.add_mesh(np.asarray(corners), [[0, 1, 2], [0, 2, 3]], (1.0, 1.0, 1.0),
                       procedural=scene.add_material(sky), emission=room.window_emission)


def build_room_scene(room, library, surfaces) -> MeshScene:
    """Geometry of a :class:`~recon3d_ros.synth.rooms.RoomLayout`: shell plus placed models."""
    scene = MeshScene()
    _add_shell(scene, room, surfaces)
    for p in room.placements:
        m = library.model(p.entry)
        rot = yaw_matrix(p.yaw)
        v = m.vertices.astype(np.float64) @ rot.T + np.asarray(p.position)
        tex_ids = np.full(len(m.material_texture), -1, np.int32)
        for k, t in enumerate(m.material_texture):
            if t >= 0:
                tex_ids[k] = scene.add_texture(m.textures[t], key=hash((p.entry, int(t))))
        mat = m.face_material.astype(np.int64)
        colors = np.where((tex_ids[mat] >= 0)[:, None], 1.0, m.colors[mat])
        scene.add_mesh(v, m.faces, colors, uvs=m.uvs, texture=tex_ids[mat])
    return scene


_ASSETS: dict[tuple[str, str], tuple] = {}


def default_assets(
    furniture_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> tuple:
    """``(FurnitureLibrary, SurfaceTextures)``, loaded once per process.

    Defaults: ``/usr/share/sweethome3d/furniture`` and ``~/.cache/recon3d/furniture``; the
    environment variables ``RECON3D_FURNITURE_DIR`` / ``RECON3D_FURNITURE_CACHE`` override them.
    """
    import os

    from recon3d_ros.synth.furniture import (
        DEFAULT_CACHE_DIR,
        DEFAULT_FURNITURE_DIR,
        FurnitureLibrary,
        load_surfaces,
    )

    fdir = str(furniture_dir or os.environ.get("RECON3D_FURNITURE_DIR", DEFAULT_FURNITURE_DIR))
    cdir = str(cache_dir or os.environ.get("RECON3D_FURNITURE_CACHE", DEFAULT_CACHE_DIR))
    key = (fdir, cdir)
    if key not in _ASSETS:
        _ASSETS[key] = (FurnitureLibrary(fdir, cdir), load_surfaces(fdir, cdir))
    return _ASSETS[key]


def render_mesh_frame(
    seed: int,
    width: int = 256,
    height: int = 192,
    hfov_deg: float | None = None,
    effects: bool = True,
    jitter_principal: bool = True,
    assets: tuple | None = None,
) -> SynthFrame:
    """Render a random furnished room, fully determined by ``seed`` (and the installed assets).

    Same camera draw as :func:`recon3d_ros.synth.render.render_frame`: field of view from
    :data:`HFOV_RANGE_DEG`, principal point jittered off centre.
    """
    from recon3d_ros.synth.rooms import sample_room

    check_render_size(width, height)
    library, surfaces = assets if assets is not None else default_assets()
    rng = np.random.default_rng(seed)
    room = sample_room(rng, library, surfaces)
    camera = random_camera(rng, width, height, hfov_deg, jitter_principal)
    scene = build_room_scene(room, library, surfaces)
    frame, _ = scene.render(
        camera, room.pose, room.lights, room.ambient, room.ambient_color, room.light_radius,
        rng, effects,
    )
    return SynthFrame(frame.rgb, frame.depth, camera, room.kind, seed)
