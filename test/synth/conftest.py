"""A tiny Sweet Home 3D catalogue written by the tests themselves (no installed assets)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

# A box x in [-1, 1], y in [-0.5, 0.5], z in [0, 4]: modelled z up, as some catalogue models are.
BOX_OBJ = """mtllib box.mtl
v -1 -0.5 0
v 1 -0.5 0
v 1 0.5 0
v -1 0.5 0
v -1 -0.5 4
v 1 -0.5 4
v 1 0.5 4
v -1 0.5 4
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl painted
f 1/1 2/2 3/3 4/4
f 5/1 8/4 7/3 6/2
usemtl textured
f 1/1 5/2 6/3 2/4
f 2/1 6/2 7/3 3/4
f 3/1 7/2 8/3 4/4
f 4/1 8/2 5/3 1/4
usemtl glass
f 1 2 6
"""
BOX_MTL = """newmtl painted
Kd 0.5 0.25 1.0
newmtl textured
Kd 1 1 1
map_Kd red.png
newmtl glass
Kd 0.9 0.9 0.9
d 0.2
"""
# Catalogue size in centimetres; the z-up model turned y up by the row-major rotation.
PROPS = """# test catalogue
id=test
license=Public domain
id#1=test#box
name#1=Caf\\u00e9 table
category#1=Living room
model#1=/test/box/box.obj
width#1=50
depth#1=30
height#1=80
modelRotation#1=1 0 0 0 0 1 0 -1 0
dropOnTopElevation#1=70
creator#1=me
id#2=test#cup
name#2=Cup
category#2=Kitchen
model#2=/test/box/box.obj
width#2=10
depth#2=10
height#2=12
modelRotation#2=1 0 0 0 0 1 0 -1 0
id#3=test#broken
name#3=Broken
category#3=Bedroom
model#3=/test/missing/missing.obj
width#3=50
depth#3=50
height#3=50
id#4=test#tree
name#4=Tree
category#4=Exterior
model#4=/test/box/box.obj
width#4=300
depth#4=300
height#4=500
"""


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def write_catalog(folder: Path) -> Path:
    """``folder/test.sh3f``: a box model (red texture on its sides), a cup, a broken entry."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "test.sh3f"
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    rng = np.random.default_rng(0)
    wood = (rng.random((160, 160, 3)) * 80 + np.array([120, 70, 30])).astype(np.uint8)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("PluginFurnitureCatalog.properties", PROPS.encode("latin-1"))
        zf.writestr("test/box/box.obj", BOX_OBJ)
        zf.writestr("test/box/box.mtl", BOX_MTL)
        zf.writestr("test/box/red.png", png(red))
        zf.writestr("test/box/wood_floor.png", png(wood))
    return path


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "furniture")


@pytest.fixture
def tiny_assets(tiny_catalog: Path, tmp_path: Path):
    pytest.importorskip("open3d")
    from recon3d_ros.synth.furniture import FurnitureLibrary, load_surfaces

    lib = FurnitureLibrary(tiny_catalog.parent, tmp_path / "cache")
    surfaces = load_surfaces(tiny_catalog.parent, tmp_path / "cache", image_dirs=())
    return lib, surfaces
