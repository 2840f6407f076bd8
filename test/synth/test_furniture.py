"""Catalogue reading, OBJ/MTL parsing, placement in metres and the converted-model library."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.errors import DatasetError
from recon3d_ros.synth.furniture import (
    DEFAULT_FURNITURE_DIR,
    FurnitureLibrary,
    decimate,
    load_model,
    load_surfaces,
    parse_properties,
    read_catalog,
)


def test_properties_escapes_continuations_and_comments():
    text = "# c\n! c\na=1\nb = two words\nc:x\\\n  y\nname#1=Caf\\u00e9\n"
    assert parse_properties(text) == {"a": "1", "b": "two words", "c": "xy", "name#1": "Café"}


def test_catalog_sizes_are_metres(tiny_catalog):
    entries = read_catalog(tiny_catalog)
    assert [e.index for e in entries] == [1, 2, 3, 4]
    box = entries[0]
    assert box.name == "Café table" and box.category == "Living room"
    assert (box.width, box.depth, box.height) == pytest.approx((0.5, 0.3, 0.8))
    assert box.drop_on_top == pytest.approx(0.7)
    assert box.model == "test/box/box.obj" and box.license == "Public domain"
    assert box.kind == "table" and entries[1].kind == "small"


def test_model_rotated_scaled_to_catalogue_size_base_on_floor(tiny_catalog):
    entry = read_catalog(tiny_catalog)[0]
    with zipfile.ZipFile(tiny_catalog) as zf:
        m = load_model(zf, entry)
    lo, hi = m.vertices.min(axis=0), m.vertices.max(axis=0)
    # The z-up box (tallest along model z) must stand along world y: width x, height y, depth z.
    assert lo == pytest.approx((-0.25, 0.0, -0.15), abs=1e-6)
    assert hi == pytest.approx((0.25, 0.8, 0.15), abs=1e-6)
    # Model corner (-1, -0.5, 4): rotation rows (1 0 0)(0 0 1)(0 -1 0) give (-1, 4, 0.5),
    # then scale (0.25, 0.2, 0.3) and lift: (-0.25, 0.8, 0.15).
    assert np.min(np.linalg.norm(m.vertices - [-0.25, 0.8, 0.15], axis=1)) < 1e-6
    # Six quads become 12 triangles; the transparent (d 0.2) glass face is dropped.
    assert m.faces.shape == (12, 3) and m.uvs.shape == (12, 3, 2)
    names = sorted({"painted", "textured", "glass"})
    painted, textured = names.index("painted"), names.index("textured")
    assert np.count_nonzero(m.face_material == painted) == 4
    assert m.colors[painted] == pytest.approx(np.array([0.5, 0.25, 1.0]) ** 2.2, abs=1e-6)
    assert m.material_texture[painted] == -1
    tex = m.textures[m.material_texture[textured]]
    assert np.all(tex[..., 0] == 255) and np.all(tex[..., 1:] == 0)


def test_library_converts_once_and_counts_failures(tiny_catalog, tmp_path):
    cache = tmp_path / "cache"
    lib = FurnitureLibrary(tiny_catalog.parent, cache)
    assert [e.name for e in lib.entries] == ["Café table", "Cup"]
    assert len(lib.failed) == 1 and lib.skipped == 1  # broken OBJ; the Exterior tree
    assert lib.by_kind == {"table": [0], "small": [1]}
    m = lib.model(1)
    assert m.vertices.max(axis=0) - m.vertices.min(axis=0) == pytest.approx((0.1, 0.12, 0.1))
    assert lib.surface_height(0) == pytest.approx(0.7) and lib.surface_height(1) == 0.12
    for npz in cache.glob("*.npz"):
        npz.write_bytes(b"")  # a second library must read index.json, not convert again
    again = FurnitureLibrary(tiny_catalog.parent, cache)
    assert [e.key for e in again.entries] == [e.key for e in lib.entries]
    with pytest.raises(Exception):
        again.model(0)


def test_library_without_catalogues_says_what_to_install(tmp_path):
    with pytest.raises(DatasetError, match="sweethome3d-furniture"):
        FurnitureLibrary(tmp_path, tmp_path / "cache")


def test_surfaces_take_named_material_images_only(tiny_catalog, tmp_path):
    s = load_surfaces(tiny_catalog.parent, tmp_path / "cache", image_dirs=())
    # wood_floor.png qualifies; red.png is neither a floor nor a wall material by name.
    assert s.names == ["test/test/box/wood_floor.png"] and s.floor == [0]
    assert s.images.shape == (1, 256, 256, 3)


def test_decimate_bounds_face_count_and_keeps_shape():
    n = 101
    x, z = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 2, n))
    verts = np.stack([x.ravel(), 0.1 * np.sin(x.ravel() * 3), z.ravel()], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    assert len(faces) == 20000
    v, f, keep = decimate(verts, faces, 2000)
    assert 100 < len(f) <= 2000 and len(keep) == len(f) and f.max() < len(v)
    assert np.all(v.min(axis=0) >= verts.min(axis=0) - 1e-9)
    assert np.all(v.max(axis=0) <= verts.max(axis=0) + 1e-9)
    # Still covers the 1 m x 2 m sheet: cluster centroids pull each border in by less than half
    # a cell; 2000 faces need a grid of 16 cells over the 2 m extent (0.125 m cells).
    assert (v.max(axis=0) - v.min(axis=0))[[0, 2]] == pytest.approx((1.0, 2.0), abs=0.125)
    v2, f2, keep2 = decimate(verts, faces, 50000)
    assert f2 is faces and len(keep2) == len(faces)


@pytest.mark.skipif(
    not (DEFAULT_FURNITURE_DIR / "BlendSwap-CC-0.sh3f").exists(),
    reason="needs the sweethome3d-furniture Debian package (make synth-data)",
)
def test_installed_catalogue_model_has_its_catalogue_size():
    path = DEFAULT_FURNITURE_DIR / "BlendSwap-CC-0.sh3f"
    entry = next(e for e in read_catalog(path) if e.id.endswith("#armchair"))
    # PluginFurnitureCatalog.properties: width 59.4, depth 62.7, height 105 (centimetres).
    assert (entry.width, entry.depth, entry.height) == pytest.approx((0.594, 0.627, 1.05))
    with zipfile.ZipFile(path) as zf:
        m = load_model(zf, entry)
    ext = m.vertices.max(axis=0) - m.vertices.min(axis=0)
    assert ext == pytest.approx((0.594, 1.05, 0.627), rel=0.03)  # clustering moves edges a bit
    assert m.vertices[:, 1].min() == pytest.approx(0.0, abs=0.02)
    assert len(m.faces) <= 8000 and Path(entry.model).suffix == ".obj"
