"""``recon3d models``: lists presets with where they are looked for; inspects a model file."""

from __future__ import annotations

import json
import warnings

import pytest

from recon3d_ros.cli import main
from recon3d_ros.inference.presets import PRESETS

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    directory = tmp_path / "models"
    directory.mkdir()
    monkeypatch.setenv("RECON3D_MODEL_PATH", str(directory))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return directory


class Net(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0.0 + 2.0


def _export(path, size, names=("image", "depth"), dynamic=True):
    axes = {names[0]: {2: "h", 3: "w"}, names[1]: {2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net(), (torch.zeros(1, 3, *size),), str(path), dynamo=False,
                          input_names=[names[0]], output_names=[names[1]], dynamic_axes=axes)
    return path


def test_list_shows_every_preset_its_files_folders_and_which_are_present(model_dir, capsys):
    _export(model_dir / "metric3d_vit_small.onnx", (616, 1064), ("image", "pred_depth"), False)
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_dirs"][0] == str(model_dir)
    rows = {row["name"]: row for row in data["presets"]}
    assert set(rows) == set(PRESETS)
    assert rows["metric3d_v2_small"]["found"] == str(model_dir / "metric3d_vit_small.onnx")
    assert rows["midas_v21_small"]["found"] is None
    assert str(model_dir / "model-small.onnx") in rows["midas_v21_small"]["looked_for"]
    assert "isl-org/MiDaS" in rows["midas_v21_small"]["download"]
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "present: " + str(model_dir / "metric3d_vit_small.onnx") in text
    assert "preset:=NAME" in text and "--preset NAME" in text


def test_inspect_shows_io_agreement_and_one_frame(model_dir, capsys):
    path = _export(model_dir / "m.onnx", (256, 256))
    assert main(["models", "inspect", str(path), "--preset", "midas_v21_small", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"] == ["'image' float32 1x3xhxw"]
    assert report["agree"] is True and report["preset expects"]["input range"] == "0-1"
    frame = report["test frame"]
    assert frame["network input"] == "1x3x256x256"
    assert frame["depth m (min / median / max)"] == pytest.approx([0.5, 0.5, 0.5])


def test_inspect_reports_a_mismatch_and_fails(model_dir, capsys):
    """A static 518x518 file with the dynamic preset: disagreement, exit 1, the fix named."""
    path = _export(model_dir / "static.onnx", (518, 518), ("l_x_", "out"), dynamic=False)
    code = main(["models", "inspect", str(path), "--preset", "depth_anything_v2_small_dynamic"])
    text = capsys.readouterr().out
    assert code == 1
    assert "agree: False" in text and "1x3x518x518" in text
    assert "--preset depth_anything_v2_small)" in text
    assert main(["models", "inspect", str(path), "--preset", "depth_anything_v2_small"]) == 0
    assert "agree: True" in capsys.readouterr().out
