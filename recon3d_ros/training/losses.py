"""Depth losses on log depth: scale-invariant log, L1 (metric scale) and gradient matching."""

from __future__ import annotations

import torch

__all__ = ["silog_loss", "l1_log_loss", "gradient_matching_loss", "depth_loss"]


def _per_image_counts(mask: torch.Tensor) -> torch.Tensor:
    return mask.flatten(1).sum(1)


def silog_loss(diff: torch.Tensor, mask: torch.Tensor, lam: float = 0.85) -> torch.Tensor:
    """Eigen et al.'s scale-invariant log error per image, averaged (``diff`` = log ratio)."""
    n = _per_image_counts(mask)
    ok = n > 0
    if not bool(ok.any()):
        return diff.sum() * 0.0
    d = (diff * mask).flatten(1)
    mean_d = d.sum(1) / n.clamp(min=1)
    mean_d2 = (d * d).sum(1) / n.clamp(min=1)
    var = (mean_d2 - lam * mean_d * mean_d).clamp(min=1e-8)
    return torch.sqrt(var)[ok].mean()


def l1_log_loss(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute log error: the term that pins absolute (metric) scale."""
    n = mask.sum()
    return (diff.abs() * mask).sum() / n.clamp(min=1)


def gradient_matching_loss(
    diff: torch.Tensor, mask: torch.Tensor, scales: int = 4
) -> torch.Tensor:
    """MiDaS-style multi-scale gradient matching of the log error (sharp, consistent edges)."""
    total = diff.sum() * 0.0
    for k in range(scales):
        step = 2**k
        d = diff[:, :, ::step, ::step]
        m = mask[:, :, ::step, ::step]
        mx = m[:, :, :, 1:] * m[:, :, :, :-1]
        my = m[:, :, 1:, :] * m[:, :, :-1, :]
        gx = (d[:, :, :, 1:] - d[:, :, :, :-1]).abs() * mx
        gy = (d[:, :, 1:, :] - d[:, :, :-1, :]).abs() * my
        total = total + (gx.sum() + gy.sum()) / (mx.sum() + my.sum()).clamp(min=1)
    return total / scales


def depth_loss(
    pred_log: torch.Tensor,
    target_log: torch.Tensor,
    mask: torch.Tensor,
    w_silog: float = 1.0,
    w_l1: float = 1.0,
    w_grad: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the three terms over pixels where ``mask`` is 1."""
    mask = mask.to(pred_log.dtype)
    diff = torch.where(mask > 0, pred_log - target_log, torch.zeros_like(pred_log))
    parts = {
        "silog": silog_loss(diff, mask),
        "l1": l1_log_loss(diff, mask),
        "grad": gradient_matching_loss(diff, mask),
    }
    total = w_silog * parts["silog"] + w_l1 * parts["l1"] + w_grad * parts["grad"]
    return total, {k: float(v.detach()) for k, v in parts.items()}
