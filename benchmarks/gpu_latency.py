"""Per-stage latency of a Depth-Anything-V2-Small-sized network on the torch CUDA path.

The network has DA-V2-Small's shape (ViT-S/14 encoder: 384-dim, 12 blocks, 6 heads, features
from blocks 2/5/8/11, then a DPT-like fusion head) with random weights: latency depends on the
shapes, not on the weights, and nothing is downloaded. Stages, as the node pays them:

* ``upload_preprocess_ms``: pinned host -> GPU copy of the uint8 frame, resize, normalise;
* ``inference_ms``: the network (CUDA graph replay when enabled);
* ``postprocess_download_ms``: back to the image grid, metres, one device -> host copy;
* ``end_to_end_ms``: wall clock of ``engine.infer`` (what a caller waits for).

GPU stages are timed with CUDA events, so no extra synchronisation is added. Runs on the CPU
too (``--device cpu``, slowly; ``--tiny`` for a quick smoke run).

Usage: python benchmarks/gpu_latency.py [--device cuda] [--precision fp16] [--size 518]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np


def build_network(
    embed_dim: int = 384, depth: int = 12, heads: int = 6, features: int = 64, patch: int = 14
) -> Any:
    """Return a ViT-S/14 + DPT-like depth network (random weights), input 1 x 3 x H x W."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(embed_dim)
            self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
            self.proj = nn.Linear(embed_dim, embed_dim)
            self.norm2 = nn.LayerNorm(embed_dim)
            self.mlp = nn.Sequential(
                nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(), nn.Linear(4 * embed_dim, embed_dim)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, c = x.shape
            qkv = (
                self.qkv(self.norm1(x)).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
            )
            attn = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            x = x + self.proj(attn.transpose(1, 2).reshape(b, n, c))
            return x + self.mlp(self.norm2(x))

    class Fusion(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.res = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(features, features, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(features, features, 3, padding=1),
            )
            self.out = nn.Conv2d(features, features, 1)

        def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
            if skip is not None:
                x = x + F.interpolate(
                    skip, size=x.shape[-2:], mode="bilinear", align_corners=False
                )
            x = x + self.res(x)
            return self.out(
                F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            )

    class DepthViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Conv2d(3, embed_dim, patch, stride=patch)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.pos_embed = nn.Parameter(torch.randn(1, 1 + 37 * 37, embed_dim) * 0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.norm = nn.LayerNorm(embed_dim)
            self.taps = (depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1)
            out_channels = (48, 96, 192, 384)
            self.project = nn.ModuleList(nn.Conv2d(embed_dim, c, 1) for c in out_channels)
            self.resize = nn.ModuleList(
                [
                    nn.ConvTranspose2d(48, 48, 4, stride=4),
                    nn.ConvTranspose2d(96, 96, 2, stride=2),
                    nn.Identity(),
                    nn.Conv2d(384, 384, 3, stride=2, padding=1),
                ]
            )
            self.layer_rn = nn.ModuleList(
                nn.Conv2d(c, features, 3, padding=1, bias=False) for c in out_channels
            )
            self.fusion = nn.ModuleList(Fusion() for _ in out_channels)
            self.head = nn.Sequential(
                nn.Conv2d(features, features // 2, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(features // 2, 32, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 1, 1),
                nn.ReLU(),
            )

        def _pos(self, gh: int, gw: int) -> torch.Tensor:
            grid = self.pos_embed[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
            if (gh, gw) != (37, 37):
                grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
            return torch.cat([self.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2:]
            tokens = self.patch_embed(x)
            gh, gw = tokens.shape[-2:]
            tokens = tokens.flatten(2).transpose(1, 2)
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
            tokens = tokens + self._pos(gh, gw)
            taps = []
            for i, block in enumerate(self.blocks):
                tokens = block(tokens)
                if i in self.taps:
                    taps.append(
                        self.norm(tokens)[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, gh, gw)
                    )
            maps = [
                rn(rs(pr(t)))
                for t, pr, rs, rn in zip(taps, self.project, self.resize, self.layer_rn)
            ]
            path = None
            for fmap, fuse in zip(reversed(maps), reversed(self.fusion)):
                path = fuse(fmap, path) if path is None else fuse(path, fmap)
            out = self.head(path)
            return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)

    return DepthViT().eval()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the engine ``args.iterations`` times after a warm-up; return median stage times."""
    import torch

    from recon3d_ros.core.camera import PinholeCamera
    from recon3d_ros.core.model_config import ModelConfig
    from recon3d_ros.inference.gpu_pipeline import GpuPipelineEngine
    from recon3d_ros.inference.torch_backend import TorchRunner

    torch.manual_seed(0)
    dims = {"embed_dim": 48, "depth": 4, "heads": 2, "features": 16} if args.tiny else {}
    net = build_network(**dims)
    config = ModelConfig(
        name="da_v2_small_shaped",
        input_width=args.size,
        input_height=args.size,
        resize_mode="stretch",
        output_kind="relative_inverse_depth",
    )
    runner = TorchRunner.from_module(
        net,
        config,
        device=args.device,
        precision=args.precision,
        cuda_graphs=not args.no_cuda_graphs,
    )
    engine = GpuPipelineEngine(runner, config)
    engine.load()
    width, height = args.image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    camera = PinholeCamera.from_fov(width, height, 70.0)
    for _ in range(args.warmup):
        engine.infer(rgb, camera)
    stages: dict[str, list[float]] = {
        "upload_preprocess_ms": [],
        "inference_ms": [],
        "postprocess_download_ms": [],
        "end_to_end_ms": [],
    }
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        engine.infer(rgb, camera)
        stages["end_to_end_ms"].append((time.perf_counter() - t0) * 1e3)
        stages["upload_preprocess_ms"].append(engine.timings.preprocess_ms)
        stages["inference_ms"].append(engine.timings.inference_ms)
        stages["postprocess_download_ms"].append(engine.timings.postprocess_ms)
    device_name = (
        torch.cuda.get_device_name(runner.device) if runner.device.startswith("cuda") else "cpu"
    )
    return {
        "device": runner.device,
        "device_name": device_name,
        "precision": runner.precision,
        "cuda_graphs": bool(runner.device.startswith("cuda") and runner.cuda_graphs),
        "network_input": [args.size, args.size],
        "image": [width, height],
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "iterations": args.iterations,
        "median_ms": {k: statistics.median(v) for k, v in stages.items()},
        "p90_ms": {k: float(np.percentile(v, 90)) for k, v in stages.items()},
    }


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument(
        "--precision", default=None, help="fp32, fp16, bf16 (default: fp16 on CUDA)"
    )
    parser.add_argument(
        "--size", type=int, default=518, help="network input side (multiple of 14)"
    )
    parser.add_argument("--image", type=_size, default=(1280, 720), help="camera WxH (1280x720)")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-cuda-graphs", action="store_true", help="run the network eagerly")
    parser.add_argument("--tiny", action="store_true", help="a tiny network (smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.precision is None:
        from recon3d_ros.inference.devices import resolve_device

        args.precision = "fp16" if resolve_device(args.device).startswith("cuda") else "fp32"
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(
        f"{result['device_name']} ({result['device']}), {result['precision']}, CUDA graphs "
        f"{'on' if result['cuda_graphs'] else 'off'}; {result['parameters_m']:.1f} M parameters, "
        f"network {args.size}x{args.size}, image {args.image[0]}x{args.image[1]}, "
        f"{args.iterations} frames"
    )
    print(f"  {'stage':26s} {'median ms':>10s} {'p90 ms':>10s}")
    for stage, value in result["median_ms"].items():
        print(f"  {stage:26s} {value:10.2f} {result['p90_ms'][stage]:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
