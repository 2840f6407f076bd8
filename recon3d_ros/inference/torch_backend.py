"""PyTorch backend: TorchScript archives and the project's own checkpoints, CPU or CUDA.

Two file kinds, told apart by their zip content (both are zip archives):

* TorchScript (``torch.jit.save``; has ``code/`` and ``constants.pkl``): loaded with
  ``torch.jit.load``. A ``recon3d_config.json`` extra file, if present, is its ModelConfig.
* A checkpoint dict ``{"arch", "arch_kwargs", "state_dict", "config", "meta"}`` (``torch.save``):
  read by :func:`recon3d_ros.models.read_checkpoint` (``weights_only=True``: no code runs from
  the file) and rebuilt by :func:`recon3d_ros.models.model_from_checkpoint`.

On CUDA the runner casts weights to fp16/bf16 when asked, uses channels-last memory, captures a
CUDA graph per static input shape after a warm-up (one launch per frame instead of hundreds),
and stages host copies through pinned memory on its own stream.
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import InferenceError, ModelLoadError
from recon3d_ros.inference.devices import resolve_device, validate_precision
from recon3d_ros.inference.pinned import PinnedStaging
from recon3d_ros.models import EXPECTED, import_torch, model_from_checkpoint, read_checkpoint

if TYPE_CHECKING:
    import torch

__all__ = [
    "TorchRunner",
    "CONFIG_EXTRA_FILE",
    "is_torchscript_archive",
    "read_embedded_config",
    "select_depth_output",
]

LOG = logging.getLogger(__name__)

CONFIG_EXTRA_FILE = "recon3d_config.json"
MAX_CUDA_GRAPHS = 4  # keep_aspect inputs vary in shape; cap the graphs kept alive


def _jit_load(path: Path, **kwargs: Any) -> Any:
    """Call ``torch.jit.load`` without its deprecation warning (TorchScript stays portable)."""
    torch = import_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu", **kwargs)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(
            f"model file {path} does not exist or is not a file; expected {EXPECTED}"
        )


def is_torchscript_archive(path: Path) -> bool:
    """Tell whether ``path`` is a ``torch.jit.save`` archive (code and constants inside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def read_embedded_config(path: str | Path) -> dict[str, Any] | None:
    """Return the ModelConfig dict stored inside a torch model file, or None."""
    p = Path(path)
    _check_file(p)
    if is_torchscript_archive(p):
        extra = {CONFIG_EXTRA_FILE: ""}
        try:
            _jit_load(p, _extra_files=extra)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read TorchScript archive {p}: {exc}; expected {EXPECTED}"
            ) from exc
        text = extra[CONFIG_EXTRA_FILE]
        if not text:
            return None
        try:
            return dict(json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{p}: {CONFIG_EXTRA_FILE} is not a JSON object: {exc}") from exc
    config = read_checkpoint(p).get("config")
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise ModelLoadError(
            f"{p}: checkpoint 'config' must be a ModelConfig dict, got {type(config).__name__}"
        )
    return dict(config)


def select_depth_output(
    out: Any, output_name: str | None, sky_name: str | None = None
) -> "torch.Tensor":
    """Networks return a tensor, a tuple (depth first) or a dict; pick the depth map.

    From a dict: the ``output_name`` entry, else the first that is not ``sky_name``.
    """
    if isinstance(out, dict):
        if output_name is not None:
            if output_name not in out:
                raise InferenceError(
                    f"model output has no key {output_name!r}; it has {sorted(out)}"
                )
            picked: torch.Tensor = out[output_name]
            return picked
        depth: torch.Tensor = next(v for k, v in out.items() if k != sky_name)
        return depth
    if isinstance(out, (tuple, list)):
        first: torch.Tensor = out[0]
        return first
    tensor: torch.Tensor = out
    return tensor


class _CapturedGraph:
    def __init__(
        self, graph: Any, static_input: "torch.Tensor", static_output: "torch.Tensor"
    ) -> None:
        self.graph = graph
        self.static_input = static_input
        self.static_output = static_output


class TorchRunner:
    """:class:`~recon3d_ros.inference.engine.NetworkRunner` for PyTorch models."""

    name = "torch"

    def __init__(
        self,
        model_path: Path | str | None,
        config: ModelConfig,
        device: str = "auto",
        precision: str = "fp32",
        *,
        module: Any = None,
        cuda_graphs: bool = True,
        channels_last: bool = True,
        cpu_threads: int = 0,
    ) -> None:
        if model_path is None and module is None:
            raise ModelLoadError("TorchRunner needs a model file or an nn.Module")
        self.model_path = Path(model_path) if model_path is not None else None
        self.config = config
        self.device = resolve_device(device)
        self.precision = validate_precision(precision, self.name, self.device)
        self.cuda_graphs = cuda_graphs
        self.channels_last = channels_last
        self.cpu_threads = int(cpu_threads)  # 0 = torch's default; > 0 is set at load()
        self.meta: dict[str, Any] = {}
        self._module = module
        self._torch: Any = None
        self._dtype: Any = None
        self._stream: Any = None
        self._graphs: dict[tuple[int, ...], _CapturedGraph] = {}
        self._staging = PinnedStaging()

    @classmethod
    def from_module(
        cls,
        module: Any,
        config: ModelConfig,
        device: str = "auto",
        precision: str = "fp32",
        **kwargs: Any,
    ) -> "TorchRunner":
        """Wrap an in-memory ``nn.Module`` (training, benchmarks, export)."""
        return cls(None, config, device, precision, module=module, **kwargs)

    # ------------------------------------------------------------------ loading
    @property
    def module(self) -> Any:
        return self._module

    @property
    def stream(self) -> Any:
        """Return the CUDA stream this runner queues its work on (None on the CPU)."""
        return self._stream

    def _read_module(self, path: Path) -> Any:
        _check_file(path)
        if is_torchscript_archive(path):
            try:
                return _jit_load(path)
            except Exception as exc:
                raise ModelLoadError(
                    f"cannot load TorchScript archive {path}: {exc}; expected {EXPECTED}"
                ) from exc
        checkpoint = read_checkpoint(path)
        self.meta = dict(checkpoint.get("meta") or {})
        return model_from_checkpoint(checkpoint, path)

    def load(self) -> None:
        torch = self._torch = import_torch()
        if self.cpu_threads > 0:
            # Process-wide: with a busy CPU, extra threads spin-wait for each other (measured
            # 1.4 s per frame with 2 threads vs 12 ms with 1).
            torch.set_num_threads(self.cpu_threads)
        module = self._module
        if module is None:
            if self.model_path is None:  # the constructor refuses this: for the type checker
                raise ModelLoadError("TorchRunner needs a model file or an nn.Module")
            module = self._read_module(self.model_path)
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
            self.precision
        ]
        device = torch.device(self.device)
        module = module.eval().to(device=device)
        if self._dtype != torch.float32:
            module = module.to(self._dtype)
        if device.type == "cuda":
            if self.channels_last:
                module = module.to(memory_format=torch.channels_last)
            self._stream = torch.cuda.Stream(device=device)
            torch.backends.cudnn.benchmark = True
        self._module = module
        self._graphs.clear()

    # ------------------------------------------------------------------ running
    def _forward(self, x: "torch.Tensor") -> "torch.Tensor":
        result = self._module(x)
        sky_name = self.config.sky_output_name
        out = select_depth_output(result, self.config.output_name, sky_name).float()
        if sky_name is not None and isinstance(result, dict) and sky_name in result:
            # Sky is not depth (REP 118: NaN); ModelConfig.sky_mask's rule, on the device.
            sky = result[sky_name].float().reshape(out.shape)
            out = out.masked_fill(~(sky < self.config.sky_threshold), float("nan"))
        return out

    def _capture(self, x: "torch.Tensor") -> _CapturedGraph | None:
        """Record one forward pass as a CUDA graph (after a warm-up on a side stream)."""
        torch = self._torch
        static_input = x.clone()
        try:
            side = torch.cuda.Stream(device=x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):
                for _ in range(3):  # cudnn autotuning and lazy allocations happen here
                    self._forward(static_input)
            torch.cuda.current_stream(x.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=side):
                static_output = self._forward(static_input)
        except RuntimeError as exc:
            LOG.warning("CUDA graph capture failed (%s); running eagerly from now on", exc)
            self.cuda_graphs = False
            return None
        captured = _CapturedGraph(graph, static_input, static_output)
        if len(self._graphs) >= MAX_CUDA_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        self._graphs[tuple(x.shape)] = captured
        LOG.info("captured a CUDA graph for input shape %s", tuple(x.shape))
        return captured

    def run_torch(self, tensor: "torch.Tensor") -> "torch.Tensor":
        """1 x 3 x h x w tensor on this runner's device to the float32 output on the device.

        With CUDA graphs the result is the graph's static output: valid until the next call.
        """
        torch = self._torch
        if self._module is None or torch is None:
            raise InferenceError("TorchRunner.run called before load()")
        x = tensor.to(self._dtype)
        if x.is_cuda and self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if x.is_cuda and self.cuda_graphs:
                captured = self._graphs.get(tuple(x.shape)) or self._capture(x)
                if captured is not None:
                    captured.static_input.copy_(x)
                    captured.graph.replay()
                    return captured.static_output
            return self._forward(x)

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        torch = self._torch
        if self._module is None or torch is None:
            raise InferenceError("TorchRunner.run called before load()")
        array = np.ascontiguousarray(tensor, dtype=np.float32)
        try:
            if self.device == "cpu":
                with torch.inference_mode():
                    out = self.run_torch(torch.from_numpy(array))
                result: npt.NDArray[np.float32] = out.numpy().copy()
                return result
            return self._staging.run(array, self.device, self._stream, self.run_torch)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise InferenceError(
                f"torch model failed on an input of shape {array.shape}: {exc}"
            ) from exc
