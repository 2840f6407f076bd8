"""Pre-rendered synthetic frames on disk, so training is not bound by ray casting.

A cache is a folder of shards; shard ``k`` holds ``shard_k.rgb.npy`` (N x H x W x 3 uint8),
``shard_k.depth.npy`` (N x H x W float16 metres, inf for sky) and ``shard_k.meta.npy``
(N x 5 float64: seed, fx, fy, cx, cy). Shards are written whole and renamed into place, so a
trainer can read a cache that is still growing. ``generator`` picks the renderer: the
procedural primitives of :func:`recon3d_ros.synth.render_frame` or the furnished rooms of real
models of :func:`recon3d_ros.synth.mesh_render.render_mesh_frame`; the shards are the same.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ConfigError, DatasetError

__all__ = ["GENERATORS", "renderer", "render_shard", "build_cache", "SynthCache"]

GENERATORS = ("procedural", "mesh")


def renderer(generator: str):
    """Return ``render_frame(seed, width, height)`` of ``generator`` (imported on demand)."""
    if generator == "procedural":
        from recon3d_ros.synth import render_frame

        return render_frame
    if generator == "mesh":
        from recon3d_ros.synth.mesh_render import render_mesh_frame

        return render_mesh_frame
    raise ConfigError(f"unknown synthetic generator {generator!r}; choose one of {GENERATORS}")


def render_shard(
    folder: str | Path,
    shard: int,
    seeds: list[int],
    width: int,
    height: int,
    generator: str = "procedural",
) -> Path:
    """Render ``seeds`` into shard number ``shard`` of ``folder`` (skipped when it exists)."""
    render_frame = renderer(generator)
    folder = Path(folder)
    final = folder / f"shard_{shard:05d}.meta.npy"
    if final.exists():
        return final
    rgb = np.zeros((len(seeds), height, width, 3), np.uint8)
    depth = np.zeros((len(seeds), height, width), np.float16)
    meta = np.zeros((len(seeds), 5), np.float64)
    for i, seed in enumerate(seeds):
        f = render_frame(int(seed), width, height)
        rgb[i], depth[i] = f.rgb, np.minimum(f.depth, 6e4).astype(np.float16)
        depth[i][~np.isfinite(f.depth)] = np.inf
        meta[i] = (seed, f.camera.fx, f.camera.fy, f.camera.cx, f.camera.cy)
    for name, arr in (("rgb", rgb), ("depth", depth)):
        tmp = folder / f"shard_{shard:05d}.{name}.tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, folder / f"shard_{shard:05d}.{name}.npy")
    tmp = folder / f"shard_{shard:05d}.meta.tmp.npy"
    np.save(tmp, meta)
    os.replace(tmp, final)  # meta last: its presence marks a complete shard
    return final


def build_cache(
    folder: str | Path,
    count: int,
    first_seed: int,
    width: int,
    height: int,
    shard_size: int = 250,
    workers: int = 1,
    generator: str = "procedural",
) -> Path:
    """Render ``count`` frames (seeds from ``first_seed``) into ``folder`` with ``workers``."""
    renderer(generator)  # an unknown name fails here, not in a worker process
    if generator == "mesh":
        from recon3d_ros.synth.mesh_render import default_assets

        default_assets()  # converts the furniture once here, not in every worker at once
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for shard, start in enumerate(range(0, count, shard_size)):
        seeds = list(range(first_seed + start, first_seed + min(start + shard_size, count)))
        jobs.append((folder, shard, seeds, width, height, generator))
    if workers <= 1:
        for job in jobs:
            render_shard(*job)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(render_shard, *zip(*jobs)):
                pass
    return folder


class SynthCache:
    """Read access to the complete shards of a cache folder (memory-mapped)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.rgb: list[npt.NDArray[np.uint8]] = []
        self.depth: list[npt.NDArray[np.float16]] = []
        self.meta: list[npt.NDArray[np.float64]] = []
        self._stems: set[str] = set()
        self.refresh()

    def refresh(self) -> int:
        """Pick up shards finished since the last call; returns the frame count."""
        if not self.folder.is_dir():
            raise DatasetError(
                f"synthetic cache folder {self.folder} does not exist; build it with "
                "`recon3d synth --cache DIR --count N`"
            )
        metas = sorted(p for p in self.folder.glob("shard_*.meta.npy") if ".tmp." not in p.name)
        for meta_path in metas:
            stem = meta_path.name[: -len(".meta.npy")]
            if stem in self._stems:
                continue
            self._stems.add(stem)
            self.meta.append(np.load(meta_path))
            self.rgb.append(np.load(self.folder / f"{stem}.rgb.npy", mmap_mode="r"))
            self.depth.append(np.load(self.folder / f"{stem}.depth.npy", mmap_mode="r"))
        self._offsets = np.cumsum([0] + [len(m) for m in self.meta])
        return len(self)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(
        self, index: int
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """``(rgb, depth float32, (fx, fy, cx, cy))`` of frame ``index``."""
        shard = int(np.searchsorted(self._offsets, index, side="right") - 1)
        i = index - int(self._offsets[shard])
        return (
            np.asarray(self.rgb[shard][i]),
            np.asarray(self.depth[shard][i], dtype=np.float32),
            self.meta[shard][i, 1:5],
        )
