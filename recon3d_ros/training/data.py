"""Training samples from synthetic frames and real RGB-D folders.

Frames (cached or rendered on the fly, or from folders) become fixed-size network inputs with
log canonical depth targets.

Target: ``log(depth * canonical_focal / fx)`` where ``fx`` is the focal length of the crop the
network sees (Metric3D's canonical camera), so the same weights serve any intrinsics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import resize_image
from recon3d_ros.core.model_config import IMAGENET_MEAN, IMAGENET_STD
from recon3d_ros.errors import ConfigError, DatasetError

__all__ = [
    "RawSample",
    "SampleSource",
    "SyntheticSource",
    "FolderSource",
    "Augment",
    "STRONG_AUGMENT",
    "make_batch",
    "to_sample",
]


@dataclass
class RawSample:
    rgb: npt.NDArray[np.uint8]  # H x W x 3
    depth: npt.NDArray[np.float32]  # H x W metres; inf sky, NaN or 0 unknown
    intrinsics: tuple[float, float, float, float]  # fx, fy, cx, cy


class SampleSource(Protocol):
    name: str

    def __len__(self) -> int: ...

    def get(self, index: int) -> RawSample: ...


class SyntheticSource:
    """Frames from pre-rendered cache folders, or rendered from seeds when there is none.

    ``cache`` is one folder or several; with several, ``weights`` (one per folder) set the
    share of samples each gives, whatever its size (default: in proportion to frame counts,
    i.e. the folders simply concatenated).
    """

    def __init__(
        self,
        cache: str | Path | Sequence[str | Path] | None = None,
        first_seed: int = 1_000_000,
        count: int = 10_000,
        width: int = 256,
        height: int = 192,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.name = "synthetic"
        self.first_seed, self.count, self.width, self.height = first_seed, count, width, height
        self.cache = None
        self.caches: list = []
        folders = [] if cache is None else [cache] if isinstance(cache, (str, Path)) else cache
        if weights is not None:
            if len(weights) != len(folders):
                raise ConfigError(
                    f"{len(weights)} synthetic cache weights for {len(folders)} caches: "
                    "give one weight per --synth-cache"
                )
            if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
                raise ConfigError(f"synthetic cache weights must be >= 0 and not all 0: {weights}")
        self.weights = None if weights is None else [float(w) for w in weights]
        if folders:
            from recon3d_ros.training.cache import SynthCache

            self.caches = [SynthCache(f) for f in folders]
            self.cache = self.caches[0]

    def refresh(self) -> None:
        for c in self.caches:
            c.refresh()

    def __len__(self) -> int:
        return sum(len(c) for c in self.caches) if self.caches else self.count

    def _locate(self, index: int) -> tuple[int, int]:
        """Cache number and frame in it for a global ``index``."""
        sizes = [len(c) for c in self.caches]
        if self.weights is None or len(self.caches) == 1:
            k = int(np.searchsorted(np.cumsum(sizes), index, side="right"))
            return k, index - int(sum(sizes[:k]))
        # Weighted: a low-discrepancy fraction of the index picks the cache, so uniformly drawn
        # indices give each cache its weight's share; empty caches get none.
        w = np.asarray([wt if n > 0 else 0.0 for wt, n in zip(self.weights, sizes)])
        if w.sum() <= 0:
            raise DatasetError("all weighted synthetic caches are empty")
        frac = (index * 0.6180339887498949) % 1.0
        k = int(np.searchsorted(np.cumsum(w) / w.sum(), frac, side="right"))
        k = min(k, len(sizes) - 1)
        return k, index % sizes[k]

    def get(self, index: int) -> RawSample:
        if self.caches:
            k, i = self._locate(index)
            rgb, depth, intr = self.caches[k][i]
            return RawSample(rgb, depth, tuple(float(v) for v in intr))
        from recon3d_ros.synth import render_frame

        f = render_frame(self.first_seed + index, self.width, self.height)
        c = f.camera
        return RawSample(f.rgb, f.depth, (c.fx, c.fy, c.cx, c.cy))


class FolderSource:
    """Real frames from RGB-D folders in the ``../shared/data/rgbd`` layout (for fine-tuning)."""

    def __init__(self, folders: Sequence[str | Path]) -> None:
        from recon3d_ros.evaluation.dataset import load_rgbd_folder

        self.name = "folders:" + ",".join(str(f) for f in folders)
        self.frames = [fr for folder in folders for fr in load_rgbd_folder(folder)]

    def __len__(self) -> int:
        return len(self.frames)

    def get(self, index: int) -> RawSample:
        fr = self.frames[index]
        c = fr.camera
        return RawSample(fr.rgb, fr.depth_m, (c.fx, c.fy, c.cx, c.cy))


@dataclass(frozen=True)
class Augment:
    """Random view and photometric changes; ``enabled=False`` gives a plain centred resize."""

    enabled: bool = True
    max_extra_scale: float = 1.33  # zoom in up to this factor beyond "just covers the crop"
    flip: float = 0.5
    letterbox: float = 0.1  # black bands (as the letterbox resize of a wide image makes)
    color: float = 0.8  # probability of the gamma / white balance / saturation / gain jitter
    # Spread (log sigma) of the exposure gain: real cameras under- and over-expose far more
    # than the renderer's auto exposure does (a 0.6x gain moved v2's KITTI error by a third).
    exposure_sigma: float = 0.2
    # In-plane rotation about the principal point (degrees, uniform +-): z-depth is unchanged by
    # a roll about the optical axis, so targets stay exact; hand-held and robot cameras roll.
    rotate_deg: float = 0.0
    blur: float = 0.0  # probability of a Gaussian blur (defocus, motion)
    noise: float = 0.0  # probability of additive sensor noise


# What the shipped stage-3 model was fine-tuned with (``recon3d train --augment strong``).
STRONG_AUGMENT = Augment(exposure_sigma=0.4, rotate_deg=12.0, blur=0.25, noise=0.3)


def _rotate_about(
    rgb: npt.NDArray[np.uint8], depth: npt.NDArray[np.float32], cx: float, cy: float, deg: float
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Roll the view by ``deg`` about ``(cx, cy)``; depth outside the source becomes NaN."""
    import cv2

    h, w = depth.shape
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(deg), 1.0)
    rgb = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    depth = cv2.warpAffine(
        depth, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    return rgb, depth


def to_sample(
    raw: RawSample,
    width: int,
    height: int,
    canonical_focal: float,
    max_depth: float,
    rng: np.random.Generator,
    aug: Augment,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``(input 3xHxW normalised, log canonical depth 1xHxW, valid mask 1xHxW)``."""
    import cv2

    rgb, depth = raw.rgb, np.asarray(raw.depth, np.float32)
    fx, fy, cx, cy = raw.intrinsics
    if aug.enabled and aug.rotate_deg > 0:
        rgb, depth = _rotate_about(
            rgb, depth, cx, cy, float(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
        )
    h0, w0 = depth.shape
    cover = max(width / w0, height / h0)
    scale = cover * (float(rng.uniform(1.0, aug.max_extra_scale)) if aug.enabled else 1.0)
    # Keep the native pixel scale when it already covers the crop (the most natural view).
    if aug.enabled and cover <= 1.0 and rng.random() < 0.5:
        scale = max(cover, min(1.0, scale))
    nw, nh = max(width, int(round(w0 * scale))), max(height, int(round(h0 * scale)))
    sx, sy = nw / w0, nh / h0
    if (nw, nh) != (w0, h0):
        rgb = resize_image(rgb, nw, nh)
        depth = cv2.resize(depth, (nw, nh), interpolation=cv2.INTER_NEAREST)
    fx, fy, cx, cy = fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5
    if aug.enabled:
        x0, y0 = int(rng.integers(0, nw - width + 1)), int(rng.integers(0, nh - height + 1))
    else:
        x0, y0 = (nw - width) // 2, (nh - height) // 2
    rgb = rgb[y0:y0 + height, x0:x0 + width]
    depth = depth[y0:y0 + height, x0:x0 + width]
    img = rgb.astype(np.float32) / 255.0
    valid = np.isfinite(depth) & (depth > 0.05) & (depth < max_depth)
    if aug.enabled:
        if rng.random() < aug.flip:
            img, depth, valid = img[:, ::-1], depth[:, ::-1], valid[:, ::-1]
        if rng.random() < aug.color:
            img = img ** float(np.exp(rng.normal(0, 0.2)))  # gamma
            gains = np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)
            gray = img.mean(axis=2, keepdims=True)
            sat = float(np.clip(rng.normal(1.0, 0.25), 0.3, 1.6))
            gain = float(np.exp(rng.normal(0, aug.exposure_sigma)))
            img = (gray + (img - gray) * sat) * gains * gain
            img = np.clip((img - 0.5) * float(np.exp(rng.normal(0, 0.15))) + 0.5, 0, 1)
        if rng.random() < aug.blur:
            img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), float(rng.uniform(0.3, 1.3)))
        if rng.random() < aug.noise:
            sigma = float(rng.uniform(0.005, 0.03))
            img = np.clip(img + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 1)
        if rng.random() < aug.letterbox:
            band = int(rng.integers(1, max(2, int(height * 0.35))))
            img = img.copy()
            valid = valid.copy()
            img[:band] = 0
            img[height - band:] = 0
            valid[:band] = False
            valid[height - band:] = False
    x = (img - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(valid, np.log(np.where(valid, depth, 1.0) * (canonical_focal / fx)), 0.0)
    return (
        np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32),
        np.ascontiguousarray(target[None], dtype=np.float32),
        np.ascontiguousarray(valid[None], dtype=np.float32),
    )


def make_batch(
    sources: Sequence[SampleSource],
    weights: Sequence[float],
    batch: int,
    width: int,
    height: int,
    canonical_focal: float,
    max_depth: float,
    rng: np.random.Generator,
    aug: Augment,
):
    """Build a training batch: three float32 arrays (inputs, log targets, masks)."""
    p = np.asarray(weights, np.float64)
    p = p / p.sum()
    xs, ts, ms = [], [], []
    for _ in range(batch):
        src = sources[int(rng.choice(len(sources), p=p))]
        raw = src.get(int(rng.integers(len(src))))
        x, t, m = to_sample(raw, width, height, canonical_focal, max_depth, rng, aug)
        xs.append(x)
        ts.append(t)
        ms.append(m)
    return np.stack(xs), np.stack(ts), np.stack(ms)
