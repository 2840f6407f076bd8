"""``recon3d export``: a PyTorch model (checkpoint, TorchScript or preset) to ONNX, checked.

Writes ``OUT.onnx`` (opset >= 17; dynamic height/width where the model allows it), the model
config in the file's metadata and as a sidecar ``OUT.onnx.yaml``, then runs ONNX Runtime and
PyTorch on the same inputs and prints the largest difference. ``--tensorrt`` also builds a
TensorRT engine ``OUT.engine`` (+ ``OUT.engine.json``: what it was built for) on this GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from recon3d_ros.errors import BackendUnavailableError, ConfigError, ModelLoadError
from recon3d_ros.inference.config import ModelConfig

MIN_OPSET = 17


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        nargs="?",
        default="default",
        help="preset name or .pt/.pth/.ts file, or an .onnx with --tensorrt "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--preset",
        default="",
        help="preset whose pre/post-processing describes the model file (recon3d models)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output .onnx path (default: the model's name with .onnx, in the current folder)",
    )
    parser.add_argument(
        "--opset", type=int, default=MIN_OPSET, help="ONNX opset, >= 17 (default: %(default)s)"
    )
    parser.add_argument(
        "--static", action="store_true", help="fixed input size (no dynamic height/width)"
    )
    parser.add_argument(
        "--image-size",
        default="640x480",
        help="camera WxH the example input is made for (keep_aspect models; default: %(default)s)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="max |onnxruntime - torch| relative to the output range (default: %(default)s)",
    )
    parser.add_argument(
        "--tensorrt",
        action="store_true",
        help="also build a TensorRT engine (needs TensorRT + GPU)",
    )
    parser.add_argument(
        "--precision",
        default="fp16",
        choices=("fp32", "fp16", "int8"),
        help="TensorRT engine precision (default: %(default)s)",
    )
    parser.add_argument(
        "--calibration-images",
        type=Path,
        default=None,
        help="folder of sample images for int8 calibration (typically 100-500 frames)",
    )
    parser.add_argument(
        "--workspace-mb", type=int, default=2048, help="TensorRT builder workspace (MiB)"
    )


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--image-size must look like 640x480, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"--image-size must be positive, got {text!r}")
    return w, h


def _select_depth(out: Any, output_name: str | None) -> Any:
    if isinstance(out, dict):
        return out[output_name] if output_name is not None else next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def _depth_only(module: Any, output_name: str | None) -> Any:
    """Wrap an eager module so it has one output (depth) for tracing; keep script modules."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return module  # tracing through a script module is not allowed: export it directly

    class DepthOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _select_depth(self.net(x), output_name)

    return DepthOnly().eval()


def example_input(config: ModelConfig, image_size: tuple[int, int], seed: int = 0) -> np.ndarray:
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
    module: Any, config: ModelConfig, example: np.ndarray, out: Path, opset: int, dynamic: bool
) -> None:
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
    import onnx

    if len(onnx.load(str(out)).graph.output) > 1:
        # A script module returning (depth, extras...): keep the depth output and what feeds it.
        onnx.utils.extract_model(str(out), str(out), [names[0]], [names[1]])


def embed_config(out: Path, config: ModelConfig) -> Path:
    """Store the config in the ONNX metadata and as ``OUT.onnx.yaml``; return the YAML path."""
    import yaml

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
    from recon3d_ros.inference.tensorrt_backend import file_sha256

    # The loader checks this checksum at start-up: a corrupt or swapped file is an error.
    sidecar = out.with_name(out.name + ".yaml")
    sidecar.write_text(
        yaml.safe_dump({"model": {**data, "sha256": file_sha256(out)}}, sort_keys=False)
    )
    return sidecar


def compare(
    module: Any, onnx_path: Path, inputs: list[np.ndarray], output_name: str | None = None
) -> list[tuple[tuple[int, ...], float, float]]:
    """(input shape, max |ort - torch|, torch output range) for each input."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results = []
    for x in inputs:
        with torch.no_grad():
            expected = _select_depth(module(torch.from_numpy(x)), output_name).float().numpy()
        got = session.run(None, {name: x})[0]
        if got.shape != expected.shape:
            raise ModelLoadError(
                f"ONNX output shape {got.shape} != torch {expected.shape} for input {x.shape}"
            )
        span = float(np.nanmax(expected) - np.nanmin(expected)) or 1.0
        results.append((tuple(x.shape), float(np.nanmax(np.abs(got - expected))), span))
    return results


def _load_images(folder: Path, limit: int = 500) -> list[np.ndarray]:
    import cv2

    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")
    )[:limit]
    images = []
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    if not images:
        raise ConfigError(f"no readable images in {folder} for int8 calibration")
    return images


def build_tensorrt(
    onnx_path: Path, config: ModelConfig, args: argparse.Namespace, image_size: tuple[int, int]
) -> Path:
    """Build ``OUT.engine`` on this GPU, with a ``.json`` record of what it was built for."""
    import torch

    from recon3d_ros.inference import tensorrt_backend as trtb

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "--tensorrt needs a CUDA GPU; run the export on the target machine"
        )
    calibrator = None
    images = _load_images(args.calibration_images) if args.calibration_images else []
    if args.precision == "int8":
        if not images:
            raise ConfigError(
                "--precision int8 needs --calibration-images FOLDER (sample frames of your scenes)"
            )
        batches = trtb.calibration_batches(config, images)
        calibrator = trtb.make_calibrator(
            trtb._import_trt(), batches, onnx_path.with_suffix(".calib"), "cuda:0"
        )
    shapes = trtb.profile_shapes(config, [image_size])
    data = trtb.build_engine(
        onnx_path,
        args.precision,
        shapes,
        workspace_mb=args.workspace_mb,
        calibrator=calibrator,
        input_name=config.input_name,
    )
    engine_path = onnx_path.with_suffix(".engine")
    engine_path.write_bytes(data)
    major, minor = torch.cuda.get_device_capability(0)
    record = {
        "model_sha256": trtb.file_sha256(onnx_path),
        "gpu_name": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "tensorrt_version": str(trtb._import_trt().__version__),
        "precision": args.precision,
        "input_shapes": [list(s) for s in shapes],
    }
    engine_path.with_name(engine_path.name + ".json").write_text(json.dumps(record, indent=1))
    import yaml

    # The engine's sidecar: the ONNX model's config, with the engine's own checksum.
    side = yaml.safe_load(onnx_path.with_name(onnx_path.name + ".yaml").read_text()) or {}
    body = side["model"] if isinstance(side.get("model"), dict) else side
    body["sha256"] = trtb.file_sha256(engine_path)
    engine_path.with_name(engine_path.name + ".yaml").write_text(
        yaml.safe_dump(side, sort_keys=False)
    )
    return engine_path


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.inference.loader import resolve_model
    from recon3d_ros.inference.presets import PRESETS
    from recon3d_ros.inference.tensorrt_backend import _import_trt

    if args.opset < MIN_OPSET:
        raise ConfigError(
            f"--opset must be >= {MIN_OPSET} (LayerNormalization and friends), got {args.opset}"
        )
    image_size = _parse_size(args.image_size)
    if args.tensorrt:
        _import_trt()  # fail before the export work when TensorRT is missing
    # A preset exports from its PyTorch weights, not from the ONNX twin the CPU loader prefers.
    from_torch = args.model in PRESETS and not args.tensorrt
    source = resolve_model(
        args.model, backend="torch" if from_torch else "auto", preset=args.preset or None
    )
    config = source.config
    if source.backend == "onnxruntime":
        if not args.tensorrt:
            raise ConfigError(
                f"{source.path} is already ONNX; add --tensorrt to build an engine from it"
            )
        engine = build_tensorrt(source.path, config, args, image_size)
        print(f"TensorRT engine: {engine}")
        return 0
    if source.backend != "torch":
        raise ConfigError(
            f"export needs a PyTorch model (.pt/.pth/.ts or a torch preset), got {source.path}"
        )

    from recon3d_ros.inference.torch_backend import TorchRunner

    from recon3d_ros.inference.tensorrt_backend import file_sha256

    # Record which weights this export came from: the loader only uses a packaged ONNX export
    # in place of its torch file when they match.
    config = config.replace(
        extra={**dict(config.extra), "source_sha256": file_sha256(source.path)}
    )
    runner = TorchRunner(source.path, config, device="cpu")
    runner.load()
    module = _depth_only(runner.module, config.output_name)
    out = args.output or Path.cwd() / f"{source.path.stem}.onnx"
    example = example_input(config, image_size)
    dynamic = not args.static
    export_onnx(module, config, example, out, args.opset, dynamic)
    inputs = [example]
    if dynamic:
        h2, w2 = _other_size(config, example.shape)
        inputs.append(np.random.default_rng(1).standard_normal((1, 3, h2, w2)).astype(np.float32))
        try:
            results = compare(module, out, inputs, config.output_name)
            ok = all(err <= args.tolerance * span for _, err, span in results)
        except Exception as exc:  # noqa: BLE001  (any failure there: static only)
            ok, results = False, []
            print(
                f"dynamic export failed at a second size ({exc}); exporting with a fixed size",
                file=sys.stderr,
            )
        if not ok:
            if config.fixed_input_size is None:
                raise ModelLoadError(
                    "this model does not export with dynamic height/width, but its config "
                    f"({config.resize_mode}) "
                    "feeds camera-dependent sizes; change resize_mode to stretch/letterbox first"
                )
            dynamic = False
            export_onnx(module, config, example, out, args.opset, dynamic=False)
            inputs = [example]
    results = compare(module, out, inputs, config.output_name)
    sidecar = embed_config(out, config)
    print(
        f"ONNX model: {out} (opset {args.opset}, {'dynamic' if dynamic else 'fixed'} height/width)"
    )
    print(f"model config: {sidecar} (also in the ONNX metadata)")
    worst = 0.0
    for shape, err, span in results:
        print(
            f"  onnxruntime vs torch, input {shape}: max abs error {err:.3g} "
            f"(output range {span:.3g})"
        )
        worst = max(worst, err / span)
    if worst > args.tolerance:
        print(
            f"error: onnxruntime disagrees with torch by {worst:.3g} of the output range "
            f"(> --tolerance {args.tolerance})",
            file=sys.stderr,
        )
        return 1
    if args.tensorrt:
        engine = build_tensorrt(out, config, args, image_size)
        print(f"TensorRT engine: {engine}")
    return 0
