"""Sample preparation: crops, intrinsics bookkeeping and canonical log-depth targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.model_config import IMAGENET_MEAN, IMAGENET_STD
from recon3d_ros.training.data import Augment, RawSample, SyntheticSource, make_batch, to_sample


def _raw(depth_value=2.0, fx=100.0):
    rgb = np.full((48, 64, 3), 128, np.uint8)
    depth = np.full((48, 64), depth_value, np.float32)
    depth[:5] = np.inf  # sky
    depth[-3:] = np.nan  # unknown
    return RawSample(rgb, depth, (fx, fx, 31.5, 23.5))


def test_target_is_log_of_canonical_depth_without_augmentation():
    x, t, m = to_sample(
        _raw(2.0, 100.0), 64, 48, 50.0, 80.0, np.random.default_rng(0), Augment(enabled=False)
    )
    assert x.shape == (3, 48, 64) and t.shape == (1, 48, 64) and m.shape == (1, 48, 64)
    valid = m[0] > 0
    assert not valid[:5].any() and not valid[-3:].any() and valid[10:40].all()
    np.testing.assert_allclose(t[0][valid], math.log(2.0 * 50.0 / 100.0), rtol=1e-6)
    expected = (128 / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert x[0, 20, 20] == pytest.approx(expected, rel=1e-5)


def test_downscaled_crop_changes_focal_and_target_consistently():
    """Resizing the view by s scales fx by s, so the canonical target changes by 1/s."""
    raw = _raw(3.0, 100.0)
    _, t_full, m = to_sample(
        raw, 32, 24, 100.0, 80.0, np.random.default_rng(0), Augment(enabled=False)
    )
    # 64x48 -> cover 32x24 means a 0.5x resize: fx 50, canonical depth 3 * 100 / 50 = 6.
    assert np.exp(t_full[0][m[0] > 0]).mean() == pytest.approx(6.0, rel=1e-5)


def test_augmented_batches_are_reproducible_and_within_range():
    src = [_FixedSource()]
    a = make_batch(src, [1.0], 4, 32, 24, 50.0, 80.0, np.random.default_rng(5), Augment())
    b = make_batch(src, [1.0], 4, 32, 24, 50.0, 80.0, np.random.default_rng(5), Augment())
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    x, t, m = a
    assert x.shape == (4, 3, 24, 32) and np.isfinite(x).all() and np.isfinite(t).all()
    assert set(np.unique(m)) <= {0.0, 1.0}


def test_synthetic_source_renders_when_no_cache():
    src = SyntheticSource(None, first_seed=5, count=3, width=32, height=24)
    s = src.get(1)
    assert len(src) == 3 and s.rgb.shape == (24, 32, 3) and s.depth.shape == (24, 32)


class _FixedSource:
    name = "fixed"

    def __len__(self) -> int:
        return 2

    def get(self, index: int) -> RawSample:
        rng = np.random.default_rng(index)
        rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        depth = rng.uniform(0.5, 10, (48, 64)).astype(np.float32)
        return RawSample(rgb, depth, (60.0, 60.0, 31.5, 23.5))


def test_roll_keeps_depth_values_and_masks_what_left_the_view():
    """A roll about the optical axis does not change z, so rotated targets are exact."""
    rgb = np.full((48, 64, 3), 100, np.uint8)
    depth = np.tile(np.linspace(1.0, 4.0, 64, dtype=np.float32), (48, 1))
    raw = RawSample(rgb, depth, (60.0, 60.0, 31.5, 23.5))
    aug = Augment(max_extra_scale=1.0, flip=0.0, letterbox=0.0, color=0.0, rotate_deg=30.0)
    _, t, m = to_sample(raw, 64, 48, 60.0, 80.0, np.random.default_rng(4), aug)  # a 27 deg roll
    valid = m[0] > 0
    # The corners rotate out of the source and become invalid; the centre stays valid.
    assert not valid.all() and valid[20:28, 28:36].all()
    values = np.exp(t[0][valid])
    assert values.min() >= 1.0 - 1e-5 and values.max() <= 4.0 + 1e-5
    # The centre column's depth moved: the image really was rotated, not left as it was.
    plain = Augment(enabled=False)
    unrotated, _, _ = to_sample(raw, 64, 48, 60.0, 80.0, np.random.default_rng(4), plain)
    assert not np.allclose(t[0][10:38, 20:44], unrotated[0][10:38, 20:44])


def test_strong_augmentation_changes_exposure_more_than_standard():
    from recon3d_ros.training.data import STRONG_AUGMENT

    src = [_FixedSource()]

    def spread(aug):
        x, _, _ = make_batch(src, [1.0], 64, 32, 24, 50.0, 80.0, np.random.default_rng(2), aug)
        return float(np.std(x.reshape(64, -1).mean(axis=1)))

    assert STRONG_AUGMENT.rotate_deg > 0 and STRONG_AUGMENT.blur > 0 and STRONG_AUGMENT.noise > 0
    assert spread(STRONG_AUGMENT) > 1.2 * spread(Augment())
