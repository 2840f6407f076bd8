"""Tiny TorchScript models used by the soak/overload benchmarks load through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.demo.tiny_models import fast_model, save_torchscript, slow_model  # noqa: E402
from recon3d_ros.inference.loader import load_engine  # noqa: E402


def test_fast_model_file_carries_its_config_and_depends_on_the_image(tmp_path: Path) -> None:
    path = save_torchscript(fast_model(), tmp_path / "fast.pt", width=32, height=24)
    engine = load_engine(str(path), device="cpu")
    assert (engine.config.input_width, engine.config.input_height) == (32, 24)
    camera = PinholeCamera.from_fov(64, 48, 60.0)
    dark = engine.infer(np.zeros((48, 64, 3), np.uint8), camera)
    bright = engine.infer(np.full((48, 64, 3), 255, np.uint8), camera)
    assert dark.shape == (48, 64)
    assert np.all((dark >= 1.0) & (dark <= 3.0)) and np.all((bright >= 1.0) & (bright <= 3.0))
    assert float(dark.mean()) > float(bright.mean()) + 0.5  # darker reads as farther


def test_slow_model_gives_the_fast_models_depth() -> None:
    x = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(slow_model(3, 16))(x), fast_model()(x))
