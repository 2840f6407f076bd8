"""The ``recon3d`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when invoked, so ``recon3d eval`` does not pay for rclpy and ``recon3d demo``
does not pay for training code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from recon3d_ros.errors import Recon3dError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "recon3d_ros.commands.demo",
        "run the node on a synthetic sequence, image, video or folder",
    ),
    "train": (
        "recon3d_ros.commands.train",
        "train a depth network (synthetic and/or RGB-D folders)",
    ),
    "eval": ("recon3d_ros.commands.evaluate", "evaluate a model on RGB-D folders"),
    "export": (
        "recon3d_ros.commands.export",
        "export a model to ONNX (and build TensorRT engines)",
    ),
    "bench": (
        "recon3d_ros.commands.bench",
        "per-stage latency of decode, inference, cloud and publish",
    ),
    "synth": ("recon3d_ros.commands.synth", "render synthetic RGB-D frames to a folder"),
    "cloud": ("recon3d_ros.commands.cloud", "depth/RGB to a PLY point cloud or mesh"),
    "models": (
        "recon3d_ros.commands.models",
        "list the model presets and their files; inspect a model file",
    ),
    "reconstruct": (
        "recon3d_ros.commands.reconstruct",
        "fuse a bag, video, image or RGB-D folder into a TSDF map and a mesh",
    ),
    "bag": (
        "recon3d_ros.commands.bag",
        "run the depth node's pipeline over a rosbag2, adding depth and points",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon3d", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] in ("-h", "--help") or args_in[0] not in COMMANDS:
        parser = build_parser()
        if args_in and args_in[0] not in ("-h", "--help"):
            parser.error(f"unknown command {args_in[0]!r}; choose one of {', '.join(COMMANDS)}")
        parser.print_help()
        return 0 if args_in else 2
    name = args_in[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"recon3d {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(args_in[1:])
    try:
        return int(module.run(args) or 0)
    except Recon3dError as exc:
        print(f"recon3d {name}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
