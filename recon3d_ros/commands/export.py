"""``recon3d export``: a PyTorch model (checkpoint, TorchScript or preset) to ONNX, checked.

Writes ``OUT.onnx`` (opset >= 17; dynamic height/width where the model allows it), the model
config in the file's metadata and as a sidecar ``OUT.onnx.yaml``, then runs ONNX Runtime and
PyTorch on the same inputs and prints the largest difference
(:mod:`recon3d_ros.inference.onnx_export`). ``--tensorrt`` also builds a TensorRT engine
``OUT.engine`` (+ ``OUT.engine.json``: what it was built for) on this GPU
(:func:`recon3d_ros.inference.tensorrt_build.build_engine_file`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from recon3d_ros.commands.options import (
    add_model_option,
    add_precision_option,
    add_preset_option,
    add_size_option,
)
from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import ConfigError, DatasetError
from recon3d_ros.inference.devices import BACKEND_PRECISIONS
from recon3d_ros.inference.onnx_export import MIN_OPSET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_option(
        parser,
        positional=True,
        help_text="preset name or .pt/.pth/.ts file, or an .onnx with --tensorrt "
        "(default: %(default)s)",
    )
    add_preset_option(
        parser, "preset whose pre/post-processing describes the model file (recon3d models)"
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
    add_size_option(
        parser,
        "--image-size",
        "640x480",
        "camera size the example input is made for (keep_aspect models)",
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
    add_precision_option(
        parser, "fp16", BACKEND_PRECISIONS["tensorrt"], "TensorRT engine precision"
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


def _load_images(folder: Path, limit: int = 500) -> list[np.ndarray]:
    """Up to ``limit`` RGB frames of a folder, in name order; unreadable files are skipped."""
    from recon3d_ros.core.rgbd_io import image_files, read_rgb

    images = []
    for path in image_files(folder)[:limit]:
        try:
            images.append(read_rgb(path))
        except DatasetError:
            continue  # a damaged frame among hundreds does not stop the calibration
    if not images:
        raise ConfigError(f"no readable images in {folder} for int8 calibration")
    return images


def _build_engine(
    onnx_path: Path, config: ModelConfig, args: argparse.Namespace
) -> Path:
    from recon3d_ros.inference.tensorrt_build import build_engine_file

    images = _load_images(args.calibration_images) if args.calibration_images else []
    return build_engine_file(
        onnx_path,
        config,
        args.precision,
        args.image_size,
        workspace_mb=args.workspace_mb,
        calibration_images=images,
    )


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.inference.loader import resolve_model
    from recon3d_ros.inference.onnx_export import check_opset, export_torch_model
    from recon3d_ros.inference.presets import PRESETS
    from recon3d_ros.inference.tensorrt_build import import_trt

    check_opset(args.opset)
    if args.tensorrt:
        import_trt()  # fail before the export work when TensorRT is missing
    # A preset exports from its PyTorch weights, not from the ONNX twin the CPU loader prefers.
    from_torch = args.model in PRESETS and not args.tensorrt
    source = resolve_model(
        args.model, backend="torch" if from_torch else "auto", preset=args.preset or None
    )
    if source.backend == "onnxruntime":
        if not args.tensorrt:
            raise ConfigError(
                f"{source.path} is already ONNX; add --tensorrt to build an engine from it"
            )
        print(f"TensorRT engine: {_build_engine(source.path, source.config, args)}")
        return 0
    if source.backend != "torch":
        raise ConfigError(
            f"export needs a PyTorch model (.pt/.pth/.ts or a torch preset), got {source.path}"
        )
    out = args.output or Path.cwd() / f"{source.path.stem}.onnx"
    result = export_torch_model(
        source.path,
        source.config,
        out,
        args.image_size,
        args.opset,
        dynamic=not args.static,
        tolerance=args.tolerance,
    )
    size = "dynamic" if result.dynamic else "fixed"
    print(f"ONNX model: {result.path} (opset {result.opset}, {size} height/width)")
    print(f"model config: {result.sidecar} (also in the ONNX metadata)")
    for shape, err, span in result.comparisons:
        print(
            f"  onnxruntime vs torch, input {shape}: max abs error {err:.3g} "
            f"(output range {span:.3g})"
        )
    if result.worst > args.tolerance:
        print(
            f"error: onnxruntime disagrees with torch by {result.worst:.3g} of the output range "
            f"(> --tolerance {args.tolerance})",
            file=sys.stderr,
        )
        return 1
    if args.tensorrt:
        print(f"TensorRT engine: {_build_engine(result.path, source.config, args)}")
    return 0
