"""Camera motion between two RGB-D frames when the robot has no odometry.

Two stages: ORB features matched across the pair, lifted to 3-D with the first frame's depth
and solved by PnP RANSAC (``cv2.solvePnPRansac``), which finds the motion from far away; then
Open3D's tensor RGB-D odometry (hybrid photometric + geometric, multi-scale) at 160x120
(``refine_width``) refines it. Open3D's own success flag is not trusted (it reports success on
frames that do not overlap), so a pair is accepted only with enough PnP inliers and a high enough
:func:`overlap_fitness`: the share of the second frame's pixels that, moved into the first
frame, land on the same surface (depth within ``max(3 cm, 3 %)``) with the same brightness.

In a sequence each frame is the current frame of one pair and the previous of the next:
:func:`prepare_frame` computes what depends on one frame only (grey image, ORB keypoints and
descriptors, the refinement's small images) once, and :func:`estimate_motion_between` uses it
for both pairs. :func:`estimate_motion` prepares both frames of a single pair; the result is
the same either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ReconstructionError
from recon3d_ros.reconstruction._open3d import open3d
from recon3d_ros.reconstruction.tsdf import check_pose

__all__ = [
    "OdometryFrame",
    "OdometryOptions",
    "OdometryResult",
    "estimate_motion",
    "estimate_motion_between",
    "overlap_fitness",
    "prepare_frame",
]


@dataclass(frozen=True)
class OdometryOptions:
    """Thresholds of :func:`estimate_motion` (defaults suit 640x480 indoor frames)."""

    orb_features: int = 500
    # ORB runs on the grey image resized to at most this width: 320 halves its cost but
    # loses ICL's 20-degree pair (0 inliers), so full 640x480 frames keep their resolution.
    orb_width: int = 640
    orb_levels: int = 8  # ORB pyramid levels (OpenCV's default; 4 also lost that pair)
    pnp_iterations: int = 100  # RANSAC; it stops early once the inlier share is clear
    min_inliers: int = 8  # PnP RANSAC inliers (low-texture rooms give few; fitness decides)
    min_fitness: float = 0.3  # overlap_fitness of the refined motion
    # Open3D refinement: resolution and iterations per pyramid level (coarse first, one level
    # per entry). Its cost is mostly per pixel and per level (18 ms for a single iteration at
    # 320x240 here, most of it building the pyramid): 160x120 with three levels is 8-15 ms.
    refine_width: int = 160
    refine_iterations: tuple[int, ...] = (6, 4, 2)
    fitness_stride: int = 8  # overlap_fitness samples every 8th pixel (4800 at 640x480)
    depth_max: float = 5.0
    depth_tolerance: float = 0.03  # m, and the same fraction of depth


@dataclass
class OdometryResult:
    """``pose`` is ``T_prev_curr`` (the current camera in the previous camera's frame)."""

    pose: npt.NDArray[np.float64]
    ok: bool
    fitness: float
    inliers: int
    reason: str
    timings: dict[str, float] = field(default_factory=dict)


def _grey(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    import cv2

    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


@dataclass
class OdometryFrame:
    """One frame's odometry inputs, computed once by :func:`prepare_frame`.

    ``uv`` are the ORB keypoints in full-resolution pixels (``N x 2``), ``descriptors`` their
    ORB descriptors (None without keypoints); ``small_rgb`` / ``small_depth`` the images the
    Open3D refinement runs on (``refine_width`` wide, depth NaN -> 0).
    """

    camera: PinholeCamera
    depth: npt.NDArray[np.float32]
    grey: npt.NDArray[np.uint8]
    uv: npt.NDArray[np.float64]
    descriptors: npt.NDArray[np.uint8] | None
    small_rgb: npt.NDArray[np.uint8]
    small_depth: npt.NDArray[np.float32]

    def with_depth(
        self, depth: npt.NDArray[np.floating], options: OdometryOptions | None = None
    ) -> "OdometryFrame":
        """Return the same frame with another depth (e.g. rescaled), keeping its features."""
        opt = options or OdometryOptions()
        d = np.asarray(depth, dtype=np.float32)
        _check_shape("depth", d.shape, (self.camera.height, self.camera.width))
        return OdometryFrame(
            self.camera, d, self.grey, self.uv, self.descriptors, self.small_rgb,
            _small_depth(d, self.camera, opt),
        )


def _check_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if shape != expected:
        raise ReconstructionError(f"{name} is {shape}, expected {expected} (the camera's)")


def _refine_size(camera: PinholeCamera, options: OdometryOptions) -> tuple[int, int]:
    scale = options.refine_width / camera.width
    return options.refine_width, max(1, int(round(camera.height * scale)))


def _small_depth(
    depth: npt.NDArray[np.float32], camera: PinholeCamera, options: OdometryOptions
) -> npt.NDArray[np.float32]:
    import cv2

    # Resized first, then NaN -> 0 on the small image (nearest keeps NaN as it is).
    d = cv2.resize(depth, _refine_size(camera, options), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(np.nan_to_num(d, nan=0.0), dtype=np.float32)


def prepare_frame(
    rgb: npt.NDArray[np.uint8],
    depth: npt.NDArray[np.floating],
    camera: PinholeCamera,
    options: OdometryOptions | None = None,
) -> OdometryFrame:
    """Compute one frame's odometry inputs (see :class:`OdometryFrame`)."""
    import cv2

    opt = options or OdometryOptions()
    shape = (camera.height, camera.width)
    _check_shape("depth", np.asarray(depth).shape, shape)
    _check_shape("rgb", np.asarray(rgb).shape, shape + (3,))
    d = np.asarray(depth, dtype=np.float32)
    grey = _grey(rgb)
    # Features on a smaller image when orb_width says so: ORB's cost is per pixel, and the
    # Open3D refinement, not the features, sets the final accuracy.
    factor = min(1.0, opt.orb_width / camera.width)
    small_grey = grey
    if factor < 1.0:
        size = (opt.orb_width, max(1, int(round(camera.height * factor))))
        small_grey = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), np.uint8)
    orb = cv2.ORB_create(  # type: ignore[attr-defined]
        nfeatures=opt.orb_features, nlevels=opt.orb_levels
    )
    keypoints, descriptors = orb.detectAndCompute(small_grey, None)
    # Back to full-resolution pixels (pixel centres: (u + 0.5) / factor - 0.5).
    uv = (np.array([k.pt for k in keypoints], np.float64).reshape(-1, 2) + 0.5) / factor - 0.5
    small_rgb = np.ascontiguousarray(
        cv2.resize(np.ascontiguousarray(rgb), _refine_size(camera, opt),
                   interpolation=cv2.INTER_AREA),
        dtype=np.uint8,
    )
    return OdometryFrame(camera, d, grey, uv, descriptors, small_rgb,
                         _small_depth(d, camera, opt))


def _pnp(
    frame0: OdometryFrame, frame1: OdometryFrame, options: OdometryOptions
) -> tuple[npt.NDArray[np.float64] | None, int]:
    """``(T_prev_curr, inliers)`` from ORB + PnP RANSAC, or ``(None, inliers)``."""
    import cv2

    camera, depth0 = frame0.camera, frame0.depth
    des0, des1 = frame0.descriptors, frame1.descriptors
    if des0 is None or des1 is None or len(frame0.uv) < 6 or len(frame1.uv) < 6:
        return None, 0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(des0, des1)
    if len(matches) < 6:
        return None, 0
    uv0 = frame0.uv[np.array([m.queryIdx for m in matches], np.int64)]
    uv1 = frame1.uv[np.array([m.trainIdx for m in matches], np.int64)]
    col = np.clip(np.rint(uv0[:, 0]).astype(int), 0, camera.width - 1)
    row = np.clip(np.rint(uv0[:, 1]).astype(int), 0, camera.height - 1)
    z = depth0[row, col].astype(np.float64)
    good = np.isfinite(z) & (z > 0) & (z < options.depth_max)
    if good.sum() < 6:
        return None, 0
    x = (uv0[good, 0] - camera.cx) / camera.fx * z[good]
    y = (uv0[good, 1] - camera.cy) / camera.fy * z[good]
    points = np.stack([x, y, z[good]], axis=1)
    K = np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]], np.float64)
    found, rvec, tvec, inliers = cv2.solvePnPRansac(
        points, uv1[good], K, None, iterationsCount=options.pnp_iterations,
        reprojectionError=3.0,
        confidence=0.999, flags=cv2.SOLVEPNP_EPNP,
    )
    count = 0 if inliers is None else int(len(inliers))
    if not found or count < 6:
        return None, count
    idx = inliers.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(points[idx], uv1[good][idx], K, None, rvec, tvec)
    T_curr_prev = np.eye(4)
    T_curr_prev[:3, :3] = cv2.Rodrigues(rvec)[0]
    T_curr_prev[:3, 3] = tvec.ravel()
    return np.asarray(np.linalg.inv(T_curr_prev), dtype=np.float64), count


def overlap_fitness(
    grey0: npt.NDArray[np.uint8],
    depth0: npt.NDArray[np.floating],
    grey1: npt.NDArray[np.uint8],
    depth1: npt.NDArray[np.floating],
    camera: PinholeCamera,
    T_prev_curr: npt.NDArray[np.float64],
    depth_tolerance: float = 0.03,
    intensity_tolerance: float = 25.0,
    stride: int = 4,
) -> float:
    """Share of frame 1's valid pixels that agree with frame 0 once moved by ``T_prev_curr``."""
    # Strided before any conversion: a float64 copy of the whole image cost 2 ms per frame.
    d1 = np.asarray(depth1)[::stride, ::stride].astype(np.float64)
    rows, cols = np.mgrid[0:camera.height:stride, 0:camera.width:stride]
    valid = np.isfinite(d1) & (d1 > 0)
    if not valid.any():
        return 0.0
    z = d1[valid]
    p = np.stack(
        [(cols[valid] - camera.cx) / camera.fx * z, (rows[valid] - camera.cy) / camera.fy * z, z],
        axis=1,
    )
    q = p @ T_prev_curr[:3, :3].T + T_prev_curr[:3, 3]
    front = q[:, 2] > 1e-6
    u = np.full(q.shape[0], -1.0)
    v = np.full(q.shape[0], -1.0)
    u[front] = camera.fx * q[front, 0] / q[front, 2] + camera.cx
    v[front] = camera.fy * q[front, 1] / q[front, 2] + camera.cy
    ui, vi = np.rint(u).astype(int), np.rint(v).astype(int)
    inside = front & (ui >= 0) & (ui < camera.width) & (vi >= 0) & (vi < camera.height)
    d0 = np.asarray(depth0)
    z0 = np.full(q.shape[0], np.nan)
    z0[inside] = d0[vi[inside], ui[inside]]
    tol = np.maximum(depth_tolerance, depth_tolerance * q[:, 2])
    with np.errstate(invalid="ignore"):
        same_surface = inside & (np.abs(z0 - q[:, 2]) <= tol)
    g0 = np.zeros(q.shape[0])
    g0[inside] = grey0[vi[inside], ui[inside]]
    g1 = np.asarray(grey1)[::stride, ::stride][valid].astype(np.float64)
    agree = same_surface & (np.abs(g0 - g1) <= intensity_tolerance)
    return float(agree.sum() / z.size)


def _refine(
    frame0: OdometryFrame,
    frame1: OdometryFrame,
    init: npt.NDArray[np.float64],
    options: OdometryOptions,
) -> npt.NDArray[np.float64]:
    o3d = open3d()
    o3c = o3d.core
    small = frame0.camera.resized(*_refine_size(frame0.camera, options))

    def rgbd(frame: OdometryFrame) -> object:
        return o3d.t.geometry.RGBDImage(
            o3d.t.geometry.Image(o3c.Tensor.from_numpy(frame.small_rgb)),
            o3d.t.geometry.Image(o3c.Tensor.from_numpy(frame.small_depth)),
        )

    K = o3c.Tensor(
        np.array([[small.fx, 0, small.cx], [0, small.fy, small.cy], [0, 0, 1]]), o3c.float64
    )
    criteria = [
        o3d.t.pipelines.odometry.OdometryConvergenceCriteria(n) for n in options.refine_iterations
    ]
    result = o3d.t.pipelines.odometry.rgbd_odometry_multi_scale(
        rgbd(frame1), rgbd(frame0), K, o3c.Tensor(init, o3c.float64), 1.0,
        options.depth_max, criteria, o3d.t.pipelines.odometry.Method.Hybrid,
    )
    T = np.asarray(result.transformation.numpy(), dtype=np.float64)
    return T if np.isfinite(T).all() else init


def estimate_motion(
    rgb0: npt.NDArray[np.uint8],
    depth0: npt.NDArray[np.floating],
    rgb1: npt.NDArray[np.uint8],
    depth1: npt.NDArray[np.floating],
    camera: PinholeCamera,
    init: npt.NDArray[np.floating] | None = None,
    options: OdometryOptions | None = None,
) -> OdometryResult:
    """Motion ``T_prev_curr`` of frame 1 relative to frame 0 (see the module docstring).

    ``init`` (a motion guess, e.g. the last one) is used when PnP finds none; the pair is
    still rejected then unless the refined motion has a high enough fitness and PnP inliers.
    """
    opt = options or OdometryOptions()
    shape = (camera.height, camera.width)
    for name, d in (("depth0", depth0), ("depth1", depth1)):
        if np.asarray(d).shape != shape:
            raise ReconstructionError(f"{name} is {np.asarray(d).shape}, the camera {shape}")
    for name, c in (("rgb0", rgb0), ("rgb1", rgb1)):
        if np.asarray(c).shape != shape + (3,):
            raise ReconstructionError(f"{name} is {np.asarray(c).shape}, expected {shape + (3,)}")
    t = time.perf_counter()
    frame0 = prepare_frame(rgb0, depth0, camera, opt)
    frame1 = prepare_frame(rgb1, depth1, camera, opt)
    prepare_ms = (time.perf_counter() - t) * 1e3
    result = estimate_motion_between(frame0, frame1, init, opt)
    result.timings["prepare_ms"] = prepare_ms
    return result


def estimate_motion_between(
    frame0: OdometryFrame,
    frame1: OdometryFrame,
    init: npt.NDArray[np.floating] | None = None,
    options: OdometryOptions | None = None,
) -> OdometryResult:
    """:func:`estimate_motion` of two :func:`prepare_frame` frames (same camera)."""
    opt = options or OdometryOptions()
    camera = frame0.camera
    if frame1.depth.shape != frame0.depth.shape:
        raise ReconstructionError(
            f"the frames differ in size: {frame0.depth.shape} and {frame1.depth.shape}"
        )
    d0, d1, g0, g1 = frame0.depth, frame1.depth, frame0.grey, frame1.grey
    timings: dict[str, float] = {}
    t = time.perf_counter()
    T_pnp, inliers = _pnp(frame0, frame1, opt)
    timings["pnp_ms"] = (time.perf_counter() - t) * 1e3
    start = T_pnp if T_pnp is not None else (np.eye(4) if init is None else check_pose(init))
    t = time.perf_counter()
    try:
        T = _refine(frame0, frame1, start, opt)
    except RuntimeError:  # Open3D gives up on frames with too few valid pixels
        T = start
    timings["refine_ms"] = (time.perf_counter() - t) * 1e3
    fitness = overlap_fitness(
        g0, d0, g1, d1, camera, T, opt.depth_tolerance, stride=opt.fitness_stride
    )
    if inliers < opt.min_inliers:
        reason = f"few feature inliers ({inliers} < {opt.min_inliers})"
    elif fitness < opt.min_fitness:
        reason = f"low fitness ({fitness:.2f} < {opt.min_fitness})"
    else:
        reason = ""
    return OdometryResult(T, not reason, fitness, inliers, reason, timings)
