"""``recon3d eval``: depth accuracy of a model on RGB-D folders, with two naive baselines.

Reads folders in the ``../shared/data/rgbd`` layout (intrinsics.json + colour/depth files, or
KITTI image + LiDAR + calibration). ``--json`` prints one JSON object per run (a ``sets`` map when
several ``--data`` folders are given); ``--out`` writes a PNG panel per frame and a summary plot.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from recon3d_ros.commands.options import add_model_options
from recon3d_ros.evaluation.evaluate import MODES, PLANE_CAP, PLANE_HEIGHT, TRAIN_MEDIAN_DEPTH

_TABLE_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "mae", "delta1", "delta2", "delta3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR",
        help="RGB-D folder to evaluate on (repeatable)",
    )
    add_model_options(parser)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    parser.add_argument("--out", help="folder for per-frame PNG panels and summary.png")
    parser.add_argument("--min-depth", type=float, default=1e-3)
    parser.add_argument(
        "--max-depth", type=float, default=80.0, help="ground truth beyond this is ignored"
    )
    parser.add_argument(
        "--constant-depth",
        type=float,
        default=TRAIN_MEDIAN_DEPTH,
        help=f"constant baseline depth in m (default {TRAIN_MEDIAN_DEPTH}: the training "
        "data's median)",
    )
    parser.add_argument(
        "--plane-height",
        type=float,
        default=PLANE_HEIGHT,
        help="ground-plane baseline camera height in m",
    )
    parser.add_argument(
        "--plane-cap",
        type=float,
        default=PLANE_CAP,
        help="ground-plane baseline maximum depth in m",
    )


def _fmt(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "  nan"


def _print_table(name: str, res: dict[str, Any], out) -> None:
    print(f"\n== {name}: {len(res['frames'])} frame(s)", file=out)
    header = f"{'':36s}" + "".join(f"{k:>9s}" for k in _TABLE_KEYS)
    print(header, file=out)
    rows = [("model", res)]
    for bname, bres in res.get("baselines", {}).items():
        rows.append((f"baseline {bname}", bres))
    for label, r in rows:
        for mode in MODES:
            print(
                f"{label + ' / ' + mode:36s}"
                + "".join(f"{_fmt(r[mode][k]):>9s}" for k in _TABLE_KEYS),
                file=out,
            )
    times = [f["infer_ms"] for f in res["frames"] if "infer_ms" in f]
    if times:
        print(
            f"inference: {sum(times) / len(times):.1f} ms per frame "
            "(mean, including pre/post-processing)",
            file=out,
        )


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.evaluation.dataset import load_rgbd_folder
    from recon3d_ros.evaluation.evaluate import evaluate_frames
    from recon3d_ros.inference.loader import load_engine
    from recon3d_ros.inference.pipeline import FramePipeline

    engine = load_engine(
        args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        preset=args.preset or None,
    )
    # The node's frame path with neutral options (no edge filter, no depth range): the metrics
    # apply their own --min-depth/--max-depth to the ground truth.
    pipeline = FramePipeline(engine)
    results: dict[str, dict[str, Any]] = {}
    out_dir = Path(args.out) if args.out else None
    for folder in args.data:
        frames = load_rgbd_folder(folder)
        name = Path(folder).resolve().name
        res = evaluate_frames(
            pipeline,
            frames,
            args.min_depth,
            args.max_depth,
            True,
            args.constant_depth,
            args.plane_height,
            args.plane_cap,
        )
        preds = res.pop("_predictions")
        if out_dir is not None:
            import cv2

            from recon3d_ros.evaluation.plots import frame_panel

            (out_dir / name).mkdir(parents=True, exist_ok=True)
            for fr, pred, rec in zip(frames, preds, res["frames"]):
                panel = frame_panel(fr.rgb, fr.depth_m, pred, rec["metric"], f"{name}/{fr.name}")
                cv2.imwrite(str(out_dir / name / f"{fr.name}.png"), panel)
        results[name] = res
    if out_dir is not None:
        from recon3d_ros.evaluation.plots import summary_plot

        summary_plot(list(results.items()), out_dir / "summary.png")
    info = {
        "model": str(args.model),
        "backend": engine.backend,
        "device": engine.device,
        "input": f"{engine.config.input_width}x{engine.config.input_height} "
        f"{engine.config.resize_mode}",
    }
    if args.json:
        if len(results) == 1:
            payload: dict[str, Any] = {
                **next(iter(results.values())),
                "set": next(iter(results)),
                **info,
            }
        else:
            payload = {"sets": results, **info}
        json.dump(payload, sys.stdout, allow_nan=True)
        sys.stdout.write("\n")
    else:
        print(
            f"model {info['model']} ({info['backend']} on {info['device']}, input {info['input']})"
        )
        for name, res in results.items():
            _print_table(name, res, sys.stdout)
        if out_dir is not None:
            print(f"\npanels and summary.png written to {out_dir}")
    return 0
