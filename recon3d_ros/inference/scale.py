"""Metric scale for relative depth networks (pure numpy, no ROS).

Relative networks (MiDaS, Depth Anything) predict inverse depth up to an unknown scale and
shift. Everything here works in *disparity* space, where that ambiguity is affine::

    metric_disparity = scale * relative_disparity + shift,   depth = 1 / metric_disparity

Sources of scale:

* fixed values (:func:`fixed_scale_shift`);
* sparse metric measurements, e.g. LiDAR points moved into the camera frame with a static
  extrinsic, or a depth image (:func:`fit_scale_shift`: RANSAC on minimal pairs, then iteratively
  reweighted least squares with Huber weights on *relative* residuals, so one far outlier
  cannot pull the fit and near and far points count alike);
* a known camera height above a floor (:func:`ground_plane_scale`: RANSAC plane in the
  back-projected lower image, scale so its distance equals the height; scale only).

:class:`ScaleSmoother` filters estimates over time (EMA of log-scale, jumps rejected unless
they persist), and :class:`MetricScaler` ties it together for the node: feed it reference
measurements as they arrive and call :meth:`MetricScaler.apply` on every relative depth map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError

__all__ = [
    "ScaleShift",
    "ScaleMode",
    "fixed_scale_shift",
    "disparity_from_depth",
    "apply_scale_shift",
    "project_points",
    "sample_at",
    "fit_scale_shift",
    "ground_plane_scale",
    "ScaleSmoother",
    "MetricScaler",
]

FloatArray = npt.NDArray[np.floating]
ScaleMode = Literal["none", "fixed", "sparse", "ground"]
SCALE_MODES: tuple[str, ...] = ("none", "fixed", "sparse", "ground")


@dataclass(frozen=True)
class ScaleShift:
    """``metric_disparity = scale * relative_disparity + shift`` (1/m)."""

    scale: float
    shift: float = 0.0
    inliers: int = 0
    residual: float = math.nan  # robust spread (MAD-sigma) of relative depth error on inliers

    def apply(self, disparity: FloatArray) -> npt.NDArray[np.float32]:
        return apply_scale_shift(disparity, self.scale, self.shift)


def fixed_scale_shift(scale: float, shift: float = 0.0) -> ScaleShift:
    if not (math.isfinite(scale) and scale > 0) or not math.isfinite(shift):
        raise ConfigError(
            f"scale must be finite and > 0 and shift finite, got {scale} and {shift}"
        )
    return ScaleShift(float(scale), float(shift))


def disparity_from_depth(depth: FloatArray) -> npt.NDArray[np.float32]:
    """1 / depth, NaN where depth is not a positive finite number."""
    d = np.asarray(depth, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.isfinite(d) & (d > 0), 1.0 / d, np.nan)
    return out.astype(np.float32)


def apply_scale_shift(
    disparity: FloatArray, scale: float, shift: float
) -> npt.NDArray[np.float32]:
    """Metric depth from relative disparity; NaN where the metric disparity is not positive."""
    metric = np.asarray(disparity, dtype=np.float32) * np.float32(scale) + np.float32(shift)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(metric > 0, 1.0 / metric, np.nan)
    return depth.astype(np.float32)


# ---------------------------------------------------------------------------- measurements
def project_points(
    points: FloatArray, extrinsic: FloatArray, camera: PinholeCamera, min_depth: float = 0.1
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Sensor-frame N x 3 points to pixel ``(u, v)`` and camera depth ``z`` inside the image.

    ``extrinsic`` is the 4 x 4 transform from the sensor frame to the camera optical frame
    (REP 103: z forward, x right, y down). Points behind the camera or off the image are dropped.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(extrinsic, dtype=np.float64).reshape(4, 4)
    cam = pts @ t[:3, :3].T + t[:3, 3]
    cam = cam[np.isfinite(cam).all(axis=1) & (cam[:, 2] > min_depth)]
    uv = camera.project(cam)
    inside = (
        (uv[:, 0] >= -0.5)
        & (uv[:, 0] < camera.width - 0.5)
        & (uv[:, 1] >= -0.5)
        & (uv[:, 1] < camera.height - 0.5)
    )
    return uv[inside, 0], uv[inside, 1], cam[inside, 2]


def sample_at(image: FloatArray, u: FloatArray, v: FloatArray) -> npt.NDArray[np.float64]:
    """Nearest-pixel samples of ``image`` at continuous pixel coordinates (NaN stays NaN)."""
    img = np.asarray(image)
    cols = np.clip(np.rint(u).astype(np.int64), 0, img.shape[1] - 1)
    rows = np.clip(np.rint(v).astype(np.int64), 0, img.shape[0] - 1)
    return img[rows, cols].astype(np.float64)


def _valid_pairs(pred: FloatArray, target_depth: FloatArray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    z = np.asarray(target_depth, dtype=np.float64).reshape(-1)
    if p.shape != z.shape:
        raise ConfigError(f"prediction and measurement sizes differ: {p.shape} vs {z.shape}")
    ok = np.isfinite(p) & np.isfinite(z) & (z > 0) & (p > 0)
    return p[ok], 1.0 / z[ok]


def _exact_fit(d: np.ndarray, t: np.ndarray, scale_only: bool) -> tuple[float, float]:
    """Solve ``s d + b = t`` through a minimal sample (1 point scale-only, else 2)."""
    if scale_only:
        return float(t[0] / d[0]), 0.0
    if d[0] == d[1]:
        return math.nan, math.nan
    s = float((t[1] - t[0]) / (d[1] - d[0]))
    return s, float(t[0] - s * d[0])


def _log_residuals(d: np.ndarray, t: np.ndarray, s: float, b: float) -> np.ndarray:
    """log(predicted depth / measured depth); +inf where the prediction is not positive."""
    m = s * d + b
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(t) - np.log(m)
    return np.where(m > 0, r, np.inf)


def fit_scale_shift(
    pred_disparity: FloatArray,
    metric_depth: FloatArray,
    *,
    scale_only: bool = False,
    min_points: int = 10,
    ransac_trials: int = 64,
    huber_k: float = 1.345,
    iterations: int = 20,
    inlier_threshold: float = 0.15,
    rng: np.random.Generator | None = None,
) -> ScaleShift | None:
    """Robust affine (or scale-only) fit of relative disparity to metric depth samples.

    The model is affine in disparity, the error is measured in log depth (symmetric: 2x too near
    costs as much as 2x too far, which relative disparity errors do not). RANSAC on minimal
    samples (scored by the median log error) starts Gauss-Newton iterations with Huber weights;
    samples far off (> 4 robust sigmas and > ``inlier_threshold``) get no weight.

    Returns None when fewer than ``min_points`` valid pairs exist or no plausible fit
    (positive scale) is found; the caller keeps its previous estimate.
    ``inlier_threshold`` is the relative depth error under which a sample counts as inlier.
    """
    d, t = _valid_pairs(pred_disparity, metric_depth)
    size = 1 if scale_only else 2
    if d.size < max(min_points, size):
        return None
    generator = rng if rng is not None else np.random.default_rng(0)
    best: tuple[float, float] | None = None
    best_score = math.inf
    for _ in range(ransac_trials):
        idx = generator.choice(d.size, size=size, replace=False)
        s, b = _exact_fit(d[idx], t[idx], scale_only)
        if not (math.isfinite(s) and s > 0 and math.isfinite(b)):
            continue
        score = float(np.median(np.abs(_log_residuals(d, t, s, b))))
        if score < best_score:
            best, best_score = (s, b), score
    if best is None:
        return None
    s, b = best
    cutoff = math.log1p(inlier_threshold)
    for _ in range(iterations):
        m = s * d + b
        r = _log_residuals(d, t, s, b)
        finite = np.isfinite(r)
        sigma = max(1.4826 * float(np.median(np.abs(r[finite] - np.median(r[finite])))), 1e-6)
        u = np.abs(r) / sigma
        w = np.where(u <= huber_k, 1.0, huber_k / np.maximum(u, 1e-12))
        w[~finite | (np.abs(r) > max(cutoff, 4.0 * sigma))] = 0.0
        if np.count_nonzero(w) < size:
            break
        keep = w > 0
        # d log(m) / d(s, b) = (d, 1) / m; solve J delta = r in the weighted least-squares sense.
        jac = (d[keep] / m[keep])[:, None]
        if not scale_only:
            jac = np.concatenate([jac, (1.0 / m[keep])[:, None]], axis=1)
        sw = np.sqrt(w[keep])
        delta, *_ = np.linalg.lstsq(jac * sw[:, None], r[keep] * sw, rcond=None)
        s_new = s + float(delta[0])
        b_new = b + (0.0 if scale_only else float(delta[1]))
        if not (math.isfinite(s_new) and s_new > 0):
            break
        step = abs(s_new - s) / s + (0.0 if scale_only else abs(b_new - b) / (abs(b) + s))
        s, b = s_new, b_new
        if step < 1e-9:
            break
    r = _log_residuals(d, t, s, b)
    inliers = np.abs(r) <= cutoff
    if inliers.sum() < max(min_points // 2, size):
        return None
    spread = 1.4826 * float(np.median(np.abs(r[inliers] - np.median(r[inliers]))))
    return ScaleShift(s, b, int(inliers.sum()), spread)


# ---------------------------------------------------------------------------- ground plane
def _backproject(depth: FloatArray, camera: PinholeCamera, rows: slice, step: int) -> np.ndarray:
    z = np.asarray(depth, dtype=np.float64)[rows, ::step][:, :]
    v = np.arange(depth.shape[0], dtype=np.float64)[rows][:, None]
    u = np.arange(0, depth.shape[1], step, dtype=np.float64)[None, :]
    x = (u - camera.cx) / camera.fx * z
    y = (v - camera.cy) / camera.fy * z
    pts = np.stack([x, np.broadcast_to(y, z.shape), z], axis=-1).reshape(-1, 3)
    return pts[np.isfinite(pts).all(axis=1) & (pts[:, 2] > 0)]


def ground_plane_scale(
    relative_depth: FloatArray,
    camera: PinholeCamera,
    camera_height: float,
    *,
    lower_fraction: float = 0.35,
    max_tilt_deg: float = 30.0,
    inlier_fraction: float = 0.01,
    min_inlier_ratio: float = 0.2,
    trials: int = 200,
    max_points: int = 6000,
    rng: np.random.Generator | None = None,
) -> ScaleShift | None:
    """Scale from a known camera height: the floor must lie ``camera_height`` below the camera.

    ``relative_depth`` is depth up to scale (shift-free; an affine-invariant map must be close
    to shift-free for the floor to be planar). Searches the lower ``lower_fraction`` of the
    image for a plane whose normal is within ``max_tilt_deg`` of the camera's down axis.
    Returns the disparity-space :class:`ScaleShift` (shift 0), or None when no floor is found.
    """
    if camera_height <= 0:
        raise ConfigError(f"camera_height must be > 0 metres, got {camera_height}")
    depth = np.asarray(relative_depth, dtype=np.float64)
    h, w = depth.shape
    start = int(round(h * (1.0 - lower_fraction)))
    step = max(1, int(math.sqrt(max(1, (h - start) * w / max_points))))
    pts = _backproject(depth, camera, slice(start, h, step), step)
    if len(pts) < 50:
        return None
    generator = rng if rng is not None else np.random.default_rng(0)
    threshold = inlier_fraction * float(np.median(pts[:, 2]))
    cos_tilt = math.cos(math.radians(max_tilt_deg))
    best_inliers: np.ndarray | None = None
    for _ in range(trials):
        a, b, c = pts[generator.choice(len(pts), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = float(np.linalg.norm(normal))
        if norm < 1e-12:
            continue
        normal /= norm
        if abs(normal[1]) < cos_tilt:  # the floor normal points along the optical y (down) axis
            continue
        inliers = np.abs((pts - a) @ normal) < threshold
        if best_inliers is None or inliers.sum() > best_inliers.sum():
            best_inliers = inliers
    if best_inliers is None or best_inliers.sum() < min_inlier_ratio * len(pts):
        return None
    floor = pts[best_inliers]
    centroid = floor.mean(axis=0)
    _, _, vt = np.linalg.svd(floor - centroid, full_matrices=False)
    normal = vt[2]
    distance = abs(float(normal @ centroid))
    if distance <= 1e-9 or abs(normal[1]) < cos_tilt:
        return None
    if normal[1] < 0:
        normal = -normal
    if float(normal @ centroid) <= 0:  # the plane must lie below the camera (+y is down)
        return None
    factor = camera_height / distance  # metric depth = factor * relative depth
    residual = float(np.std((floor - centroid) @ normal) / distance)
    return ScaleShift(1.0 / factor, 0.0, int(best_inliers.sum()), residual)


# ---------------------------------------------------------------------------- over time
@dataclass
class ScaleSmoother:
    """EMA of log-scale (and of shift) with rejection of sudden jumps.

    An estimate whose log-scale differs from the current one by more than ``max_log_jump``
    is held back; only after ``patience`` consecutive such estimates that agree with each other
    (within ``max_log_jump``) is the filter reset to them (the scene really changed).
    """

    alpha: float = 0.2
    max_log_jump: float = 0.25
    patience: int = 5
    current: ScaleShift | None = None
    rejected: int = 0
    _pending: list[ScaleShift] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"smoothing alpha must be in (0, 1], got {self.alpha}")
        if self.max_log_jump <= 0 or self.patience < 1:
            raise ConfigError("max_log_jump must be > 0 and patience >= 1")

    def update(self, estimate: ScaleShift | None) -> ScaleShift | None:
        if estimate is None:
            return self.current
        if self.current is None:
            self.current = estimate
            return self.current
        jump = abs(math.log(estimate.scale) - math.log(self.current.scale))
        if jump > self.max_log_jump:
            self.rejected += 1
            if (
                self._pending
                and abs(math.log(estimate.scale) - math.log(self._pending[-1].scale))
                > self.max_log_jump
            ):
                self._pending.clear()
            self._pending.append(estimate)
            if len(self._pending) >= self.patience:
                self.current = self._pending[-1]
                self._pending.clear()
            return self.current
        self._pending.clear()
        a = self.alpha
        log_s = (1 - a) * math.log(self.current.scale) + a * math.log(estimate.scale)
        shift = (1 - a) * self.current.shift + a * estimate.shift
        self.current = ScaleShift(math.exp(log_s), shift, estimate.inliers, estimate.residual)
        return self.current

    def reset(self) -> None:
        self.current = None
        self.rejected = 0
        self._pending.clear()


# ---------------------------------------------------------------------------- node facade
@dataclass
class ScaleState:
    """What diagnostics report about the scale."""

    mode: str
    scale: float | None
    shift: float | None
    updates: int
    rejected: int
    last_inliers: int
    last_residual: float


class MetricScaler:
    """Per-frame metric scale for a relative depth map, as the node uses it.

    ``apply(relative_depth, camera)`` takes the engine's output for a relative model (depth up to
    an affine map of its inverse, i.e. ``1 / raw`` with the preset's scale 1 and shift 0) and
    returns metric depth, NaN where unknown. Reference measurements are fed with
    :meth:`set_reference_points` / :meth:`set_reference_depth` whenever they arrive; each is
    used once, by the next :meth:`apply`. Until a first estimate exists, the output is all NaN
    (``sparse``/``ground``) rather than a depth of unknown scale.
    """

    def __init__(
        self,
        mode: ScaleMode = "none",
        *,
        scale: float = 1.0,
        shift: float = 0.0,
        camera_height: float = 0.0,
        extrinsic: Sequence[float] | FloatArray | None = None,
        smoothing: float = 0.2,
        max_log_jump: float = 0.25,
        patience: int = 5,
        min_points: int = 20,
        scale_only: bool = False,
    ) -> None:
        if mode not in SCALE_MODES:
            raise ConfigError(f"scale mode must be one of {SCALE_MODES}, got {mode!r}")
        if mode == "ground" and camera_height <= 0:
            raise ConfigError(
                "scale mode 'ground' needs camera_height > 0 (metres above the floor)"
            )
        self.mode = mode
        self.fixed = fixed_scale_shift(scale, shift)
        self.camera_height = float(camera_height)
        ext = (
            np.eye(4)
            if extrinsic is None or len(np.asarray(extrinsic).reshape(-1)) == 0
            else np.asarray(extrinsic, dtype=np.float64)
        )
        if ext.size != 16 or not np.isfinite(ext).all():
            raise ConfigError(
                f"extrinsic must be 16 finite numbers (4x4 row-major), got {ext.size}"
            )
        self.extrinsic = ext.reshape(4, 4)
        self.min_points = int(min_points)
        self.scale_only = bool(scale_only)
        self.smoother = ScaleSmoother(smoothing, max_log_jump, patience)
        self._points: np.ndarray | None = None
        self._depth: np.ndarray | None = None
        self._updates = 0
        self._last: ScaleShift | None = None

    def set_reference_points(self, points: FloatArray) -> None:
        """N x 3 metric points in the sensor frame (``extrinsic`` takes them to the camera)."""
        self._points = np.asarray(points, dtype=np.float64).reshape(-1, 3)

    def set_reference_depth(self, depth: FloatArray) -> None:
        """Set a metric depth image registered to the camera image (0 or NaN = no measurement)."""
        self._depth = np.asarray(depth, dtype=np.float64)

    def estimate(self, relative_depth: FloatArray, camera: PinholeCamera) -> ScaleShift | None:
        """Estimate this frame's scale (before smoothing); None without usable references."""
        disparity = disparity_from_depth(relative_depth)
        if self.mode == "ground":
            return ground_plane_scale(relative_depth, camera, self.camera_height)
        if self.mode != "sparse":
            return None
        preds: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        if self._points is not None:
            u, v, z = project_points(self._points, self.extrinsic, camera)
            preds.append(sample_at(disparity, u, v))
            targets.append(z)
            self._points = None
        if self._depth is not None:
            ref = self._depth
            if ref.shape != disparity.shape:
                import cv2

                ref = cv2.resize(
                    ref, (disparity.shape[1], disparity.shape[0]), interpolation=cv2.INTER_NEAREST
                )
            preds.append(disparity.reshape(-1).astype(np.float64))
            targets.append(ref.reshape(-1))
            self._depth = None
        if not preds:
            return None
        return fit_scale_shift(
            np.concatenate(preds),
            np.concatenate(targets),
            scale_only=self.scale_only,
            min_points=self.min_points,
        )

    def apply(self, relative_depth: FloatArray, camera: PinholeCamera) -> npt.NDArray[np.float32]:
        if self.mode == "none":
            return np.asarray(relative_depth, dtype=np.float32)
        disparity = disparity_from_depth(relative_depth)
        if self.mode == "fixed":
            return self.fixed.apply(disparity)
        raw = self.estimate(relative_depth, camera)
        if raw is not None:
            self._updates += 1
            self._last = raw
        current = self.smoother.update(raw)
        if current is None:
            return np.full(disparity.shape, np.nan, dtype=np.float32)
        return current.apply(disparity)

    @property
    def state(self) -> ScaleState:
        current = self.fixed if self.mode == "fixed" else self.smoother.current
        return ScaleState(
            self.mode,
            None if current is None else current.scale,
            None if current is None else current.shift,
            self._updates,
            self.smoother.rejected,
            0 if self._last is None else self._last.inliers,
            math.nan if self._last is None else self._last.residual,
        )
