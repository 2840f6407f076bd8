r"""``recon3d train``: train the depth network on synthetic scenes and/or RGB-D folders.

Examples::

    recon3d synth --cache runs/cache --count 20000          # pre-render (optional, faster)
    recon3d train --synth-cache runs/cache --out runs/small --max-minutes 60
    recon3d train --data my_recordings/ --init-from recon3d_ros/models/weights/recon3d_small.pt \\
        --no-synthetic --epochs 5 --lr 3e-4 --out runs/finetune      # fine-tune on your own frames
    torchrun --nproc_per_node 4 -m recon3d_ros.cli train --device cuda ...   # multi-GPU (DDP)
"""

from __future__ import annotations

import argparse
import shlex
import sys

from recon3d_ros.commands.options import add_device_option, add_size_option
from recon3d_ros.errors import ConfigError
from recon3d_ros.training.cache import GENERATORS

MIN_SIZE = 32  # unet_small downsamples to 1/32: a smaller input or crop has no pixel left there


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--synth-cache",
        action="append",
        metavar="DIR",
        help="folder of pre-rendered synthetic frames (recon3d synth --cache); repeatable, "
        "to mix caches; without it frames are rendered on the fly (slow on a CPU)",
    )
    data.add_argument(
        "--synth-weights",
        type=float,
        nargs="+",
        metavar="W",
        help="share of each --synth-cache in the synthetic samples, one per cache "
        "(default: in proportion to their frame counts)",
    )
    data.add_argument(
        "--no-synthetic",
        dest="synthetic",
        action="store_false",
        help="train on --data folders only",
    )
    data.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="DIR",
        help="RGB-D folder (intrinsics.json layout or KITTI); repeatable",
    )
    data.add_argument(
        "--data-weight",
        type=float,
        default=0.5,
        help="share of folder samples when mixing with synthetic data (default 0.5)",
    )
    data.add_argument(
        "--eval-data",
        action="append",
        default=[],
        metavar="DIR",
        help="RGB-D folder scored after each epoch (evaluation only, never trained on)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--arch", default="unet_small")
    model.add_argument(
        "--width-mult", type=float, default=1.0, help="channel multiplier of unet_small"
    )
    model.add_argument("--init-from", help="start from this checkpoint's weights (fine-tuning)")
    add_size_option(
        model, "--input-size", "256x192", "network input of the saved ModelConfig", MIN_SIZE
    )
    model.add_argument(
        "--canonical-focal",
        type=float,
        default=200.0,
        help="focal length (pixels) of the canonical camera the network predicts for",
    )
    model.add_argument("--max-depth", type=float, default=80.0)
    opt = parser.add_argument_group("optimisation")
    add_size_option(opt, "--crop", "192x144", "training crop", MIN_SIZE)
    opt.add_argument("--epochs", type=int, default=10)
    opt.add_argument("--epoch-size", type=int, default=2000, help="samples per epoch")
    opt.add_argument("--batch", type=int, default=12)
    opt.add_argument("--lr", type=float, default=2e-3)
    opt.add_argument("--weight-decay", type=float, default=1e-4)
    opt.add_argument(
        "--augment",
        choices=("standard", "strong"),
        default="standard",
        help="augmentation: standard, or strong (wider exposure, roll, blur, noise)",
    )
    opt.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="anneal the learning rate over this wall-clock time and stop there",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default="runs/train",
        help="run folder (model.pt, best.pt, train_state.pt, log.jsonl)",
    )
    run.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    run.add_argument("--seed", type=int, default=0)
    add_device_option(run)
    run.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)"
    )
    run.add_argument(
        "--val-count", type=int, default=48, help="held-out synthetic validation frames"
    )
    run.add_argument(
        "--val-generators",
        nargs="+",
        default=["procedural"],
        choices=GENERATORS,
        metavar="GEN",
        help="generators of the held-out frames (--val-count of each); the checkpoint is "
        f"chosen on their mean AbsRel ({', '.join(GENERATORS)}; default: procedural)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress line")


def _synth_caches(args: argparse.Namespace) -> str | list[str] | None:
    """One cache as a plain folder name (as before), several as a list."""
    caches = args.synth_cache or []
    if args.synth_weights is not None and len(args.synth_weights) != len(caches):
        raise ConfigError(
            f"--synth-weights has {len(args.synth_weights)} values for {len(caches)} "
            "--synth-cache folders: give one weight per cache"
        )
    if not caches:
        return None
    return caches[0] if len(caches) == 1 else list(caches)


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.training.trainer import TrainOptions, train

    if not args.synthetic and not args.data:
        raise ConfigError("--no-synthetic needs at least one --data folder to train on")
    opts = TrainOptions(
        out_dir=args.out,
        synthetic=args.synthetic,
        synth_cache=_synth_caches(args),
        synth_weights=args.synth_weights,
        folders=list(args.data),
        folder_weight=args.data_weight,
        arch=args.arch,
        arch_kwargs={"width": args.width_mult},
        crop=args.crop,
        input_size=args.input_size,
        canonical_focal=args.canonical_focal,
        max_depth=args.max_depth,
        epochs=args.epochs,
        epoch_size=args.epoch_size,
        batch=args.batch,
        lr=args.lr,
        weight_decay=args.weight_decay,
        augment=args.augment,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        resume=args.resume,
        init_from=args.init_from,
        val_count=args.val_count,
        val_generators=tuple(args.val_generators),
        eval_folders=list(args.eval_data),
        max_minutes=args.max_minutes,
        command=(
            "recon3d train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
            if len(sys.argv) > 1
            else ""
        ),
        progress=not args.quiet,
    )
    path = train(opts)
    print(f"model written to {path} (best synthetic validation: {path.parent / 'best.pt'})")
    return 0
