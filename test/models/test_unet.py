"""The U-Net: shapes, positivity, log/metric consistency, any input size."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.models.unet import LogDepth, UNetSmall  # noqa: E402


@pytest.mark.parametrize("size", [(64, 48), (72, 40), (96, 96)])
def test_output_matches_input_size_and_is_positive(size):
    torch.manual_seed(0)
    net = UNetSmall(width=0.5).eval()
    w, h = size
    with torch.no_grad():
        out = net(torch.randn(2, 3, h, w))
    assert out.shape == (2, 1, h, w)
    assert bool((out > 0).all()) and bool(torch.isfinite(out).all())


def test_forward_is_exp_of_log_and_clamped():
    torch.manual_seed(1)
    net = UNetSmall(width=0.5, log_min=-1.0, log_max=2.0).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        log = LogDepth(net)(x)
        torch.testing.assert_close(net(x), torch.exp(log))
        net.head.bias.fill_(50.0)  # far beyond log_max
        assert float(LogDepth(net)(x).max()) == pytest.approx(2.0)


def test_untrained_head_starts_at_a_sensible_depth_and_width_scales_params():
    net = UNetSmall().eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 64, 64))
    assert torch.allclose(out, torch.full_like(out, 2.718281828), atol=1e-4)
    small = sum(p.numel() for p in UNetSmall(width=0.5).parameters())
    big = sum(p.numel() for p in UNetSmall(width=1.5).parameters())
    assert big > 3 * small


def test_gradients_reach_the_encoder():
    net = UNetSmall(width=0.5).train()
    LogDepth(net)(torch.randn(2, 3, 32, 32)).mean().backward()
    assert (
        net.stem[0].weight.grad is not None and float(net.stem[0].weight.grad.abs().sum()) >= 0.0
    )
    assert net.head.weight.grad is not None and float(net.head.weight.grad.abs().sum()) > 0
