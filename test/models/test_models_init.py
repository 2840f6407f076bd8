"""build_model / save_checkpoint / load_checkpoint round trip and camera-aware metric output."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.errors import ModelLoadError  # noqa: E402
from recon3d_ros.models import (  # noqa: E402
    DEFAULT_WEIGHTS,
    build_model,
    load_checkpoint,
    save_checkpoint,
)


def _config(**kw):
    base = {
        "name": "t",
        "input_width": 64,
        "input_height": 48,
        "resize_mode": "letterbox",
        "canonical_focal": 50.0,
        "max_depth": 80.0,
    }
    base.update(kw)
    return ModelConfig(**base)


def test_round_trip_keeps_weights_config_and_meta(tmp_path):
    torch.manual_seed(0)
    model = build_model("unet_small", width=0.5)
    path = save_checkpoint(
        tmp_path / "m.pt", model, "unet_small", {"width": 0.5}, _config(), {"seed": 3}
    )
    loaded, config, meta = load_checkpoint(path)
    assert config == _config() and meta == {"seed": 3}
    assert not loaded.training
    x = torch.randn(1, 3, 48, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_camera_aware_output_scales_with_focal_length(tmp_path):
    """The same image seen with twice the focal length (narrower lens) is twice as far."""
    torch.manual_seed(0)
    model = build_model("unet_small", width=0.5)
    path = save_checkpoint(tmp_path / "m.pt", model, "unet_small", {"width": 0.5}, _config(), {})
    net, config, _ = load_checkpoint(path)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    depths = []
    for fx in (50.0, 100.0):
        cam = PinholeCamera(64, 48, fx, fx, 31.5, 23.5)
        pre = config.preprocess(rgb, cam)
        with torch.no_grad():
            raw = net(torch.from_numpy(pre.tensor)).numpy()
        depths.append(config.postprocess(raw, pre))
    np.testing.assert_allclose(depths[1], 2.0 * depths[0], rtol=1e-5)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown architecture"):
        build_model("resnet9000")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ModelLoadError, match="not a recon3d checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    model = build_model("unet_small", width=0.5)
    path = save_checkpoint(tmp_path / "m.pt", model, "unet_small", {"width": 1.0}, _config(), {})
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_checkpoint(path)


class _RunsCodeWhenUnpickled:
    """Unpickling calls ``Path.touch(marker)``: what a malicious "checkpoint" could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_loading_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "code_ran"
    payload = {"arch": "unet_small", "state_dict": {}, "x": _RunsCodeWhenUnpickled(marker)}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(ModelLoadError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_shipped_weights_are_small_and_loadable():
    if not DEFAULT_WEIGHTS.exists():
        pytest.skip(f"{DEFAULT_WEIGHTS} not built yet (recon3d train, see docs/MODEL.md)")
    assert DEFAULT_WEIGHTS.stat().st_size <= 10 * 1024 * 1024
    net, config, meta = load_checkpoint(DEFAULT_WEIGHTS)
    assert config.output_kind == "metric_depth" and config.canonical_focal
    assert {"command", "seed", "steps", "duration_s", "machine", "data"} <= set(meta)
    with torch.no_grad():
        out = net(torch.zeros(1, 3, config.input_height, config.input_width))
    assert out.shape[-2:] == (config.input_height, config.input_width)
