"""Ray casting: exact hits against known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.synth.geometry import Box, Cylinder, Plane, RoomShell, Sphere, cast_rays, occluded


def _rays(dirs):
    d = np.asarray(dirs, dtype=np.float64)
    return np.zeros_like(d), d


def test_plane_hit_parameter_is_distance_along_unnormalised_ray():
    o, d = _rays([[0, 0, 1], [0.5, 0.2, 1], [0, 0, -1]])
    t, n = Plane((0, 0, 1), 4.0).intersect(o, d)
    assert t[:2] == pytest.approx([4.0, 4.0])  # z-depth, whatever the ray's slant
    assert math.isinf(t[2])  # behind the origin
    assert n[0] == pytest.approx([0, 0, -1])  # faces the viewer


def test_box_entry_point_and_normal():
    o, d = _rays([[0, 0, 1], [0, 0.2, 1], [1, 0, 0]])
    t, n = Box((0, 0, 5), (1, 1, 1)).intersect(o, d)
    assert t[0] == pytest.approx(4.0)
    assert t[1] == pytest.approx(4.0)
    assert math.isinf(t[2])
    assert n[0] == pytest.approx([0, 0, -1])


def test_rotated_box_uses_its_yaw():
    o, d = _rays([[0, 0, 1]])
    # A thin slab 2 m wide along its local x; turned 90 degrees it spans the z axis instead.
    straight = Box((0, 0, 5), (1.0, 1, 0.1), yaw=0.0).intersect(o, d)[0][0]
    turned = Box((0, 0, 5), (1.0, 1, 0.1), yaw=math.pi / 2).intersect(o, d)[0][0]
    assert straight == pytest.approx(4.9)
    assert turned == pytest.approx(4.0)


def test_sphere_and_cylinder_front_surfaces():
    o, d = _rays([[0, 0, 1], [0, -1, 0]])
    t_s, n_s = Sphere((0, 0, 3), 1.0).intersect(o, d)
    assert t_s[0] == pytest.approx(2.0) and math.isinf(t_s[1])
    assert n_s[0] == pytest.approx([0, 0, -1])
    t_c, n_c = Cylinder((0, 3), 0.5, -1.0, 1.0).intersect(o, d)
    assert t_c[0] == pytest.approx(2.5)
    assert n_c[0] == pytest.approx([0, 0, -1])
    cap_o = np.array([[0.0, 3.0, 3.0]])
    t_cap, n_cap = Cylinder((0, 3), 0.5, -1.0, 1.0).intersect(cap_o, np.array([[0.0, -1.0, 0.0]]))
    assert t_cap[0] == pytest.approx(2.0) and n_cap[0] == pytest.approx([0, 1, 0])


def test_room_shell_is_hit_from_inside_with_inward_normals():
    shell = RoomShell((-2, 0, -3), (2, 2.5, 3))
    o = np.array([[0.0, 1.0, 0.0]] * 3)
    d = np.array([[0, 0, 1.0], [0, -1.0, 0], [1.0, 0, 0]])
    t, n = shell.intersect(o, d)
    assert t == pytest.approx([3.0, 1.0, 2.0])
    assert n[1] == pytest.approx([0, 1, 0])  # floor normal points up, into the room
    assert list(shell.face_index(n)) == [5, 0, 3]


def test_cast_rays_keeps_the_nearest_primitive():
    o, d = _rays([[0, 0, 1], [0.9, 0, 1]])
    hits = cast_rays([Plane((0, 0, 1), 10.0), Sphere((0, 0, 4), 0.5)], o, d)
    assert list(hits.index) == [1, 0]
    assert hits.t == pytest.approx([3.5, 10.0])


def test_occluded_segments():
    pts = np.array([[0.0, 0, 0], [5.0, 0, 0]])
    to = np.array([[0.0, 0, 4], [0.0, 0, 4]])
    blocked = occluded([Sphere((0, 0, 2), 0.5)], pts, to, np.ones(2))
    assert list(blocked) == [True, False]
