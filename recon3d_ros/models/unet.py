"""A light U-Net for metric depth: MobileNetV2-style encoder, depthwise-separable decoder.

The classic U-Net layout (conv + downsampling encoder, upsampling decoder with skip
connections) with the changes that pay on a CPU: batch norm, inverted-residual depthwise
blocks, a global-context branch (absolute scale is a whole-image judgement) and a head at half
resolution. The network predicts log depth in the canonical camera (Metric3D): ``forward``
returns ``exp`` of it, i.e. metres for a camera of focal ``canonical_focal``, which is what
:class:`~recon3d_ros.core.model_config.ModelConfig` with ``output_kind="metric_depth"`` expects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNetSmall", "LogDepth"]


def _c(channels: int, width: float) -> int:
    return max(8, int(round(channels * width / 8)) * 8)


class ConvBNAct(nn.Sequential):
    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise (maybe strided), 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.block = nn.Sequential(
            ConvBNAct(cin, mid, 1),
            ConvBNAct(mid, mid, 3, stride, groups=mid),
            ConvBNAct(mid, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block(x)
        return x + y if self.residual else y


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(ConvBNAct(cin, cin, 3, groups=cin), ConvBNAct(cin, cout, 1))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.fuse = nn.Sequential(SeparableConv(cin + cskip, cout), SeparableConv(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        fused: torch.Tensor = self.fuse(torch.cat([x, skip], dim=1))
        return fused


class UNetSmall(nn.Module):
    """RGB (ImageNet-normalised) N x 3 x H x W to canonical metric depth N x 1 x H x W.

    Any input size works (skips are resized to match), though multiples of 32 are fastest.
    ``log_min``/``log_max`` bound the predicted log depth (metres in the canonical camera).
    """

    def __init__(self, width: float = 1.0, log_min: float = -3.0, log_max: float = 5.0) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = (_c(c, width) for c in (16, 24, 40, 64, 96))
        self.log_min, self.log_max = float(log_min), float(log_max)
        self.stem = ConvBNAct(3, c0, 3, 2)  # 1/2
        self.enc1 = nn.Sequential(
            InvertedResidual(c0, c1, 2, 3), InvertedResidual(c1, c1, 1, 3)
        )  # 1/4
        self.enc2 = nn.Sequential(
            InvertedResidual(c1, c2, 2, 3), InvertedResidual(c2, c2, 1, 3)
        )  # 1/8
        self.enc3 = nn.Sequential(
            InvertedResidual(c2, c3, 2, 4),
            InvertedResidual(c3, c3, 1, 4),
            InvertedResidual(c3, c3, 1, 4),
        )  # 1/16
        self.enc4 = nn.Sequential(
            InvertedResidual(c3, c4, 2, 4),
            InvertedResidual(c4, c4, 1, 4),
            InvertedResidual(c4, c4, 1, 4),
        )  # 1/32
        # Global context: the mean feature of the whole image, broadcast back (scene scale).
        self.context = nn.Sequential(nn.Conv2d(c4, c4, 1), nn.ReLU(inplace=True))
        self.dec3 = UpBlock(c4, c3, c3)
        self.dec2 = UpBlock(c3, c2, c2)
        self.dec1 = UpBlock(c2, c1, c1)
        self.dec0 = UpBlock(c1, c0, c0)
        self.head = nn.Conv2d(c0, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:  # always (Conv2d's default): for the type checker
            nn.init.constant_(self.head.bias, 1.0)  # exp(1) ~ 2.7 m: a sensible first guess

    def forward_log(self, x: torch.Tensor) -> torch.Tensor:
        """Log canonical depth at the input resolution."""
        s0 = self.stem(x)
        s1 = self.enc1(s0)
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.enc4(s3)
        s4 = s4 + self.context(s4.mean(dim=(2, 3), keepdim=True))
        y = self.dec3(s4, s3)
        y = self.dec2(y, s2)
        y = self.dec1(y, s1)
        y = self.dec0(y, s0)
        y = self.head(y)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y.clamp(self.log_min, self.log_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Canonical metric depth in metres (exp of :meth:`forward_log`)."""
        return torch.exp(self.forward_log(x))


class LogDepth(nn.Module):
    """Wraps a model so that calling it returns log depth (training; DDP needs ``__call__``)."""

    def __init__(self, model: UNetSmall) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_log(x)
