"""Tiny networks with known outputs, saved as TorchScript / ONNX files in a tmp dir.

Every network's output is a known function of the input canvas (a constant, or the column
index), so a test can predict the metric depth on the image grid exactly.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.core.model_config import ModelConfig  # noqa: E402


class ConstantDepth(torch.nn.Module):
    """1 x 1 x h x w filled with ``value`` (depends on the input only through its shape)."""

    def __init__(self, value: float = 2.0) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0.0 + self.value


class ColumnRamp(torch.nn.Module):
    """Output at canvas column c is ``c + 1``: encodes where a pixel sat in the network input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[3]
        ramp = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, 1, w) + 1.0
        return ramp + 0.0 * x[:, :1]


class MeanRed(torch.nn.Module):
    """Output = the un-normalised red channel (0..1) + 1: depends on the pixel values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0.229 + 0.485 + 1.0


class TinyConvNet(torch.nn.Module):
    """A small real network (random weights) to compare backends numerically."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(self.body(x)) + 0.5


def save_torchscript(
    module: torch.nn.Module, path: Path, config: ModelConfig | None = None
) -> Path:
    scripted = torch.jit.script(module.eval())
    extra = {"recon3d_config.json": json.dumps(config.to_dict())} if config is not None else {}
    torch.jit.save(scripted, str(path), _extra_files=extra)
    return path


def save_onnx(
    module: torch.nn.Module,
    path: Path,
    size: tuple[int, int] = (48, 64),
    input_name: str = "image",
    output_name: str = "depth",
    dynamic: bool = True,
) -> Path:
    dummy = torch.zeros(1, 3, *size)
    axes = {input_name: {2: "h", 3: "w"}, output_name: {2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes=axes,
        )
    return path


@dataclass
class TinyModels:
    root: Path

    def torchscript(
        self, module: torch.nn.Module, name: str, config: ModelConfig | None = None
    ) -> Path:
        return save_torchscript(module, self.root / name, config)

    def onnx(self, module: torch.nn.Module, name: str, **kwargs: object) -> Path:
        return save_onnx(module, self.root / name, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path) -> TinyModels:
    return TinyModels(tmp_path)


@pytest.fixture
def modules() -> dict[str, type]:
    return {"constant": ConstantDepth, "ramp": ColumnRamp, "red": MeanRed, "conv": TinyConvNet}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
