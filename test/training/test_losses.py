"""Loss terms: zero at the target, scale invariance where promised, masks respected."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.training.losses import (  # noqa: E402
    depth_loss,
    gradient_matching_loss,
    l1_log_loss,
    silog_loss,
)


def _data():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 16, 16, generator=g) * 2
    mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.2).float()
    return target, mask


def test_perfect_prediction_has_zero_loss():
    target, mask = _data()
    total, parts = depth_loss(target.clone(), target, mask)
    assert float(total) == pytest.approx(0.0, abs=1e-3)  # silog has a 1e-8 floor under its sqrt
    assert parts["l1"] == 0.0 and parts["grad"] == 0.0


def test_global_scale_error_is_seen_by_l1_not_by_gradients():
    target, mask = _data()
    pred = target + math.log(2.0)  # everything twice as far
    diff = (pred - target) * mask
    assert float(l1_log_loss(diff, mask)) == pytest.approx(math.log(2.0), rel=1e-5)
    assert float(gradient_matching_loss(diff, mask)) == pytest.approx(0.0, abs=1e-6)
    # With lambda = 1 the scale-invariant log error ignores a global scale entirely.
    assert float(silog_loss(diff, mask, lam=1.0)) == pytest.approx(0.0, abs=1e-3)
    assert float(silog_loss(diff, mask, lam=0.85)) > 0.1


def test_masked_pixels_do_not_count():
    target, mask = _data()
    pred = target.clone()
    pred[mask == 0] += 100.0
    total, _ = depth_loss(pred, target, mask)
    assert float(total) == pytest.approx(0.0, abs=1e-3)
    empty = torch.zeros_like(mask)
    total_empty, _ = depth_loss(pred, target, empty)
    assert float(total_empty) == 0.0


def test_loss_backpropagates():
    target, mask = _data()
    pred = torch.zeros_like(target, requires_grad=True)
    total, _ = depth_loss(pred, target, mask)
    total.backward()
    assert float(pred.grad.abs().sum()) > 0
