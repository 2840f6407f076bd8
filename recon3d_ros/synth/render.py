"""Render a scene to an RGB image and its exact metric depth.

Shading is deliberately cheap but has the cues real photos have: Lambertian point lights with
inverse-square falloff and hard shadows, a sun with shadows, hemispheric ambient, emissive
windows, sky, then a camera: auto exposure, white balance, gamma, vignetting, blur, sensor
noise and JPEG compression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError
from recon3d_ros.synth.geometry import Box, RoomShell, cast_rays, occluded
from recon3d_ros.synth.scenes import CameraPose, Scene, sample_scene
from recon3d_ros.synth.textures import fbm, shade_material, surface_uv

__all__ = ["SynthFrame", "camera_rays", "render_scene", "render_frame", "HFOV_RANGE_DEG"]

HFOV_RANGE_DEG = (50.0, 100.0)


@dataclass(frozen=True)
class SynthFrame:
    """One rendered view: ``depth`` is z in metres, ``inf`` where the ray sees sky."""

    rgb: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32]
    camera: PinholeCamera
    kind: str = ""
    seed: int = 0


def camera_rays(
    camera: PinholeCamera, pose: CameraPose
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """World-space origins and unnormalised directions (optical z = 1) per pixel, row-major."""
    u, v = np.meshgrid(
        np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64)
    )
    d_cam = np.stack(
        [(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u)], -1
    ).reshape(-1, 3)
    d = d_cam @ np.asarray(pose.rotation, dtype=np.float64).T
    o = np.broadcast_to(np.asarray(pose.position, dtype=np.float64), d.shape)
    return o, d  # o is a broadcast view: primitives use that to share work across rays


def _albedo(scene: Scene, hits, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    albedo = np.zeros_like(points)
    emissive = np.zeros(points.shape[0])
    for i, prim in enumerate(scene.primitives):
        sel = np.nonzero(hits.index == i)[0]
        if sel.size == 0:
            continue
        p, n = points[sel], hits.normal[sel]
        if isinstance(prim, Box) and prim.yaw != 0.0:
            # Texture in the box's own frame so grain and tiles follow its edges.
            c, s = math.cos(prim.yaw), math.sin(prim.yaw)
            rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
            p, n = (p - np.asarray(prim.center)) @ rot, n @ rot
        u, v = surface_uv(p, n)
        if isinstance(prim, RoomShell):
            faces = prim.face_index(n)
            for f in np.unique(faces):
                m = faces == f
                mat = prim.materials[min(int(f), len(prim.materials) - 1)]
                albedo[sel[m]] = shade_material(mat, u[m], v[m])
                emissive[sel[m]] = mat.emissive
        else:
            albedo[sel] = shade_material(prim.material, u, v)
            emissive[sel] = prim.material.emissive
    return albedo, emissive


def _sky(d: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    up = np.clip(dn[:, 1], -0.2, 1.0)
    horizon = np.array([0.75, 0.82, 0.9]) * (0.8 + 0.4 * rng.random())
    zenith = np.array([0.25, 0.45, 0.85]) * (0.7 + 0.5 * rng.random())
    t = np.sqrt(np.clip(up, 0, 1))[:, None]
    sky = horizon * (1 - t) + zenith * t
    cloud = np.clip(
        fbm(dn[:, 0] / (up + 0.15) * 3, dn[:, 2] / (up + 0.15) * 3, 3) * 2.0 * rng.random() + 0.1,
        0,
        1,
    )
    return sky * (1 - cloud[:, None]) + cloud[:, None] * 0.95 * 1.2


def hemisphere_ambient(
    ambient_rgb: npt.ArrayLike, normals: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Ambient light per point: floors get more sky/ceiling bounce than ceilings get."""
    return np.asarray(ambient_rgb)[None] * (0.65 + 0.35 * normals[:, 1:2])


def lamp_irradiance(
    intensity: float, normals: npt.NDArray[np.float64], to_light: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Lambert over inverse square, the square floored at 0.05 m^2 (no blow-up at a lamp)."""
    dist2 = np.einsum("ij,ij->i", to_light, to_light)
    lam = np.maximum(np.einsum("ij,ij->i", normals, to_light), 0.0) / np.sqrt(dist2)
    out: npt.NDArray[np.float64] = intensity * lam / np.maximum(dist2, 0.05)
    return out


def render_scene(
    scene: Scene,
    camera: PinholeCamera,
    pose: CameraPose | None = None,
    rng: np.random.Generator | None = None,
    effects: bool = True,
) -> SynthFrame:
    """Ray cast ``scene`` from ``pose`` (default: the scene's) through ``camera``."""
    pose = pose if pose is not None else scene.pose
    if pose is None:
        raise ConfigError("render_scene needs a camera pose: pass pose= or set scene.pose")
    rng = rng if rng is not None else np.random.default_rng(0)
    o, d = camera_rays(camera, pose)
    hits = cast_rays(scene.primitives, o, d)
    hit = np.isfinite(hits.t)
    depth = np.where(hit, hits.t, np.inf).astype(np.float32).reshape(camera.height, camera.width)

    color = np.zeros_like(d)
    if scene.sky:
        miss = ~hit
        color[miss] = _sky(d[miss], rng) * 1.3
    idx = np.nonzero(hit)[0]
    if idx.size:
        t = hits.t[idx]
        points = o[idx] + t[:, None] * d[idx]
        normals = hits.normal[idx]
        sub_hits = type(hits)(t, hits.index[idx], normals)
        albedo, emissive = _albedo(scene, sub_hits, points)
        light = hemisphere_ambient(np.asarray(scene.ambient_color) * scene.ambient, normals)
        blockers = [p for p in scene.primitives if not isinstance(p, RoomShell)]
        for k, lamp in enumerate(scene.lights):
            to_l = np.asarray(lamp.position)[None] - points
            irr = lamp_irradiance(lamp.intensity, normals, to_l)
            if lamp.shadows and k == 0 and blockers:
                lit = irr > 0
                shadow = occluded(blockers, points[lit], to_l[lit], np.ones(int(lit.sum())))
                irr[np.nonzero(lit)[0][shadow]] = 0.0
            light += irr[:, None] * np.asarray(lamp.color)[None]
        if scene.sun is not None:
            sd = np.asarray(scene.sun.direction, dtype=np.float64)
            lam = np.maximum(normals @ sd, 0.0)
            lit = lam > 0
            if lit.any():
                if scene.sky:
                    sun_blockers = [p for p in scene.primitives if not hasattr(p, "normal")]
                else:
                    # Indoors the sun only enters through windows: light patches stand in for them.
                    sun_blockers = blockers
                    pl = points[lit] - sd[None] * (points[lit, 1:2] / max(sd[1], 0.2))
                    lam[np.nonzero(lit)[0][fbm(pl[:, 0] * 0.8, pl[:, 2] * 0.8, 2) < 0.12]] = 0.0
                    lit = lam > 0
                shadow = occluded(
                    sun_blockers,
                    points[lit],
                    np.broadcast_to(sd, (int(lit.sum()), 3)).copy(),
                    np.full(int(lit.sum()), 1e4),
                )
                lam[np.nonzero(lit)[0][shadow]] = 0.0
            light += (scene.sun.intensity * lam)[:, None] * np.asarray(scene.sun.color)[None]
        color[idx] = albedo * light + albedo * emissive[:, None]
    img = color.reshape(camera.height, camera.width, 3)
    rgb = _camera_effects(img, rng) if effects else _tonemap(img, 1.0)
    return SynthFrame(rgb, depth, camera, scene.kind)


def _tonemap(img: npt.NDArray[np.float64], exposure: float) -> npt.NDArray[np.uint8]:
    x = np.clip(img * exposure, 0, None)
    x = x / (1.0 + 0.15 * x)  # soft shoulder instead of hard clipping
    return (np.clip(x, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


def _camera_effects(
    img: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    import cv2

    h, w = img.shape[:2]
    lum = img.mean(axis=2)
    ref = float(np.percentile(lum, 90)) + 1e-6
    exposure = (0.55 + 0.6 * rng.random()) / ref
    gains = np.exp(rng.normal(0, 0.08, size=3))  # white balance error
    img = img * gains[None, None]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vignette = 1.0 - (0.35 * rng.random()) * r2 / 2
    img = img * vignette[..., None]
    out = _tonemap(img, exposure).astype(np.float32)
    sigma = 0.3 + 0.9 * rng.random()
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    out += rng.normal(0, 0.5 + 3.5 * rng.random(), size=out.shape).astype(np.float32)
    rgb = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(
            ".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 95))]
        )
        if ok:
            rgb = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(rgb)


def check_render_size(width: int, height: int) -> None:
    """Raise ConfigError for a frame smaller than 8x8."""
    if width < 8 or height < 8:
        raise ConfigError(f"render size must be at least 8x8, got {width}x{height}")


def random_camera(
    rng: np.random.Generator,
    width: int,
    height: int,
    hfov_deg: float | None = None,
    jitter_principal: bool = True,
) -> PinholeCamera:
    """Draw the camera of a synthetic frame, after its scene (both generators use it).

    Field of view ``hfov_deg``, else a draw from :data:`HFOV_RANGE_DEG`; the principal point
    jittered a little off centre so the network does not rely on it.
    """
    fov = hfov_deg if hfov_deg is not None else float(rng.uniform(*HFOV_RANGE_DEG))
    base = PinholeCamera.from_fov(width, height, fov)
    jx, jy = rng.normal(0, 0.02, size=2)  # drawn even when unused, so seeds give the same scene
    if not jitter_principal:
        jx = jy = 0.0
    return PinholeCamera(
        width, height, base.fx, base.fy, base.cx + jx * width, base.cy + jy * height
    )


def render_frame(
    seed: int,
    width: int = 256,
    height: int = 192,
    hfov_deg: float | None = None,
    kind: str | None = None,
    effects: bool = True,
    jitter_principal: bool = True,
) -> SynthFrame:
    """Render a random scene and camera, fully determined by ``seed``.

    ``hfov_deg`` defaults to a draw from :data:`HFOV_RANGE_DEG`; the principal point is jittered
    a little off centre so the network does not rely on it.
    """
    check_render_size(width, height)
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, kind)
    camera = random_camera(rng, width, height, hfov_deg, jitter_principal)
    frame = render_scene(scene, camera, rng=rng, effects=effects)
    return SynthFrame(frame.rgb, frame.depth, camera, scene.kind, seed)
