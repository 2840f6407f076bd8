"""The training loop behind ``recon3d train``: single process, CPU or CUDA, or DDP via torchrun.

Run folder layout: ``model.pt`` (latest weights, a loadable checkpoint), ``best.pt`` (best
synthetic validation AbsRel so far), ``train_state.pt`` (weights + optimiser + RNG + step, what
``--resume`` reads) and ``log.jsonl`` (one JSON line per validation).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recon3d_ros.core.model_config import ModelConfig
from recon3d_ros.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from recon3d_ros.inference.engine import PipelineEngine

__all__ = ["TrainOptions", "train", "validate_synthetic", "render_validation_set"]


@dataclass
class TrainOptions:
    out_dir: str = "runs/train"
    synthetic: bool = True
    synth_cache: str | list[str] | None = None  # one cache folder or several, mixed
    synth_weights: list[float] | None = None  # share of each of several caches
    synth_size: tuple[int, int] = (256, 192)  # rendered when there is no cache
    folders: list[str] = field(default_factory=list)
    folder_weight: float = 0.5  # share of real-folder samples when both kinds are used
    arch: str = "unet_small"
    arch_kwargs: dict[str, Any] = field(default_factory=lambda: {"width": 1.0})
    crop: tuple[int, int] = (192, 144)  # training crop (width, height)
    input_size: tuple[int, int] = (256, 192)  # the shipped ModelConfig's network input
    canonical_focal: float = 200.0
    max_depth: float = 80.0
    epochs: int = 10
    epoch_size: int = 2000  # samples per epoch (per process)
    batch: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    augment: str = "standard"  # "standard" or "strong" (training.data.STRONG_AUGMENT)
    warmup_steps: int = 100
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = all cores
    resume: bool = False
    max_minutes: float = (
        0.0  # > 0: the LR schedule runs on wall-clock time and training stops at it
    )
    init_from: str | None = None  # start from another checkpoint's weights (fine-tuning)
    val_count: int = 48
    val_size: tuple[int, int] = (256, 192)
    # Generators of the held-out frames (val_count of each, seeds 0..val_count-1); the
    # checkpoint is chosen on their mean AbsRel. Give every generator the training mixes.
    val_generators: tuple[str, ...] = ("procedural",)
    eval_folders: list[str] = field(
        default_factory=list
    )  # real folders scored each epoch (never trained on)
    command: str = ""
    progress: bool = True


def render_validation_set(
    count: int,
    width: int,
    height: int,
    cache_file: Path | None = None,
    generator: str = "procedural",
):
    """Render (or read back) the held-out synthetic frames of ``generator``.

    Seeds 0..count-1; training seeds start at 1,000,000 for the procedural generator and at
    2,000,000 for the mesh one.
    """
    if cache_file is not None and cache_file.exists():
        data = np.load(cache_file)
        if len(data["rgb"]) == count and data["rgb"].shape[1:3] == (height, width):
            return data["rgb"], data["depth"], data["k"]
    from recon3d_ros.training.cache import renderer

    render_frame = renderer(generator)
    frames = [render_frame(i, width, height) for i in range(count)]
    rgb = np.stack([f.rgb for f in frames])
    depth = np.stack([f.depth for f in frames]).astype(np.float32)
    k = np.array([[f.camera.fx, f.camera.fy, f.camera.cx, f.camera.cy] for f in frames])
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, rgb=rgb, depth=depth, k=k)
    return rgb, depth, k


def validate_synthetic(
    model, val, canonical_focal: float, max_depth: float, device
) -> dict[str, float]:
    """Mean metric-mode AbsRel, delta1 and RMSE log over the held-out synthetic frames."""
    import torch

    from recon3d_ros.core.metrics import depth_metrics
    from recon3d_ros.core.model_config import IMAGENET_MEAN, IMAGENET_STD

    rgb, depth, k = val
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    rows = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rgb), 8):
            x = ((rgb[i:i + 8].astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2)
            pred = model(torch.from_numpy(np.ascontiguousarray(x)).to(device)).cpu().numpy()[:, 0]
            for j in range(pred.shape[0]):
                metric = pred[j] * (k[i + j, 0] / canonical_focal)
                try:
                    rows.append(depth_metrics(metric, depth[i + j], 0.05, max_depth))
                except DatasetError:  # a frame with no valid pixel (all sky) has nothing to score
                    continue
    model.train()
    keys = ("abs_rel", "delta1", "rmse_log")
    return {key: float(np.mean([r[key] for r in rows])) for key in keys} if rows else {}


class _Progress:
    """One self-overwriting stderr line (no tqdm dependency)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr is not None
        self.tty = self.enabled and sys.stderr.isatty()
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.5 if self.tty else 30.0):
            return
        self._last = now
        sys.stderr.write(("\r" + text + "\x1b[K") if self.tty else text + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _model_config(opts: TrainOptions) -> ModelConfig:
    return ModelConfig(
        name="recon3d_small",
        input_width=opts.input_size[0],
        input_height=opts.input_size[1],
        resize_mode="letterbox",
        output_kind="metric_depth",
        canonical_focal=opts.canonical_focal,
        min_depth=0.0,
        max_depth=opts.max_depth,
        # Says what trains it whatever the generators mixed (--synth-cache); the recipe of each
        # shipped version is in docs/MODEL.md.
        description="recon3d_ros small U-Net trained on synthetic RGB-D from recon3d synth "
        "(canonical-camera metric depth; recipe: docs/MODEL.md)",
    )


def train(opts: TrainOptions) -> Path:
    """Train according to ``opts``; returns the path of the final ``model.pt``."""
    import torch

    from recon3d_ros.inference.devices import resolve_device
    from recon3d_ros.models import build_model, read_checkpoint, save_checkpoint
    from recon3d_ros.training.data import (
        STRONG_AUGMENT,
        Augment,
        FolderSource,
        SyntheticSource,
        make_batch,
    )
    from recon3d_ros.training.losses import depth_loss

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    device = torch.device(resolve_device(opts.device))
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    main = rank == 0
    out = Path(opts.out_dir)
    if main:
        out.mkdir(parents=True, exist_ok=True)

    sources, weights = [], []
    if opts.synthetic:
        sources.append(
            SyntheticSource(
                opts.synth_cache,
                width=opts.synth_size[0],
                height=opts.synth_size[1],
                weights=opts.synth_weights,
            )
        )
        weights.append(1.0 - (opts.folder_weight if opts.folders else 0.0))
    if opts.folders:
        sources.append(FolderSource(opts.folders))
        weights.append(opts.folder_weight if opts.synthetic else 1.0)
    if not sources:
        raise ConfigError(
            "nothing to train on: enable the synthetic generator or pass --data folders"
        )
    for src in sources:
        if len(src) == 0:
            raise ConfigError(f"training source {src.name} has no frames")

    torch.manual_seed(opts.seed + rank)
    model = build_model(opts.arch, **opts.arch_kwargs).to(device)
    init_record: dict[str, Any] | None = None
    if opts.init_from:
        from recon3d_ros.models import load_checkpoint

        init_model, _, init_meta = load_checkpoint(opts.init_from)
        model.load_state_dict(init_model.state_dict())
        # Provenance chain: a fine-tuned file says what it started from, and so on back.
        init_record = {"path": str(opts.init_from), **init_meta}
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps_per_epoch = max(1, opts.epoch_size // opts.batch)
    total_steps = steps_per_epoch * opts.epochs
    rng = np.random.default_rng([opts.seed, rank])
    step, best, elapsed_before = 0, math.inf, 0.0
    state_path = out / "train_state.pt"
    if opts.resume:
        if not state_path.exists():
            raise ConfigError(f"--resume: no {state_path} to resume from; start without --resume")
        state = read_checkpoint(state_path, ("state_dict", "optimizer", "step"))
        model.load_state_dict(state["state_dict"])
        optim.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state.get("best", math.inf))
        elapsed_before = float(state.get("duration_s", 0.0))
        rng.bit_generator.state = (
            state["rng"][rank] if rank < len(state["rng"]) else rng.bit_generator.state
        )
        torch.set_rng_state(state["torch_rng"])
    from recon3d_ros.models.unet import LogDepth

    net = LogDepth(model)  # shares the parameters; calling it gives log depth
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            net, device_ids=[local_rank] if device.type == "cuda" else None
        )

    def progress_at(s: int) -> float:
        frac = s / max(1, total_steps)
        if opts.max_minutes > 0:
            elapsed = elapsed_before + time.monotonic() - t_start
            frac = max(frac, elapsed / (opts.max_minutes * 60.0))
        return min(1.0, frac)

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / max(1, opts.warmup_steps))
        return opts.lr * warm * 0.5 * (1.0 + math.cos(math.pi * progress_at(s)))

    config = _model_config(opts)
    vals: dict[str, Any] = {}
    if main:
        for gen in opts.val_generators:
            # The procedural set keeps its old file name, so earlier runs' files are reused.
            name = "val_synth.npz" if gen == "procedural" else f"val_synth_{gen}.npz"
            vals[gen] = render_validation_set(
                opts.val_count, opts.val_size[0], opts.val_size[1], out / name, gen
            )
    eval_frames = []
    if main and opts.eval_folders:
        from recon3d_ros.evaluation.dataset import load_rgbd_folder

        eval_frames = [(Path(f).name, load_rgbd_folder(f)) for f in opts.eval_folders]
    augments = {"standard": Augment(), "strong": STRONG_AUGMENT}
    if opts.augment not in augments:
        raise ConfigError(
            f"unknown augmentation {opts.augment!r}; choose one of {', '.join(augments)}"
        )
    aug = augments[opts.augment]
    progress = _Progress(opts.progress and main)
    data_desc = {
        "synthetic": bool(opts.synthetic),
        "synth_cache": opts.synth_cache,
        "synth_weights": opts.synth_weights,
        "folders": list(opts.folders),
        "crop": list(opts.crop),
        "augment": {"name": opts.augment, **asdict(aug)},
        "val": f"{opts.val_count} synthetic frames of each of {list(opts.val_generators)}, "
        f"seeds 0..{opts.val_count - 1}",
    }
    t_start = time.monotonic()

    def meta(now_step: int) -> dict[str, Any]:
        return {
            "command": opts.command,
            "seed": opts.seed,
            "steps": now_step,
            "batch": opts.batch,
            "world_size": world,
            "duration_s": round(elapsed_before + time.monotonic() - t_start, 1),
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
            f"torch {torch.__version__}, "
            f"device {device}",
            "data": {**data_desc, "synth_frames": len(sources[0]) if opts.synthetic else 0},
            "options": {k: v for k, v in asdict(opts).items() if k != "command"},
            **({"init_from": init_record} if init_record is not None else {}),
        }

    net.train()
    window: list[float] = []
    t_window = time.monotonic()
    while step < total_steps:
        for g in optim.param_groups:
            g["lr"] = lr_at(step)
        x, t, m = make_batch(
            sources,
            weights,
            opts.batch,
            opts.crop[0],
            opts.crop[1],
            opts.canonical_focal,
            opts.max_depth,
            rng,
            aug,
        )
        x, t, m = (torch.from_numpy(a).to(device, non_blocking=True) for a in (x, t, m))
        pred_log = net(x)  # through __call__ so DDP's gradient hooks run
        loss, parts = depth_loss(pred_log, t, m)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        step += 1
        window.append(float(loss.detach()))
        epoch = (step - 1) // steps_per_epoch + 1
        rate = opts.batch * len(window) / max(1e-6, time.monotonic() - t_window)
        eta = (total_steps - step) * opts.batch / max(rate, 1e-6)
        progress.update(
            f"epoch {epoch}/{opts.epochs} step {step}/{total_steps} "
            f"loss {np.mean(window[-50:]):.4f} "
            f"(silog {parts['silog']:.3f} l1 {parts['l1']:.3f} grad {parts['grad']:.3f}) "
            f"lr {lr_at(step):.2e} {rate:.1f} samples/s eta {eta / 60:.1f} min"
        )
        out_of_time = _agree(opts.max_minutes > 0 and progress_at(step) >= 1.0, world, device)
        if step % steps_per_epoch == 0 or step == total_steps or out_of_time:
            for src in sources:
                if hasattr(src, "refresh"):
                    src.refresh()  # a cache may still be growing
            if main:
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "step": step,
                    "loss": float(np.mean(window)),
                    "time_s": round(elapsed_before + time.monotonic() - t_start, 1),
                    "synth_frames": len(sources[0]) if opts.synthetic else 0,
                }
                by_gen = {
                    gen: validate_synthetic(
                        model, val, opts.canonical_focal, opts.max_depth, device
                    )
                    for gen, val in vals.items()
                }
                # The mean over the generators' held-out sets (each {} when none of its
                # frames could be scored; otherwise all three keys).
                scored = [v for v in by_gen.values() if v]
                record["val_synth"] = {
                    key: float(np.mean([v[key] for v in scored]))
                    for key in ("abs_rel", "delta1", "rmse_log")
                } if scored else {}
                if len(by_gen) > 1:
                    record["val_by_generator"] = by_gen
                if eval_frames:
                    from recon3d_ros.evaluation.evaluate import evaluate_frames
                    from recon3d_ros.inference.pipeline import FramePipeline

                    pipeline = FramePipeline(_eval_engine(model, config, device))
                    model.eval()
                    try:
                        for name, frames in eval_frames:
                            res = evaluate_frames(pipeline, frames, baselines=False)
                            record[f"eval_{name}"] = {
                                mode: {k: round(res[mode][k], 4) for k in ("abs_rel", "delta1")}
                                for mode in ("metric", "median")
                            }
                    finally:
                        model.train()
                m_now = meta(step)
                save_checkpoint(
                    out / "model.pt", model, opts.arch, opts.arch_kwargs, config, m_now
                )
                score = record["val_synth"].get("abs_rel", math.inf)
                if score < best:
                    best = score
                    save_checkpoint(
                        out / "best.pt", model, opts.arch, opts.arch_kwargs, config, m_now
                    )
                record["best_val_abs_rel"] = best
                rng_states = [rng.bit_generator.state]
                torch.save(
                    {
                        "state_dict": model.state_dict(),
                        "optimizer": optim.state_dict(),
                        "step": step,
                        "best": best,
                        "rng": rng_states,
                        "torch_rng": torch.get_rng_state(),
                        "duration_s": m_now["duration_s"],
                    },
                    str(state_path) + ".tmp",
                )
                os.replace(str(state_path) + ".tmp", state_path)
                with open(out / "log.jsonl", "a") as fh:
                    fh.write(json.dumps(record) + "\n")
                progress.update(f"epoch {epoch} done: " + json.dumps(record), force=True)
                progress.done()
            window, t_window = [], time.monotonic()
        if out_of_time:
            break  # the time-based schedule has annealed to zero
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return out / "model.pt"


def _agree(flag: bool, world: int, device) -> bool:
    """Rank 0's answer on every rank (clocks differ; ranks must stop at the same step)."""
    if world <= 1:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def _eval_engine(model: Any, config: ModelConfig, device: Any) -> "PipelineEngine":
    """Wrap the model under training in the node's engine (``config``'s pre/post-processing).

    No CUDA graphs and no channels-last copy: the weights change between evaluations, and the
    training step must keep its own memory layout. The caller switches the model to eval mode
    for the evaluation and back.
    """
    from recon3d_ros.inference.engine import PipelineEngine
    from recon3d_ros.inference.torch_backend import TorchRunner

    runner = TorchRunner.from_module(
        model, config, device=str(device), cuda_graphs=False, channels_last=False
    )
    return PipelineEngine(runner, config)
