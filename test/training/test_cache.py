"""The pre-rendered cache: shards written whole, read back exactly, growing caches picked up."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.errors import DatasetError
from recon3d_ros.synth import render_frame
from recon3d_ros.training.cache import SynthCache, build_cache, render_shard


def test_cache_holds_the_rendered_frames(tmp_path):
    build_cache(tmp_path / "c", 3, 40, 24, 16, shard_size=2)
    cache = SynthCache(tmp_path / "c")
    assert len(cache) == 3
    rgb, depth, k = cache[2]
    f = render_frame(42, 24, 16)
    np.testing.assert_array_equal(rgb, f.rgb)
    finite = np.isfinite(f.depth)
    np.testing.assert_allclose(depth[finite], f.depth[finite], rtol=1e-3)  # float16 storage
    assert np.isinf(depth[~finite]).all()
    assert k == pytest.approx([f.camera.fx, f.camera.fy, f.camera.cx, f.camera.cy])


def test_refresh_sees_new_shards(tmp_path):
    render_shard(tmp_path, 0, [1], 16, 16)
    cache = SynthCache(tmp_path)
    assert len(cache) == 1
    render_shard(tmp_path, 1, [2, 3], 16, 16)
    assert cache.refresh() == 3


def test_missing_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        SynthCache(tmp_path / "nope")
