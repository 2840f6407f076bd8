"""``recon3d demo``: the depth node end to end on real ROS 2, from a fresh clone.

The session itself is :func:`recon3d_ros.demo.session.run_demo`: it starts ``depth_node`` as its
own process on a random ``ROS_DOMAIN_ID`` with LOCALHOST discovery, renders a short synthetic
camera sequence (or reads ``--image``/``--video``/``--folder``) while the node loads its model,
publishes the frames at ``--rate`` Hz and writes under ``--out``: ``colormap/*.png`` (RGB |
depth | metre legend), ``rgb/`` + ``depth/`` (16-bit mm) + ``intrinsics.json`` (an RGB-D folder),
``cloud.ply`` (binary, coloured, from the received PointCloud2), ``mesh.ply``, ``preview.png``
(the PLY rendered from two side views), ``summary.json`` and ``node.log``; it prints frames
processed, fps and latency.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recon3d_ros.commands.options import add_model_options
from recon3d_ros.demo.session import (
    DEFAULT_IMAGE_FRAMES,
    DEFAULT_SYNTHETIC_FRAMES,
    DemoOptions,
    FrameSource,
    MAX_FILE_FRAMES,
    run_demo,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", help="one image (published --frames times, a still camera)")
    source.add_argument("--video", help="a video file")
    source.add_argument(
        "--folder", help="a folder of images (or an RGB-D folder with rgb/ or color/)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help=f"frames to publish (synthetic default {DEFAULT_SYNTHETIC_FRAMES}; "
        f"video/folder: all, at most {MAX_FILE_FRAMES}; image: {DEFAULT_IMAGE_FRAMES})",
    )
    parser.add_argument(
        "--width", type=int, default=320, help="synthetic frame width (default: %(default)s)"
    )
    parser.add_argument(
        "--height", type=int, default=240, help="synthetic frame height (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=16, help="synthetic scene seed (default: %(default)s)"
    )
    parser.add_argument(
        "--intrinsics",
        help="JSON with fx, fy, cx, cy [, width, height] for image/video/folder "
        "input (default: a 60 degree horizontal field of view)",
    )
    parser.add_argument(
        "--max-width", type=int, default=640, help="downscale wider input images to this"
    )
    add_model_options(parser, precision=False)
    parser.add_argument(
        "--rate", type=float, default=5.0, help="publish rate in Hz (default: %(default)s)"
    )
    parser.add_argument(
        "--cloud-stride", type=int, default=1, help="the node's cloud_stride (default: 1)"
    )
    parser.add_argument("--no-mesh", action="store_true", help="skip mesh.ply")
    parser.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the node to load its model (default: %(default)s)",
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random 1..200)"
    )


def run(args: argparse.Namespace) -> int:
    source = FrameSource(
        image=args.image,
        video=args.video,
        folder=args.folder,
        count=args.frames,
        width=args.width,
        height=args.height,
        seed=args.seed,
        intrinsics=args.intrinsics,
        max_width=args.max_width,
    )
    options = DemoOptions(
        model=args.model,
        preset=args.preset,
        backend=args.backend,
        device=args.device,
        rate_hz=args.rate,
        cloud_stride=args.cloud_stride,
        mesh=not args.no_mesh,
        out=Path(args.out),
        startup_timeout_s=args.startup_timeout,
        domain_id=args.domain_id,
    )
    run_demo(source, options)
    return 0
