"""``recon3d models``: the presets, where their files are looked for, and what a file holds.

* ``recon3d models``: every preset, the file name(s) it is looked for under, the model
  directories searched (in order), which files are present, and where to download the rest.
* ``recon3d models inspect FILE [--preset NAME]``: the file's inputs and outputs (names,
  static or dynamic dims, types), what the preset (or the file's own config) expects, whether
  they agree, and one frame through the network with the resulting depth range.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from recon3d_ros.commands.options import (
    add_backend_option,
    add_device_option,
    add_preset_option,
    add_size_option,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("list", "inspect"), default="list",
        help="list (default) or inspect FILE",
    )
    parser.add_argument("file", nargs="?", help="model file to inspect")
    add_preset_option(parser, help_text="preset that describes FILE (inspect)")
    add_backend_option(parser)
    add_device_option(parser, default="cpu", help_text="device for the test frame (default: cpu)")
    add_size_option(parser, "--image-size", "640x480", "camera size of the test frame (inspect)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _size_policy(config: Any) -> str:
    mode = config.resize_mode
    if mode == "keep_aspect":
        rule = f"shorter side {config.short_side}"
    elif mode == "keep_aspect_long":
        rule = f"longer side {config.long_side}"
    elif mode == "keep_aspect_nearest":
        rule = f"towards {config.input_width}x{config.input_height}, scale closest to 1"
    else:
        return f"{mode} to {config.input_width}x{config.input_height}"
    return f"{mode}: {rule}, multiple of {config.multiple_of} (needs dynamic height/width)"


def _describe_config(config: Any) -> dict[str, Any]:
    return {
        "input": config.input_name or "(the single image input)",
        "depth output": config.output_name or "(the depth output)",
        "sky output": config.sky_output_name,
        "resize": _size_policy(config),
        "interpolation": f"{config.interpolation} on {config.resize_dtype}",
        "input range": config.input_range
        + ("" if config.input_range != "normalised" else f" (mean {list(config.mean)}, "
           f"std {list(config.std)})"),
        "pad colour": list(config.pad_color) if config.resize_mode == "letterbox" else None,
        "output": config.output_kind
        + (f", metres = out * focal / {config.canonical_focal:g} (focal: {config.focal_rule})"
           if config.canonical_focal else ""),
        "depth range": [config.min_depth, None if math.isinf(config.max_depth) else
                        config.max_depth],
    }


def list_presets() -> dict[str, Any]:
    """Return what ``recon3d models`` prints: presets, search dirs and found files."""
    from recon3d_ros.inference.presets import PRESETS, find_preset_file, model_search_dirs

    dirs = model_search_dirs()
    rows = []
    for preset in PRESETS.values():
        found = find_preset_file(preset)
        if preset.packaged is not None:
            looked = [str(preset.packaged_path())]
        else:
            looked = [str(d / name) for d in dirs for name in preset.filenames]
        rows.append(
            {
                "name": preset.name,
                "description": preset.config.description,
                "files": list(preset.filenames) or [preset.packaged],
                "looked_for": looked,
                "found": str(found) if found else None,
                "download": preset.source,
                "upstream": preset.upstream,
            }
        )
    return {"model_dirs": [str(d) for d in dirs], "presets": rows}


def _print_list(data: dict[str, Any]) -> None:
    print("model directories (searched in order; RECON3D_MODEL_PATH first):")
    for i, d in enumerate(data["model_dirs"], 1):
        print(f"  {i}. {d}{'' if Path(d).is_dir() else '  (does not exist)'}")
    for row in data["presets"]:
        status = f"present: {row['found']}" if row["found"] else "missing"
        print(f"\n{row['name']}: {row['description']}")
        print(f"  file: {', '.join(str(f) for f in row['files'])}")
        print(f"  {status}")
        if not row["found"]:
            print(f"  download: {row['download']}")
    print(
        "\nUse a present preset with model:=NAME (CLI: --model NAME); a file elsewhere with "
        "model:=PATH preset:=NAME (CLI: --model PATH --preset NAME)."
    )


def inspect_file(
    path: Path, preset: str, backend: str, device: str, size: tuple[int, int]
) -> tuple[dict[str, Any], bool]:
    """Describe ``path`` against ``preset``; returns the report and whether they agree."""
    from recon3d_ros.commands.bench import synthetic_pattern
    from recon3d_ros.core.camera import PinholeCamera
    from recon3d_ros.errors import Recon3dError
    from recon3d_ros.inference.loader import load_engine, resolve_model
    from recon3d_ros.inference.onnx_backend import inspect_onnx
    from recon3d_ros.inference.presets import get_preset

    report: dict[str, Any] = {"file": str(path)}
    if path.suffix.lower() == ".onnx" and path.is_file():
        try:
            io = inspect_onnx(path)
        except Recon3dError as exc:
            report["error"] = str(exc)
            return report, False
        if io is not None:
            report["inputs"] = [t.describe() for t in io.inputs]
            report["outputs"] = [t.describe() for t in io.outputs]
    if preset:
        try:
            report["preset expects"] = _describe_config(get_preset(preset).config)
        except Recon3dError as exc:
            report["error"] = str(exc)
            return report, False
    try:
        source = resolve_model(str(path), backend, preset=preset or None, device=device)
    except Recon3dError as exc:
        report["agree"] = False
        report["error"] = str(exc)
        return report, False
    report["agree"] = True
    report["config from"] = list(source.config_layers) or ["defaults"]
    report["resolved"] = _describe_config(source.config)
    width, height = size
    camera = PinholeCamera.from_fov(width, height, 60.0)
    try:
        engine = load_engine(str(path), backend, device, preset=preset or None)
        rgb = synthetic_pattern(width, height)
        pre = engine.config.preprocess(rgb, camera)
        depth = engine.infer(rgb, camera)
    except Recon3dError as exc:
        report["agree"] = False
        report["error"] = f"one test frame failed: {exc}"
        return report, False
    finite = depth[np.isfinite(depth)]
    report["test frame"] = {
        "image": f"{width}x{height}, fx {camera.fx:.1f}",
        "network input": "x".join(str(d) for d in pre.tensor.shape),
        "backend": f"{engine.backend} on {engine.device}",
        "valid": f"{100.0 * finite.size / depth.size:.1f} %",
        "depth m (min / median / max)": (
            [round(float(v), 4) for v in np.percentile(finite, [0, 50, 100])]
            if finite.size else None
        ),
    }
    return report, True


def _print_report(report: dict[str, Any]) -> None:
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                if v is not None:
                    print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key}:")
            for v in value:
                print(f"  {v}")
        else:
            print(f"{key}: {value}")


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.errors import ConfigError

    if args.action == "list":
        if args.file:
            raise ConfigError(f"unexpected {args.file!r}: use recon3d models inspect FILE")
        data = list_presets()
        if args.json:
            print(json.dumps(data, indent=1))
        else:
            _print_list(data)
        return 0
    if not args.file:
        raise ConfigError("recon3d models inspect needs a FILE (an .onnx/.pt/.ts/.engine model)")
    report, agree = inspect_file(
        Path(args.file), args.preset, args.backend, args.device, args.image_size
    )
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_report(report)
    return 0 if agree else 1
