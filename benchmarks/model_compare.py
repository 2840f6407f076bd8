"""Compare depth checkpoints on held-out synthetic frames and on the real RGB-D sets (figures).

For each model (``--models A.pt B.pt ...``; the default: the shipped file) this prints one JSON
object with

* ``synthetic``: metric-mode AbsRel / delta1 over held-out frames of each generator that played
  no part in training or in choosing a checkpoint (seeds ``--seed0`` .. ``--seed0 + --count - 1``;
  training seeds start at 1,000,000 and 2,000,000, validation uses 0..47), as rendered and
  with the same frames made 0.6x and 1.5x as bright (exposure robustness);
* ``real``: for every set under ``--data`` (``../shared/data/rgbd``; evaluation only, never
  training) AbsRel / delta1 in ``metric`` and ``median`` mode, through the node's frame path
  (``FramePipeline``, the same one ``recon3d eval`` runs), with both baselines on the first model.

``--markdown`` also prints the tables docs/MODEL.md shows. Run:
``PYTHONPATH=. python benchmarks/model_compare.py --models v3.pt v4.pt --markdown``
(the mesh generator needs ``make synth-data``; without it that part is skipped).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any

import numpy as np

from recon3d_ros.core.metrics import depth_metrics
from recon3d_ros.errors import DatasetError, Recon3dError
from recon3d_ros.evaluation.dataset import load_rgbd_folder
from recon3d_ros.evaluation.evaluate import evaluate_frames
from recon3d_ros.inference.loader import load_engine
from recon3d_ros.inference.pipeline import FramePipeline

GAINS = (1.0, 0.6, 1.5)
SETS = ("kinect_room", "redwood", "icl", "kitti")


def synthetic_frames(generator: str, seed0: int, count: int, size: tuple[int, int]) -> list[Any]:
    from recon3d_ros.training.cache import renderer

    render = renderer(generator)
    return [render(seed0 + i, size[0], size[1]) for i in range(count)]


def score_synthetic(pipeline: FramePipeline, frames: list[Any]) -> dict[str, list[float]]:
    """Metric-mode AbsRel / delta1 per brightness gain (the node's frame path)."""
    out: dict[str, list[float]] = {}
    for gain in GAINS:
        rows = []
        for f in frames:
            rgb = np.clip(f.rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            pred = pipeline.process(rgb, f.camera).depth
            try:
                rows.append(depth_metrics(pred, f.depth, 0.05, 80.0))
            except DatasetError:  # all sky: nothing to score
                continue
        out[f"x{gain:g}"] = [
            round(float(np.mean([r["abs_rel"] for r in rows])), 4),
            round(float(np.mean([r["delta1"] for r in rows])), 4),
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent
                                              / "shared" / "data" / "rgbd"))
    parser.add_argument("--generators", nargs="+", default=["procedural", "mesh"])
    parser.add_argument("--seed0", type=int, default=1000)
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    synth: dict[str, list[Any]] = {}
    for gen in args.generators:
        try:
            synth[gen] = synthetic_frames(gen, args.seed0, args.count, (256, 192))
        except Recon3dError as exc:
            print(f"skipping the {gen} generator: {exc}", file=sys.stderr)
    real = {name: load_rgbd_folder(Path(args.data) / name)
            for name in SETS if (Path(args.data) / name).is_dir()}

    results = []
    for i, model in enumerate(args.models):
        pipeline = FramePipeline(load_engine(model, device="cpu"))
        row: dict[str, Any] = {"model": model, "synthetic": {}, "real": {}}
        for gen, frames in synth.items():
            row["synthetic"][gen] = score_synthetic(pipeline, frames)
        for name, frames in real.items():
            res = evaluate_frames(pipeline, frames, baselines=(i == 0))
            row["real"][name] = {
                mode: [round(res[mode]["abs_rel"], 3), round(res[mode]["delta1"], 3)]
                for mode in ("metric", "median")
            }
            if i == 0:
                row["real"][name]["baselines"] = {
                    base: {mode: [round(v[mode]["abs_rel"], 3), round(v[mode]["delta1"], 3)]
                           for mode in ("metric", "median")}
                    for base, v in res["baselines"].items()
                }
        print(json.dumps(row), flush=True)
        results.append(row)
    if args.markdown:
        print(markdown(results))
    return 0


def markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    gens = list(results[0]["synthetic"]) if results else []
    if gens:
        head = " | ".join(f"{g} {k}" for g in gens for k in ("as rendered", "x0.6", "x1.5"))
        lines += [f"| model | {head} |", "|---" * (1 + 3 * len(gens)) + "|"]
        for r in results:
            cells = " | ".join(f"{v[0]:.3f} / {v[1]:.3f}" for g in gens
                               for v in r["synthetic"][g].values())
            lines.append(f"| {r['model']} | {cells} |")
        lines.append("")
    sets = list(results[0]["real"]) if results else []
    lines += ["| set | mode | " + " | ".join(r["model"] for r in results)
              + " | constant | ground plane |", "|---" * (4 + len(results)) + "|"]
    for name in sets:
        for mode in ("metric", "median"):
            cells = [f"{r['real'][name][mode][0]:.3f} / {r['real'][name][mode][1]:.3f}"
                     for r in results]
            base = results[0]["real"][name].get("baselines", {})
            for b in ("constant", "ground_plane"):
                v = base.get(b, {}).get(mode)
                cells.append(f"{v[0]:.3f} / {v[1]:.3f}" if v else "")
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
