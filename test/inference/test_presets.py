"""Each public preset's pre/post-processing, on an ONNX net with its I/O names and shapes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.inference.loader import load_engine  # noqa: E402
from recon3d_ros.inference.presets import PRESETS, find_preset_file, get_preset  # noqa: E402

PUBLIC = [name for name, p in PRESETS.items() if p.packaged is None]
CAMERA = PinholeCamera(640, 480, 500.0, 500.0, 319.5, 239.5)
RED = 128


class RedPlusOne(torch.nn.Module):
    """Undoes the preset's normalisation of the red channel: output = R / 255 + 1."""

    def __init__(self, mean: float, std: float, rank: int) -> None:
        super().__init__()
        self.mean, self.std, self.rank = mean, std, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, :1] * self.std + self.mean + 1.0
        return red[:, 0] if self.rank == 3 else red


def _export(preset, path):
    cfg = preset.config
    in_name, out_name = cfg.input_name or "input.1", cfg.output_name or "output.1"
    pre = cfg.preprocess(np.zeros((480, 640, 3), np.uint8), CAMERA)
    net = RedPlusOne(cfg.mean[0], cfg.std[0], preset.output_rank)
    axes = None if preset.fixed_size else {in_name: {2: "h", 3: "w"}}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.from_numpy(pre.tensor),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=[in_name],
            output_names=[out_name],
            dynamic_axes=axes,
        )
    return pre.tensor.shape


EXPECTED_INPUT = {
    "depth_anything_v2_small": (518, 686),
    "depth_anything_v2_metric_indoor_small": (518, 686),
    "depth_anything_v2_metric_outdoor_small": (518, 686),
    "midas_v21_small": (256, 256),
    "depth_anything_3_metric": (378, 504),
    "metric3d_v2_small": (616, 1064),
}


@pytest.mark.parametrize("name", PUBLIC)
def test_preset_end_to_end_on_a_stand_in_network(tmp_path, name):
    preset = get_preset(name)
    shape = _export(preset, tmp_path / "net.onnx")
    assert shape[2:] == EXPECTED_INPUT[name]
    if preset.fixed_size:
        assert shape[2:] == preset.fixed_size
    engine = load_engine(str(tmp_path / "net.onnx"), preset=name, device="cpu")
    rgb = np.full((480, 640, 3), 60, np.uint8)
    rgb[..., 0] = RED
    depth = engine.infer(rgb, CAMERA)
    assert depth.shape == (480, 640)
    raw = RED / 255 + 1.0
    cfg = preset.config
    if cfg.output_kind == "relative_inverse_depth":
        expected = 1.0 / raw
    else:
        expected = raw * cfg.depth_scale
        if cfg.canonical_focal is not None:
            net_fx = cfg.input_transform(640, 480).apply_camera(CAMERA).fx
            expected *= net_fx / cfg.canonical_focal
    if name == "metric3d_v2_small":
        # Letterbox: 640x480 -> 821x616 content in a 1064 canvas; the padding must not leak in.
        t = cfg.input_transform(640, 480)
        assert (t.content_width, t.content_height, t.left) == (821, 616, 121)
    np.testing.assert_allclose(depth, expected, rtol=2e-3)


def test_every_preset_is_documented():
    for preset in PRESETS.values():
        assert preset.source and preset.config.description
        if preset.packaged is None:
            assert preset.filename and preset.filename.endswith(".onnx")


def test_lookup_errors_and_search_dirs(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="known presets"):
        get_preset("dpt_large")
    preset = get_preset("depth_anything_v2_small")
    monkeypatch.setenv("RECON3D_MODEL_PATH", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert find_preset_file(preset) is None
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / preset.filename).write_bytes(b"x")
    assert find_preset_file(preset) == tmp_path / "b" / preset.filename
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / preset.filename).write_bytes(b"x")
    assert find_preset_file(preset) == tmp_path / "a" / preset.filename  # first directory wins
