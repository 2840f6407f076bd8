"""Pictures for humans: depth colormaps with a metre legend and a side view of a point cloud.

OpenCV draws; numpy renders the point cloud (a z-buffered splat), so no 3-D viewer is needed
to check that a PLY holds a recognisable scene.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["depth_range", "colorize_depth", "depth_panel", "side_by_side", "render_points"]

_INVALID_BGR = (40, 40, 40)
_BACKGROUND_RGB = (36, 38, 46)  # dark, as in most 3-D viewers: white walls stay visible


def depth_range(
    depth: npt.NDArray[np.floating], low_pct: float = 2.0, high_pct: float = 98.0
) -> tuple[float, float]:
    """Return a robust metre range of the finite depths (percentiles) for the colour scale."""
    finite = depth[np.isfinite(depth) & (depth > 0)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    if hi - lo < 1e-3:
        hi = lo + 1e-3
    return float(lo), float(hi)


def colorize_depth(
    depth: npt.NDArray[np.floating], near: float, far: float
) -> npt.NDArray[np.uint8]:
    """Depth in metres to a BGR TURBO image (near = red, far = blue); invalid pixels dark grey."""
    import cv2

    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    norm = np.zeros(d.shape, dtype=np.float32)
    norm[valid] = (d[valid] - near) / max(far - near, 1e-6)
    # Invert so near is warm, the usual reading of a depth map.
    levels = (255.0 * (1.0 - np.clip(norm, 0.0, 1.0))).astype(np.uint8)
    colored = cv2.applyColorMap(levels, cv2.COLORMAP_TURBO)
    colored[~valid] = _INVALID_BGR
    return colored


def _legend(height: int, near: float, far: float, width: int = 70) -> npt.NDArray[np.uint8]:
    """Draw a vertical colour bar labelled in metres, matching :func:`colorize_depth`."""
    import cv2

    bar_w = 16
    margin = min(10, height // 6)
    panel = np.full((height, width, 3), 255, dtype=np.uint8)
    bar_h = max(height - 2 * margin, 2)
    ramp = np.linspace(near, far, bar_h, dtype=np.float32)[:, None].repeat(bar_w, axis=1)
    rows, cols = slice(margin, margin + bar_h), slice(4, 4 + bar_w)
    panel[rows, cols] = colorize_depth(ramp, near, far)
    scale = max(0.3, min(0.45, height / 600.0))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = near + frac * (far - near)
        y = int(margin + frac * (bar_h - 1))
        cv2.line(panel, (4 + bar_w, y), (4 + bar_w + 4, y), (0, 0, 0), 1)
        text_y = min(max(y + 4, 10), height - 2)
        cv2.putText(
            panel,
            f"{value:.2f}",
            (4 + bar_w + 6, text_y),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    cv2.putText(
        panel,
        "m",
        (4, max(margin - 1, 8)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return panel


def depth_panel(
    depth: npt.NDArray[np.floating], near: float | None = None, far: float | None = None
) -> npt.NDArray[np.uint8]:
    """Colourised depth plus its legend, BGR."""
    if near is None or far is None:
        near, far = depth_range(depth)
    return np.concatenate(
        [colorize_depth(depth, near, far), _legend(depth.shape[0], near, far)], axis=1
    )


def side_by_side(
    rgb: npt.NDArray[np.uint8],
    depth: npt.NDArray[np.floating],
    near: float | None = None,
    far: float | None = None,
    min_height: int = 240,
) -> npt.NDArray[np.uint8]:
    """RGB (left) next to its depth colormap and legend (right), as a BGR image to save.

    Images shorter than ``min_height`` are enlarged by a whole factor (nearest neighbour, so
    pixels stay pixels) to leave room for a readable legend.
    """
    import cv2

    if near is None or far is None:
        near, far = depth_range(depth)
    factor = max(1, math.ceil(min_height / max(depth.shape[0], 1)))
    if factor > 1:
        size = (depth.shape[1] * factor, depth.shape[0] * factor)
        depth = cv2.resize(
            np.asarray(depth, dtype=np.float32), size, interpolation=cv2.INTER_NEAREST
        )
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_NEAREST)
    panel = depth_panel(depth, near, far)
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if bgr.shape[0] != panel.shape[0]:
        scale = panel.shape[0] / bgr.shape[0]
        bgr = cv2.resize(bgr, (max(1, round(bgr.shape[1] * scale)), panel.shape[0]))
    return np.concatenate([bgr, panel], axis=1)


def _rotation(yaw_deg: float, pitch_deg: float) -> npt.NDArray[np.float64]:
    """Rotate optical-frame points (x right, y down, z forward) about the cloud's centre.

    ``yaw`` turns about the vertical (y) axis, ``pitch`` tilts about x (positive looks down).
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    r_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return r_pitch @ r_yaw


def render_points(
    points: npt.NDArray[np.floating],
    colors: npt.NDArray[np.uint8] | None = None,
    width: int = 640,
    height: int = 480,
    yaw_deg: float = 35.0,
    pitch_deg: float = 15.0,
    point_size: int = 2,
) -> npt.NDArray[np.uint8]:
    """Splat N x 3 optical-frame points into an RGB image seen from a virtual camera.

    The virtual camera orbits the cloud's centre by ``yaw``/``pitch`` and backs off until the
    whole cloud fits, so a wall, a floor and objects in front of them read as 3-D shapes rather
    than as the original photo. A z-buffer keeps the nearest point per pixel.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    image = np.full((height, width, 3), _BACKGROUND_RGB, dtype=np.uint8)
    keep = np.all(np.isfinite(pts), axis=1)
    pts = pts[keep]
    if pts.shape[0] == 0:
        return image
    if colors is None:
        cols = np.full((pts.shape[0], 3), 80, dtype=np.uint8)
    else:
        cols = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[keep]
    centre = np.median(pts, axis=0)
    rotated = (pts - centre) @ _rotation(yaw_deg, pitch_deg).T
    # Back off along the view axis so the cloud's extent fills ~80 % of a 50 degree view.
    extent = np.percentile(np.abs(rotated[:, :2]), 98, axis=0)
    focal = 0.5 * width / math.tan(math.radians(25.0))
    depth_span = np.percentile(rotated[:, 2], 99) - np.percentile(rotated[:, 2], 1)
    distance = (
        max(focal * extent[0] / (0.45 * width), focal * extent[1] / (0.45 * height))
        + 0.25 * depth_span
        + 1e-3
    )
    z = rotated[:, 2] + distance
    front = z > 1e-3
    rotated, z, cols = rotated[front], z[front], cols[front]
    u = np.round(focal * rotated[:, 0] / z + width / 2.0).astype(np.int64)
    v = np.round(focal * rotated[:, 1] / z + height / 2.0).astype(np.int64)
    zbuf = np.full(height * width, np.inf)
    index = np.full(height * width, -1, dtype=np.int64)
    radius = max(point_size // 2, 0)
    for du in range(-radius, point_size - radius):
        for dv in range(-radius, point_size - radius):
            uu, vv = u + du, v + dv
            inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
            flat = vv[inside] * width + uu[inside]
            zs = z[inside]
            ids = np.nonzero(inside)[0]
            # Far to near, so the nearest write to a pixel wins.
            order = np.argsort(-zs, kind="stable")
            flat, zs, ids = flat[order], zs[order], ids[order]
            closer = zs < zbuf[flat]
            zbuf[flat[closer]] = zs[closer]
            index[flat[closer]] = ids[closer]
    hit = index >= 0
    image.reshape(-1, 3)[hit] = cols[index[hit]]
    return image
