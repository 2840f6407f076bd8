"""``recon3d cloud``: a depth image (+ colour) to a PLY point cloud or mesh, offline.

Depth files: 16-bit PNG/PGM/TIFF (integer units, divided by ``--depth-scale``: 1000 for
millimetres, 5000 for ICL-NUIM/TUM), or ``.npy`` (float metres as written by ``recon3d``;
integer arrays are scaled like images). A stored 0 or NaN means "no measurement". Intrinsics
come from ``--fx --fy --cx --cy`` or an ``intrinsics.json`` (the RGB-D folders' format, whose
``depth_scale`` is used unless ``--depth-scale`` is given); a calibration for another resolution
is rescaled to the depth image's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.rgbd_io import (
    DEFAULT_DEPTH_SCALE,
    Intrinsics,
    read_depth,
    read_intrinsics,
    read_rgb,
)
from recon3d_ros.errors import CameraModelError, DatasetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--depth", required=True, help="depth image (.png/.pgm/.tif 16-bit) or .npy"
    )
    parser.add_argument(
        "--rgb", default=None, help="colour image registered to the depth (optional)"
    )
    parser.add_argument(
        "--depth-scale",
        type=float,
        default=None,
        help="stored units per metre for integer depth (default: intrinsics.json's "
        f"depth_scale, else {DEFAULT_DEPTH_SCALE:g}); float .npy is metres",
    )
    parser.add_argument(
        "--intrinsics",
        default=None,
        help="JSON with fx, fy, cx, cy [, width, height, depth_scale]",
    )
    for name in ("fx", "fy", "cx", "cy"):
        parser.add_argument(f"--{name}", type=float, default=None, help=f"{name} in pixels")
    parser.add_argument(
        "--mesh", action="store_true", help="write a triangle mesh instead of points"
    )
    parser.add_argument("--stride", type=int, default=1, help="keep every n-th pixel (default: 1)")
    parser.add_argument("--min-depth", type=float, default=0.0, help="metres; closer is dropped")
    parser.add_argument(
        "--max-depth", type=float, default=math.inf, help="metres; farther is dropped"
    )
    parser.add_argument(
        "--max-edge-ratio",
        type=float,
        default=0.05,
        help="mesh only: drop triangles whose depth jump exceeds this fraction of "
        "their depth (removes skins across occlusions; default: %(default)s)",
    )
    parser.add_argument("-o", "--output", required=True, help="output .ply")


def camera_from_args(
    args: argparse.Namespace, width: int, height: int, intrinsics: Intrinsics | None
) -> PinholeCamera:
    """Build the depth image's camera: ``--intrinsics``, any ``--fx/--fy/--cx/--cy`` on top."""
    fx, fy, cx, cy = args.fx, args.fy, args.cx, args.cy
    if intrinsics is None:
        if fx is None or fy is None or cx is None or cy is None:
            raise CameraModelError(
                "give the depth camera's intrinsics: --intrinsics intrinsics.json, or all of "
                "--fx --fy --cx --cy (pixels)"
            )
        intrinsics = Intrinsics(fx, fy, cx, cy, width, height)
    else:
        intrinsics = dataclasses.replace(
            intrinsics,
            fx=intrinsics.fx if fx is None else fx,
            fy=intrinsics.fy if fy is None else fy,
            cx=intrinsics.cx if cx is None else cx,
            cy=intrinsics.cy if cy is None else cy,
        )
    return intrinsics.camera(width, height, frame_id="camera_optical_frame")


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.core.ply import depth_to_mesh, write_ply
    from recon3d_ros.core.filters import apply_depth_range
    from recon3d_ros.core.pointcloud import depth_to_points

    if args.stride < 1:
        raise DatasetError(f"--stride must be >= 1, got {args.stride}")
    intrinsics = read_intrinsics(args.intrinsics) if args.intrinsics else None
    scale = args.depth_scale
    if scale is None and intrinsics is not None:
        scale = intrinsics.depth_scale
    depth = read_depth(args.depth, scale)
    height, width = depth.shape
    camera = camera_from_args(args, width, height, intrinsics)
    depth = apply_depth_range(depth, args.min_depth, args.max_depth)

    rgb = None
    if args.rgb:
        rgb = read_rgb(args.rgb)
        if rgb.shape[:2] != depth.shape:
            raise DatasetError(
                f"colour image {args.rgb} is {rgb.shape[1]}x{rgb.shape[0]} but the depth is "
                f"{width}x{height}; pass the colour image registered to this depth image"
            )

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.mesh:
        vertices, colors, faces = depth_to_mesh(
            depth, camera, rgb=rgb, max_edge_ratio=args.max_edge_ratio, stride=args.stride
        )
        write_ply(out, vertices, colors, faces)
        print(f"wrote {out}: mesh with {len(vertices)} vertices and {len(faces)} triangles")
        return 0
    points = depth_to_points(depth, camera, stride=args.stride).reshape(-1, 3)
    keep = np.all(np.isfinite(points), axis=1)
    colors = None if rgb is None else rgb[:: args.stride, :: args.stride].reshape(-1, 3)[keep]
    write_ply(out, points[keep], colors)
    print(
        f"wrote {out}: {int(keep.sum())} points "
        f"({int((~keep).sum())} pixels without depth skipped)"
    )
    return 0
