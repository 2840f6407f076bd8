"""Small TorchScript depth "models" for tests and benchmarks (no weights to download).

They follow the network contract of every backend: a normalised ``1 x 3 x h x w`` tensor in,
a ``1 x 1 x h x w`` metric depth map out. :func:`fast_model` depends on the image (so a
changed input changes the depth) and costs microseconds; :func:`slow_model` burns a chosen
amount of compute per frame to play a heavy network in overload benchmarks.
"""

from __future__ import annotations

from pathlib import Path
import statistics
import time

__all__ = ["fast_model", "slow_model", "tiny_config", "save_torchscript", "calibrate_slow_model"]


def fast_model():
    """Depth 1..3 m from image brightness: cheap, deterministic, input dependent."""
    import torch

    class BrightnessDepth(torch.nn.Module):

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2.0 - torch.tanh(x.mean(dim=1, keepdim=True))

    return BrightnessDepth().eval()


def slow_model(matmuls: int, size: int = 256):
    """Like :func:`fast_model` but with ``matmuls`` dense ``size`` x ``size`` products first."""
    import torch

    class SlowDepth(torch.nn.Module):

        def __init__(self, count: int, n: int) -> None:
            super().__init__()
            self.count = count
            self.register_buffer("weight", torch.eye(n) * 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            acc = self.weight
            for _ in range(self.count):
                acc = torch.tanh(acc @ self.weight)
            # The busy work must reach the output or the optimiser may drop it.
            return 2.0 - torch.tanh(x.mean(dim=1, keepdim=True)) + 0.0 * acc.mean()

    return SlowDepth(int(matmuls), int(size)).eval()


def tiny_config(width: int = 64, height: int = 48, name: str = "tiny"):
    """Build the ModelConfig the tiny models embed: metric depth, ``width`` x ``height`` input."""
    from recon3d_ros.core.model_config import ModelConfig

    return ModelConfig(
        name=name,
        input_width=width,
        input_height=height,
        resize_mode="stretch",
        output_kind="metric_depth",
        min_depth=0.1,
        max_depth=20.0,
        description="recon3d_ros.demo.tiny_models test model (not a trained network)",
    )


def save_torchscript(module, path: str | Path, width: int = 64, height: int = 48) -> Path:
    """Script ``module`` and save it as a TorchScript file with its ModelConfig embedded.

    The config travels as the ``recon3d_config.json`` extra file the torch backend reads, so
    ``model:=<path>`` works without a sidecar YAML.
    """
    import json

    import torch

    from recon3d_ros.inference.torch_backend import CONFIG_EXTRA_FILE

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(module)
    with torch.no_grad():
        out = scripted(torch.zeros(1, 3, height, width))
    if tuple(out.shape) != (1, 1, height, width):
        raise RuntimeError(
            f"tiny model produced shape {tuple(out.shape)}, expected (1, 1, {height}, {width})"
        )
    config = json.dumps(tiny_config(width, height).to_dict())
    torch.jit.save(scripted, str(p), _extra_files={CONFIG_EXTRA_FILE: config})
    return p


def calibrate_slow_model(target_ms: float, size: int = 256, threads: int = 1) -> int:
    """How many matmuls take ``target_ms`` here (with ``threads`` torch threads)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        probe = 50
        model = torch.jit.script(slow_model(probe, size))
        x = torch.zeros(1, 3, 8, 8)
        samples = []
        with torch.no_grad():
            model(x)
            for _ in range(7):  # the median resists a busy machine's hiccups
                t0 = time.perf_counter()
                model(x)
                samples.append((time.perf_counter() - t0) * 1e3 / probe)
        per_matmul = statistics.median(samples)
    finally:
        torch.set_num_threads(previous)
    return max(1, round(target_ms / max(per_matmul, 1e-3)))
