"""``recon3d synth``: render synthetic RGB-D frames.

Two outputs:

* ``--out DIR``: an RGB-D folder in the ``../shared/data/rgbd`` layout (``color/N.png``,
  ``depth/N.png`` 16-bit millimetres with 0 for sky, ``intrinsics.json``), readable by
  ``recon3d eval`` and ``recon3d train --data``; one field of view for all frames;
* ``--cache DIR``: the training cache (``.npy`` shards, random field of view per frame) that
  ``recon3d train --synth-cache`` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recon3d_ros.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out", help="write an RGB-D folder (PNG colour + 16-bit depth + intrinsics.json)"
    )
    target.add_argument("--cache", help="write a training cache of .npy shards")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="first seed (frame i uses seed + i)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument(
        "--hfov", type=float, default=70.0, help="horizontal field of view (--out only)"
    )
    parser.add_argument(
        "--kind", choices=("room", "corridor", "street", "yard"), help="scene kind (--out only)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="rendering processes (--cache only)"
    )
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument(
        "--generator",
        choices=("procedural", "mesh"),
        default="procedural",
        help="procedural primitives, or furnished rooms of real models (needs the "
        "sweethome3d-furniture package: make synth-data) (--cache only)",
    )


def write_folder(
    out: Path, count: int, seed: int, width: int, height: int, hfov: float, kind: str | None
) -> Path:
    """Render ``count`` frames into an RGB-D folder; returns the intrinsics.json path."""
    import cv2

    from recon3d_ros.core.encodings import depth_m_to_mm16
    from recon3d_ros.synth import render_frame

    (out / "color").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    ids, camera = [], None
    for i in range(count):
        f = render_frame(seed + i, width, height, hfov_deg=hfov, kind=kind, jitter_principal=False)
        camera = f.camera
        mm = depth_m_to_mm16(f.depth)  # beyond 65.5 m: stored as "no measurement"
        cv2.imwrite(str(out / "color" / f"{i}.png"), f.rgb[..., ::-1])
        cv2.imwrite(str(out / "depth" / f"{i}.png"), mm)
        ids.append(str(i))
    if camera is None:
        raise ConfigError("--count must be positive")
    from recon3d_ros.core.rgbd_io import write_intrinsics_json

    note = f"recon3d synth, seeds {seed}..{seed + count - 1}, hfov {hfov} deg"
    return write_intrinsics_json(out, camera, ids, "color/{i}.png", note)


def run(args: argparse.Namespace) -> int:
    if args.count <= 0:
        raise ConfigError(f"--count must be positive, got {args.count}")
    if args.width < 16 or args.height < 16:
        raise ConfigError(f"image size must be at least 16x16, got {args.width}x{args.height}")
    if args.out:
        if args.generator != "procedural":
            raise ConfigError("--generator mesh writes training caches only: use --cache DIR")
        path = write_folder(
            Path(args.out), args.count, args.seed, args.width, args.height, args.hfov, args.kind
        )
        print(f"wrote {args.count} frames to {path.parent}")
    else:
        from recon3d_ros.training.cache import build_cache

        build_cache(
            args.cache,
            args.count,
            args.seed,
            args.width,
            args.height,
            args.shard_size,
            args.workers,
            args.generator,
        )
        print(f"cache of {args.count} {args.generator} frames in {args.cache}")
    return 0
