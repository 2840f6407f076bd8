"""recon3d export: PyTorch -> ONNX with config, dynamic axes, and an onnxruntime check."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from recon3d_ros.cli import main  # noqa: E402
from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.inference.loader import load_engine  # noqa: E402
from recon3d_ros.inference.onnx_backend import CONFIG_METADATA_KEY  # noqa: E402


class SmallNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = torch.relu(self.conv(x))
        return torch.nn.functional.softplus(
            self.head(feat)
        ) + 0.1, feat  # depth first, then extras


def _save(tmp_path, config: ModelConfig):
    path = tmp_path / "small.ts"
    torch.jit.save(
        torch.jit.script(SmallNet().eval()),
        str(path),
        _extra_files={"recon3d_config.json": json.dumps(config.to_dict())},
    )
    return path


def test_export_checks_against_torch_and_writes_config(tmp_path, capsys):
    config = ModelConfig(
        name="small", resize_mode="keep_aspect", short_side=56, multiple_of=14, depth_scale=2.0
    )
    src = _save(tmp_path, config)
    out = tmp_path / "out" / "small.onnx"
    assert main(["export", str(src), "-o", str(out), "--image-size", "96x64"]) == 0
    printed = capsys.readouterr().out
    assert "dynamic height/width" in printed and printed.count("max abs error") == 2
    model = onnx.load(str(out))
    assert model.opset_import[0].version >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta[CONFIG_METADATA_KEY])["depth_scale"] == 2.0
    assert (tmp_path / "out" / "small.onnx.yaml").is_file()
    assert len(model.graph.output) == 1, "only the depth output is exported"
    # The exported file gives the same depth as the TorchScript original, at two camera sizes.
    for w, h in ((96, 64), (150, 80)):
        rgb = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        cam = PinholeCamera.from_fov(w, h, 70.0)
        ref = load_engine(str(src), device="cpu").infer(rgb, cam)
        got = load_engine(str(out), device="cpu").infer(rgb, cam)
        np.testing.assert_allclose(got, ref, rtol=1e-4)


def test_static_export_and_bad_arguments(tmp_path, capsys):
    src = _save(tmp_path, ModelConfig(input_width=40, input_height=32))
    out = tmp_path / "s.onnx"
    assert main(["export", str(src), "-o", str(out), "--static"]) == 0
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 40]
    assert main(["export", str(src), "-o", str(out), "--opset", "13"]) == 1
    assert "opset" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt")]) == 1
    assert main(["export", str(out)]) == 1  # already ONNX and no --tensorrt


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_tensorrt_flag_without_tensorrt_fails_early(tmp_path, capsys):
    src = _save(tmp_path, ModelConfig(input_width=40, input_height=32))
    assert main(["export", str(src), "-o", str(tmp_path / "t.onnx"), "--tensorrt"]) == 1
    assert "pip install tensorrt" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()


def test_packaged_default_exports(tmp_path):
    from recon3d_ros.inference.presets import PRESETS

    weights = PRESETS["default"].packaged_path()
    if weights is None or not weights.is_file():
        pytest.skip(f"packaged default weights not built yet ({weights})")
    assert main(["export", "default", "-o", str(tmp_path / "default.onnx")]) == 0


class FixedSizeNet(torch.nn.Module):
    """Only works at 32x40: a dense layer over the flattened image."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.fc = torch.nn.Linear(32 * 40, 32 * 40)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x[:, 0].reshape(1, 32 * 40))).reshape(1, 1, 32, 40) + 1.0


def test_model_without_dynamic_sizes_falls_back_to_a_fixed_export(tmp_path, capsys):
    src = tmp_path / "fixed.ts"
    torch.jit.save(
        torch.jit.script(FixedSizeNet().eval()),
        str(src),
        _extra_files={
            "recon3d_config.json": json.dumps(
                ModelConfig(input_width=40, input_height=32).to_dict()
            )
        },
    )
    out = tmp_path / "fixed.onnx"
    assert main(["export", str(src), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "fixed height/width" in captured.out
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 40]


def test_checkpoint_export_through_the_eager_wrapper(tmp_path, capsys):
    models = pytest.importorskip("recon3d_ros.models")
    arch = sorted(models.ARCHITECTURES)[0]
    torch.manual_seed(3)
    net = models.build_model(arch).eval()
    for p in net.parameters():  # random, non-degenerate weights (some heads start at zero)
        torch.nn.init.normal_(p, std=0.05)
    config = ModelConfig(input_width=96, input_height=64, canonical_focal=200.0)
    ckpt = tmp_path / "net.pt"
    torch.save(
        {
            "arch": arch,
            "arch_kwargs": {},
            "state_dict": net.state_dict(),
            "config": config.to_dict(),
            "meta": {},
        },
        ckpt,
    )
    out = tmp_path / "net.onnx"
    assert main(["export", str(ckpt), "-o", str(out)]) == 0
    assert "max abs error" in capsys.readouterr().out
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    cam = PinholeCamera.from_fov(160, 120, 60.0)
    ref = load_engine(str(ckpt), device="cpu").infer(rgb, cam)
    got = load_engine(str(out), device="cpu").infer(rgb, cam)
    assert np.isfinite(ref).mean() > 0.9 and np.nanstd(ref) > 0
    np.testing.assert_allclose(got, ref, rtol=1e-4, equal_nan=True)
