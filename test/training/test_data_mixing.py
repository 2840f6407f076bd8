"""Several synthetic caches mixed by weight (``--synth-cache A --synth-cache B``, weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.errors import ConfigError
from recon3d_ros.training.data import SyntheticSource


def _cache(folder: Path, count: int, value: int) -> Path:
    """Write a one-shard cache whose frames are all ``value`` (the documented layout)."""
    folder.mkdir(parents=True)
    np.save(folder / "shard_00000.rgb.npy", np.full((count, 4, 6, 3), value, np.uint8))
    np.save(folder / "shard_00000.depth.npy", np.full((count, 4, 6), 2.0, np.float16))
    meta = np.zeros((count, 5))
    meta[:, 0] = np.arange(count)
    meta[:, 1:] = (5.0, 5.0, 2.5, 1.5)
    np.save(folder / "shard_00000.meta.npy", meta)
    return folder


def _share_of_a(src: SyntheticSource, draws: int = 6000) -> float:
    rng = np.random.default_rng(1)
    hits = [src.get(int(rng.integers(len(src)))).rgb[0, 0, 0] == 10 for _ in range(draws)]
    return float(np.mean(hits))


def test_weights_set_each_caches_share_whatever_its_size(tmp_path):
    a, b = _cache(tmp_path / "a", 5, 10), _cache(tmp_path / "b", 95, 200)
    assert _share_of_a(SyntheticSource([a, b], weights=[0.5, 0.5])) == pytest.approx(0.5, abs=0.03)
    assert _share_of_a(SyntheticSource([a, b], weights=[3, 1])) == pytest.approx(0.75, abs=0.03)
    # Without weights the caches are simply concatenated: 5 of 100 frames come from a.
    plain = SyntheticSource([a, b])
    assert len(plain) == 100
    assert _share_of_a(plain) == pytest.approx(0.05, abs=0.015)
    assert [plain.get(i).rgb[0, 0, 0] for i in (0, 4, 5, 99)] == [10, 10, 200, 200]


def test_every_frame_of_a_weighted_cache_is_reachable(tmp_path):
    a, b = _cache(tmp_path / "a", 7, 10), _cache(tmp_path / "b", 3, 200)
    src = SyntheticSource([a, b], weights=[1, 1])
    seen = {(k, i) for k, i in (src._locate(j) for j in range(len(src) * 20))}
    assert seen == {(0, i) for i in range(7)} | {(1, i) for i in range(3)}


def test_single_cache_behaves_as_before(tmp_path):
    a = _cache(tmp_path / "a", 4, 10)
    src = SyntheticSource(str(a))
    assert len(src) == 4 and src.cache is not None
    s = src.get(3)
    assert s.intrinsics == (5.0, 5.0, 2.5, 1.5) and s.depth.dtype == np.float32


def test_bad_weights_are_config_errors(tmp_path):
    a, b = _cache(tmp_path / "a", 2, 10), _cache(tmp_path / "b", 2, 200)
    with pytest.raises(ConfigError, match="one weight per"):
        SyntheticSource([a, b], weights=[1.0])
    with pytest.raises(ConfigError, match=">= 0"):
        SyntheticSource([a, b], weights=[1.0, -1.0])


def test_train_command_takes_repeated_caches_and_weights():
    from recon3d_ros.commands import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--synth-cache", "A", "--synth-cache", "B",
                              "--synth-weights", "0.3", "0.7"])
    assert train._synth_caches(args) == ["A", "B"] and args.synth_weights == [0.3, 0.7]
    one = parser.parse_args(["--synth-cache", "A"])
    assert train._synth_caches(one) == "A"  # a single cache is recorded as before
    assert train._synth_caches(parser.parse_args([])) is None
    bad = parser.parse_args(["--synth-cache", "A", "--synth-weights", "1", "2"])
    with pytest.raises(ConfigError, match="one weight per cache"):
        train._synth_caches(bad)
