"""Scene sampling: every kind is produced, valid and reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.synth.scenes import SCENE_KINDS, sample_scene
from recon3d_ros.synth.geometry import RoomShell


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_each_kind_has_a_pose_and_primitives(kind):
    scene = sample_scene(np.random.default_rng(3), kind)
    assert scene.kind == kind
    assert scene.pose is not None and len(scene.primitives) >= 1
    rot = scene.pose.rotation
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
    assert 0.25 <= scene.pose.position[1] <= 3.2  # camera heights of robots, people and cars
    if kind in ("room", "corridor"):
        shell = scene.primitives[0]
        assert isinstance(shell, RoomShell)
        lo, hi = np.asarray(shell.lo), np.asarray(shell.hi)
        assert np.all(np.asarray(scene.pose.position) > lo) and np.all(
            np.asarray(scene.pose.position) < hi
        )
    else:
        assert scene.sky and scene.sun is not None


def test_sampling_is_deterministic_and_unknown_kind_rejected():
    a = sample_scene(np.random.default_rng(11))
    b = sample_scene(np.random.default_rng(11))
    assert a.kind == b.kind and len(a.primitives) == len(b.primitives)
    assert a.pose.position == b.pose.position
    with pytest.raises(ValueError, match="unknown scene kind"):
        sample_scene(np.random.default_rng(0), "spaceship")
