"""Procedural textures: bounded, deterministic, and actually patterned."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.synth.geometry import Material
from recon3d_ros.synth.textures import PATTERNS, fbm, shade_material, surface_uv, value_noise


def test_noise_range_and_smoothness():
    u = np.linspace(0, 20, 2001)
    n = value_noise(u, u * 0.5)
    assert n.min() >= 0 and n.max() <= 1
    assert np.abs(np.diff(n)).max() < 0.05  # continuous: small steps give small changes
    f = fbm(u, u)
    assert -0.5 <= f.min() and f.max() <= 0.5


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_gives_valid_varied_albedo(pattern):
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0, 5, 4000), rng.uniform(0, 5, 4000)
    mat = Material((0.8, 0.5, 0.3), (0.1, 0.1, 0.1), pattern, 0.4, 0.7, seed=5)
    albedo = shade_material(mat, u, v)
    assert albedo.shape == (4000, 3) and albedo.min() >= 0 and albedo.max() <= 1
    assert albedo.std() > 1e-3  # not a flat colour
    np.testing.assert_array_equal(albedo, shade_material(mat, u, v))


def test_surface_uv_drops_the_facing_axis():
    pts = np.array([[1.0, 2.0, 3.0]] * 3)
    normals = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    u, v = surface_uv(pts, normals)
    assert list(u) == [3.0, 1.0, 1.0] and list(v) == [2.0, 3.0, 2.0]
