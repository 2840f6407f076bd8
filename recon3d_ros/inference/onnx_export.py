"""A PyTorch depth model (checkpoint or TorchScript) to ONNX, checked against PyTorch.

:func:`export_torch_model` writes ``OUT.onnx`` (opset >= :data:`MIN_OPSET`; dynamic height and
width where the model allows it, else a fixed size), keeps only the depth output, stores the
model config in the file's metadata and in the sidecar ``OUT.onnx.yaml`` (with the file's
sha256, checked at load), then runs ONNX Runtime and PyTorch on the same inputs and reports
the largest difference. ``recon3d export`` is its command line.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import ConfigError, ModelLoadError
from recon3d_ros.inference.model_files import file_sha256
from recon3d_ros.inference.torch_backend import select_depth_output

__all__ = [
    "MIN_OPSET",
    "Comparison",
    "OnnxExport",
    "check_opset",
    "depth_only",
    "example_input",
    "export_onnx",
    "embed_config",
    "compare",
    "export_torch_model",
]

LOG = logging.getLogger(__name__)

MIN_OPSET = 17  # LayerNormalization and friends

#: (input shape, max |onnxruntime - torch|, torch output range) of one checked input.
Comparison = tuple[tuple[int, ...], float, float]


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_torch_model` wrote and how closely ONNX Runtime matches PyTorch."""

    path: Path
    sidecar: Path
    opset: int
    dynamic: bool
    comparisons: tuple[Comparison, ...]

    @property
    def worst(self) -> float:
        """Return the largest difference as a fraction of the output range."""
        return max((err / span for _, err, span in self.comparisons), default=0.0)


def check_opset(opset: int) -> None:
    """Raise :class:`ConfigError` for an opset the exported graphs cannot use."""
    if opset < MIN_OPSET:
        raise ConfigError(
            f"--opset must be >= {MIN_OPSET} (LayerNormalization and friends), got {opset}"
        )


def depth_only(module: Any, config: ModelConfig) -> Any:
    """Wrap an eager module so it has one output (depth) for tracing; keep script modules."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return module  # tracing through a script module is not allowed: export it directly

    class DepthOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return select_depth_output(self.net(x), config.output_name, config.sky_output_name)

    return DepthOnly().eval()


def example_input(
    config: ModelConfig, image_size: tuple[int, int], seed: int = 0
) -> npt.NDArray[np.float32]:
    """Make a normalised network input of the size this config produces for ``image_size``."""
    from recon3d_ros.core.camera import PinholeCamera

    w, h = image_size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack(
        [xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], axis=-1
    )
    rgb = np.clip(rgb + rng.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
    return config.preprocess(rgb, PinholeCamera.from_fov(w, h, 70.0)).tensor


def _other_size(config: ModelConfig, shape: tuple[int, ...]) -> tuple[int, int]:
    """Pick a second (h, w) to prove dynamic axes work: a ``multiple_of`` (or 32) step bigger."""
    step = config.multiple_of if config.multiple_of > 1 else 32
    return shape[2] + step, shape[3] + 2 * step


def export_onnx(
    module: Any,
    config: ModelConfig,
    example: npt.NDArray[np.float32],
    out: Path,
    opset: int,
    dynamic: bool,
) -> None:
    """Trace ``module`` on ``example`` into ``out`` with only the depth output kept."""
    import onnx
    import torch

    names = (config.input_name or "image", config.output_name or "depth")
    axes = {names[0]: {2: "height", 3: "width"}, names[1]: {}} if dynamic else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter needs no onnxscript and handles script modules.
        torch.onnx.export(
            module,
            (torch.from_numpy(example),),
            str(out),
            dynamo=False,
            opset_version=opset,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    if len(onnx.load(str(out)).graph.output) > 1:
        # A script module returning (depth, extras...): keep the depth output and what feeds it.
        onnx.utils.extract_model(str(out), str(out), [names[0]], [names[1]])


def embed_config(out: Path, config: ModelConfig) -> Path:
    """Store the config in the ONNX metadata and as ``OUT.onnx.yaml``; return the YAML path."""
    from recon3d_ros.inference.loader import write_sidecar
    from recon3d_ros.inference.onnx_backend import CONFIG_METADATA_KEY

    data = config.to_dict()
    try:
        import onnx

        model = onnx.load(str(out))
        for prop in list(model.metadata_props):
            if prop.key == CONFIG_METADATA_KEY:
                model.metadata_props.remove(prop)
        entry = model.metadata_props.add()
        entry.key, entry.value = CONFIG_METADATA_KEY, json.dumps(data)
        onnx.save(model, str(out))
    except ImportError:
        pass
    # The loader checks the sidecar's checksum at start-up: a corrupt or swapped file is an error.
    return write_sidecar(out, data)


def compare(
    module: Any,
    onnx_path: Path,
    inputs: list[npt.NDArray[np.float32]],
    config: ModelConfig,
) -> list[Comparison]:
    """Run ONNX Runtime (CPU) and ``module`` on each input; see :data:`Comparison`."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results = []
    for x in inputs:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
            picked = select_depth_output(out, config.output_name, config.sky_output_name)
            expected = picked.float().numpy()
        got = session.run(None, {name: x})[0]
        if got.shape != expected.shape:
            raise ModelLoadError(
                f"ONNX output shape {got.shape} != torch {expected.shape} for input {x.shape}"
            )
        span = float(np.nanmax(expected) - np.nanmin(expected)) or 1.0
        results.append((tuple(x.shape), float(np.nanmax(np.abs(got - expected))), span))
    return results


def export_torch_model(
    source: Path,
    config: ModelConfig,
    out: Path,
    image_size: tuple[int, int],
    opset: int = MIN_OPSET,
    dynamic: bool = True,
    tolerance: float = 1e-3,
) -> OnnxExport:
    """Export the torch model file ``source`` (described by ``config``) to ``out``.

    With ``dynamic``, a second input size proves the dynamic axes; a model that fails there
    (beyond ``tolerance`` of the output range, or with an error) is exported with a fixed size
    instead, which only a fixed-size config (stretch/letterbox) can feed.
    """
    from recon3d_ros.inference.torch_backend import TorchRunner

    check_opset(opset)
    # Record which weights this export came from: the loader only uses a packaged ONNX export
    # in place of its torch file when they match.
    config = config.replace(extra={**dict(config.extra), "source_sha256": file_sha256(source)})
    runner = TorchRunner(source, config, device="cpu")
    runner.load()
    module = depth_only(runner.module, config)
    example = example_input(config, image_size)
    export_onnx(module, config, example, out, opset, dynamic)
    inputs = [example]
    if dynamic:
        h2, w2 = _other_size(config, example.shape)
        inputs.append(np.random.default_rng(1).standard_normal((1, 3, h2, w2)).astype(np.float32))
        try:
            results = compare(module, out, inputs, config)
            ok = all(err <= tolerance * span for _, err, span in results)
        except Exception as exc:  # noqa: BLE001  (any failure there: static only)
            ok = False
            LOG.warning(
                "dynamic export failed at a second size (%s); exporting with a fixed size", exc
            )
        if not ok:
            if config.fixed_input_size is None:
                raise ModelLoadError(
                    "this model does not export with dynamic height/width, but its config "
                    f"({config.resize_mode}) "
                    "feeds camera-dependent sizes; change resize_mode to stretch/letterbox first"
                )
            dynamic = False
            export_onnx(module, config, example, out, opset, dynamic=False)
            inputs = [example]
    results = compare(module, out, inputs, config)
    sidecar = embed_config(out, config)
    return OnnxExport(out, sidecar, opset, dynamic, tuple(results))
