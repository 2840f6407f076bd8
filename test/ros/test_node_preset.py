"""The ``preset`` node parameter: a downloaded file plus the preset that knows how to feed it.

Real node processes (own DDS domain). Before this parameter existed, ``-p preset:=NAME`` was
ignored and the file ran with ``ModelConfig()`` defaults.
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


class Constant(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0.0 + 0.5


def _onnx(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Constant(), (torch.zeros(1, 3, 256, 256),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})
    return path


def test_preset_parameter_describes_the_model_file(tmp_path, start_node):
    path = _onnx(tmp_path / "downloaded.onnx")
    node = start_node(model=str(path), preset="midas_v21_small", device="cpu")
    assert node.wait_for_output("(midas_v21_small, input 256x256 stretch)", 60.0), node.output()
    assert node.proc.poll() is None


def test_unknown_preset_is_a_one_line_start_up_error(tmp_path, start_node):
    path = _onnx(tmp_path / "downloaded.onnx")
    node = start_node(model=str(path), preset="midas_v9", device="cpu")
    assert node.wait(60.0) != 0
    assert "unknown model preset 'midas_v9'" in node.output()
    assert "midas_v21_small" in node.output()
