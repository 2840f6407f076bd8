"""Real furniture models from Sweet Home 3D catalogues (``.sh3f``), converted once to ``.npz``.

A ``.sh3f`` file is a ZIP holding ``PluginFurnitureCatalog.properties`` (a Java properties file:
``name#N``, ``category#N``, ``model#N`` = path of an OBJ inside the ZIP, ``width#N`` / ``depth#N``
/ ``height#N`` in centimetres, optional ``modelRotation#N``, ``elevation#N``,
``dropOnTopElevation#N``) and the OBJ / MTL / texture files. Sweet Home 3D models are y up with
their front towards +z, as this package's synthetic world is (y up, metres): a converted model
is rotated by ``modelRotation``, scaled to the catalogue's width (x), height (y) and depth (z)
and placed with its footprint centred on the origin and its base on the floor (y = 0).

Parsing OBJ text is slow, so :class:`FurnitureLibrary` converts every usable model once into a
compact ``.npz`` (triangles, per-face UVs, per-material colour and a small texture) in a cache
folder, with an ``index.json`` that lists what converted and what did not.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import DatasetError

__all__ = [
    "DEFAULT_FURNITURE_DIR",
    "DEFAULT_CACHE_DIR",
    "TEXTURE_SIZE",
    "CatalogEntry",
    "MeshModel",
    "FurnitureLibrary",
    "parse_properties",
    "read_catalog",
    "parse_obj",
    "parse_mtl",
    "load_model",
    "coarse_kind",
]

DEFAULT_FURNITURE_DIR = Path("/usr/share/sweethome3d/furniture")
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "recon3d" / "furniture"
TEXTURE_SIZE = 128  # texels per side kept per material: a model spans few pixels at 256x192
MAX_TRIANGLES = 150_000  # trees and cars with more than this are not worth their scene cost
# Embree's BVH build per frame costs about 1 us a triangle: detail beyond this is invisible at
# training resolution, so denser models are simplified by vertex clustering when converted.
TARGET_TRIANGLES = 8_000
# Outdoor and non-furniture categories: rooms are what the real test scenes show.
SKIP_CATEGORIES = frozenset({"Exterior", "Vehicles", "Staircases", "Doors and windows"})
_INDEX_VERSION = 1


@dataclass(frozen=True)
class CatalogEntry:
    """One model of a catalogue; sizes in metres."""

    catalog: str  # file stem of the .sh3f
    index: int  # N in ``name#N``
    id: str  # noqa: A003 - the catalogue field name
    name: str
    category: str
    model: str  # path inside the ZIP, without the leading '/'
    width: float
    depth: float
    height: float
    rotation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # row-major
    elevation: float = 0.0  # height of the base above the floor (wall cabinets, towel racks)
    drop_on_top: float = -1.0  # height things put on it rest at; negative: the model's top
    door_or_window: bool = False
    creator: str = ""
    license: str = ""  # noqa: A003 - the catalogue field name

    @property
    def key(self) -> str:
        """File-system safe, unique name of the converted model."""
        digest = hashlib.sha1(f"{self.catalog}/{self.model}/{self.id}".encode()).hexdigest()[:10]
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", self.name)[:30]
        return f"{self.catalog}-{self.index}-{stem}-{digest}"

    @property
    def kind(self) -> str:
        return coarse_kind(self)


@dataclass
class MeshModel:
    """A triangle mesh ready to place: metres, y up, base at y = 0, footprint centred."""

    vertices: npt.NDArray[np.float32]  # V x 3
    faces: npt.NDArray[np.int32]  # F x 3
    uvs: npt.NDArray[np.float32]  # F x 3 x 2 texture coordinates of each corner
    face_material: npt.NDArray[np.int16]  # F
    colors: npt.NDArray[np.float32]  # K x 3 linear RGB albedo per material
    material_texture: npt.NDArray[np.int16]  # K: index into ``textures`` or -1
    textures: npt.NDArray[np.uint8]  # T x S x S x 3 sRGB

    def save(self, path: Path) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # concurrent converters
        np.savez_compressed(tmp, **asdict(self))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "MeshModel":
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})


# ---------------------------------------------------------------------------- catalogue
def parse_properties(text: str) -> dict[str, str]:
    r"""Parse a Java ``.properties`` text (comments, ``\`` continuations, ``\uXXXX`` escapes)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while line.endswith("\\") and not line.endswith("\\\\") and i < len(lines):
            line = line[:-1] + lines[i].lstrip()
            i += 1
        m = re.match(r"((?:[^=:\s\\]|\\.)+)\s*[=:\s]\s*(.*)$", line)
        if not m:
            continue
        key, value = (_unescape(s) for s in m.groups())
        out[key] = value
    return out


def _unescape(s: str) -> str:
    def repl(m: re.Match) -> str:
        g = m.group(1)
        if g.startswith("u"):
            return chr(int(g[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(g, g)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, s)


def _float(props: dict[str, str], key: str, default: float) -> float:
    try:
        return float(props.get(key, default))
    except ValueError:
        return default


def read_catalog(path: str | Path) -> list[CatalogEntry]:
    """List the models of one ``.sh3f`` file (sizes converted to metres)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            raw = zf.read("PluginFurnitureCatalog.properties")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise DatasetError(
            f"{path} is not a Sweet Home 3D furniture catalogue (a ZIP with "
            f"PluginFurnitureCatalog.properties): {e}"
        ) from e
    props = parse_properties(raw.decode("latin-1"))  # Java properties are ISO-8859-1
    licence = props.get("license", "")
    entries = []
    indices = sorted(int(k.split("#")[1]) for k in props if re.fullmatch(r"model#\d+", k))
    for n in indices:
        rot = tuple(float(x) for x in props.get(f"modelRotation#{n}", "").split())
        entries.append(
            CatalogEntry(
                catalog=path.stem,
                index=n,
                id=props.get(f"id#{n}", f"{path.stem}#{n}"),
                name=props.get(f"name#{n}", ""),
                category=props.get(f"category#{n}", ""),
                model=props[f"model#{n}"].lstrip("/"),
                width=_float(props, f"width#{n}", 100.0) / 100.0,
                depth=_float(props, f"depth#{n}", 100.0) / 100.0,
                height=_float(props, f"height#{n}", 100.0) / 100.0,
                rotation=rot if len(rot) == 9 else CatalogEntry.rotation,
                elevation=_float(props, f"elevation#{n}", 0.0) / 100.0,
                drop_on_top=_float(props, f"dropOnTopElevation#{n}", -100.0) / 100.0,
                door_or_window=props.get(f"doorOrWindow#{n}", "false") == "true",
                creator=props.get(f"creator#{n}", ""),
                license=licence,
            )
        )
    return entries


_KIND_WORDS = (
    ("bed", ("bed",)),
    ("sofa", ("sofa", "couch", "armchair", "futon")),
    ("chair", ("chair", "stool", "bench")),
    ("table", ("table", "desk")),
    ("storage", ("bookcase", "shelv", "shelf", "cabinet", "wardrobe", "dresser", "drawer",
                 "sideboard", "cupboard", "chest", "vanity", "buffet", "closet")),
    ("plant", ("plant", "ficus", "yucca", "bamboo", "tulip", "palm", "flower", "tree")),
    ("lamp", ("lamp", "light")),
)


def coarse_kind(entry: CatalogEntry) -> str:
    """Return the placement class of a model (bed, sofa, chair, table, storage, ..., big)."""
    name = entry.name.lower()
    if entry.category == "Characters":
        return "person"
    if entry.elevation > 0.3:
        return "wall"  # hangs on a wall: wall cabinets, mirrors, towel racks
    if max(entry.width, entry.depth) < 0.5 and entry.height < 0.5:
        return "small"  # goes on tables, shelves and the floor
    for kind, words in _KIND_WORDS:
        if any(w in name for w in words):
            if kind == "table" and "bedside" in name:
                return "storage"
            return kind
    if entry.category == "Lights":
        return "lamp"
    return "big"


# ---------------------------------------------------------------------------- OBJ / MTL
@dataclass
class _Material:
    color: tuple[float, float, float] = (0.7, 0.7, 0.7)
    texture: str = ""
    alpha: float = 1.0


def parse_mtl(text: str) -> dict[str, _Material]:
    """``newmtl`` blocks: diffuse colour ``Kd``, texture ``map_Kd`` and opacity ``d`` / ``Tr``."""
    mats: dict[str, _Material] = {}
    cur: _Material | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        tag = parts[0]
        if tag == "newmtl" and len(parts) > 1:
            cur = mats.setdefault(" ".join(parts[1:]), _Material())
        elif cur is None:
            continue
        elif tag == "Kd" and len(parts) >= 4:
            cur.color = (float(parts[1]), float(parts[2]), float(parts[3]))
        elif tag == "map_Kd" and len(parts) > 1:
            cur.texture = parts[-1]  # options such as -s come before the file name
        elif tag == "d" and len(parts) > 1:
            cur.alpha = float(parts[1])
        elif tag == "Tr" and len(parts) > 1:
            cur.alpha = 1.0 - float(parts[1])
    return mats


def parse_obj(text: str) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], list[list[tuple[int, int]]], list[str],
    list[str],
]:
    """Parse OBJ text.

    Returns vertices, texture coordinates, polygons (``(v, vt)`` index pairs, 0-based, vt -1
    when absent), the material name of each polygon and the ``mtllib`` files.
    """
    verts: list[tuple[float, float, float]] = []
    tcs: list[tuple[float, float]] = []
    polys: list[list[tuple[int, int]]] = []
    poly_mat: list[str] = []
    libs: list[str] = []
    mat = ""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        parts = line.split()
        if not parts:
            continue
        tag = parts[0]
        if tag == "v":
            verts.append((float(parts[1]), float(parts[2]), float(parts[3])))
        elif tag == "vt":
            tcs.append((float(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0))
        elif tag == "f":
            poly = []
            for p in parts[1:]:
                ids = p.split("/")
                vi = int(ids[0])
                vi = vi - 1 if vi > 0 else len(verts) + vi
                ti = -1
                if len(ids) > 1 and ids[1]:
                    ti = int(ids[1])
                    ti = ti - 1 if ti > 0 else len(tcs) + ti
                poly.append((vi, ti))
            if len(poly) >= 3:
                polys.append(poly)
                poly_mat.append(mat)
        elif tag == "usemtl":
            mat = " ".join(parts[1:])
        elif tag == "mtllib":
            libs.append(" ".join(parts[1:]))
    return (
        np.asarray(verts, np.float64).reshape(-1, 3),
        np.asarray(tcs, np.float64).reshape(-1, 2),
        polys,
        poly_mat,
        libs,
    )


def _read_texture(zf: zipfile.ZipFile, name: str) -> npt.NDArray[np.uint8] | None:
    import cv2

    try:
        data = np.frombuffer(zf.read(name), np.uint8)
    except KeyError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None
    img = cv2.resize(img, (TEXTURE_SIZE, TEXTURE_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1])


def load_model(zf: zipfile.ZipFile, entry: CatalogEntry) -> MeshModel:
    """Parse ``entry``'s OBJ (+ MTL + textures) from an open catalogue and place it."""
    folder = PurePosixPath(entry.model).parent
    verts, tcs, polys, poly_mat, libs = parse_obj(zf.read(entry.model).decode("latin-1"))
    mtl: dict[str, _Material] = {}
    for lib in libs:
        try:
            mtl.update(parse_mtl(zf.read(str(folder / lib)).decode("latin-1")))
        except KeyError:
            pass  # a missing MTL leaves grey materials
    names = sorted(set(poly_mat))
    mat_id = {n: i for i, n in enumerate(names)}
    colors, mat_tex, textures, tex_id = [], [], [], {}
    for n in names:
        m = mtl.get(n, _Material())
        colors.append(np.clip(np.asarray(m.color, np.float64), 0, 1) ** 2.2)  # sRGB to linear
        t = -1
        if m.texture:
            path = str(folder / m.texture.replace("\\", "/"))
            if path not in tex_id:
                img = _read_texture(zf, path)
                tex_id[path] = len(textures) if img is not None else -1
                if img is not None:
                    textures.append(img)
            t = tex_id[path]
        mat_tex.append(t)
    transparent = {i for i, n in enumerate(names) if mtl.get(n, _Material()).alpha < 0.5}
    # Fan-triangulate polygons, dropping (nearly) transparent glass: most depth sensors and the
    # ground truth they give see through it, and a renderer without refraction cannot shade it.
    tri_v, tri_t, tri_m = [], [], []
    for poly, pm in zip(polys, poly_mat):
        k = mat_id[pm]
        if k in transparent:
            continue
        for j in range(1, len(poly) - 1):
            tri_v.append((poly[0][0], poly[j][0], poly[j + 1][0]))
            tri_t.append((poly[0][1], poly[j][1], poly[j + 1][1]))
            tri_m.append(k)
    if not tri_v or len(verts) == 0:
        raise DatasetError(f"{entry.model} has no opaque faces")
    if len(tri_v) > MAX_TRIANGLES:
        raise DatasetError(f"{entry.model} has {len(tri_v)} triangles (> {MAX_TRIANGLES})")
    faces = np.asarray(tri_v, np.int64)
    if faces.min() < 0 or faces.max() >= len(verts):
        raise DatasetError(f"{entry.model} has face indices outside its vertex list")
    ti = np.asarray(tri_t, np.int64)
    uvs = np.zeros(ti.shape + (2,), np.float32)
    if len(tcs):
        ok = (ti >= 0) & (ti < len(tcs))
        uvs[ok] = tcs[ti[ok]]
    v = _place(verts, entry)
    used = np.unique(faces)
    remap = np.full(len(v), -1, np.int64)
    remap[used] = np.arange(used.size)
    verts_out, faces_out, keep = decimate(v[used], remap[faces], TARGET_TRIANGLES)
    empty = np.zeros((0, TEXTURE_SIZE, TEXTURE_SIZE, 3), np.uint8)
    tex = np.stack(textures) if textures else empty
    return MeshModel(
        vertices=verts_out.astype(np.float32),
        faces=faces_out.astype(np.int32),
        uvs=uvs[keep],
        face_material=np.asarray(tri_m, np.int16)[keep],
        colors=np.asarray(colors, np.float32).reshape(-1, 3),
        material_texture=np.asarray(mat_tex, np.int16),
        textures=tex,
    )


def decimate(
    verts: npt.NDArray[np.float64], faces: npt.NDArray[np.int64], max_faces: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Vertex clustering: merge vertices on ever coarser grids until at most ``max_faces``.

    Returns new vertices, faces and the indices of the kept input faces (for their UVs and
    materials). Meshes already small enough come back unchanged.
    """
    keep = np.arange(len(faces))
    if len(faces) <= max_faces:
        return verts, faces, keep
    lo = verts.min(axis=0)
    extent = float(np.max(verts.max(axis=0) - lo)) + 1e-9
    cells = 256
    while cells >= 8:
        q = np.floor((verts - lo) / (extent / cells)).astype(np.int64)
        _, cluster, counts = np.unique(q, axis=0, return_inverse=True, return_counts=True)
        cluster = cluster.reshape(-1)
        f = cluster[faces]
        ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        if ok.sum() <= max_faces or cells == 8:
            centroid = np.zeros((len(counts), 3))
            np.add.at(centroid, cluster, verts)
            centroid /= counts[:, None]
            return centroid, f[ok], keep[ok]
        cells //= 2
    return verts, faces, keep  # unreachable: the loop returns at cells == 8


def _place(verts: npt.NDArray[np.float64], entry: CatalogEntry) -> npt.NDArray[np.float64]:
    """Rotate by ``modelRotation``, scale the bounding box to the catalogue size, base at y = 0."""
    rot = np.asarray(entry.rotation, np.float64).reshape(3, 3)
    v = verts @ rot.T  # Sweet Home 3D applies the row-major matrix to column vectors
    lo, hi = v.min(axis=0), v.max(axis=0)
    size = np.maximum(hi - lo, 1e-9)
    target = np.array([entry.width, entry.height, entry.depth])
    v = (v - (lo + hi) / 2) * (target / size)
    v[:, 1] += entry.height / 2  # base on the floor
    return v


# ---------------------------------------------------------------------------- library
class FurnitureLibrary:
    """All usable models of the catalogues in ``furniture_dir``, converted into ``cache_dir``.

    The first use converts every model (minutes, once); later ones read ``index.json`` and load
    the ``.npz`` of a model the first time a scene asks for it.
    """

    def __init__(
        self,
        furniture_dir: str | Path = DEFAULT_FURNITURE_DIR,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
    ) -> None:
        self.furniture_dir = Path(furniture_dir)
        self.cache_dir = Path(cache_dir)
        self._models: dict[str, MeshModel] = {}
        catalogs = sorted(self.furniture_dir.glob("*.sh3f"))
        if not catalogs:
            raise DatasetError(
                f"no .sh3f furniture catalogues in {self.furniture_dir}; install them with "
                "`sudo apt-get install sweethome3d-furniture` (or `make synth-data`)"
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        index_path = self.cache_dir / "index.json"
        names = [c.name for c in catalogs]
        index = None
        if index_path.exists():
            index = json.loads(index_path.read_text())
            if index.get("version") != _INDEX_VERSION or index.get("catalogs") != names:
                index = None
        if index is None:
            index = self._convert(catalogs)
            index["catalogs"] = names
            tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(index, indent=1))
            tmp.replace(index_path)
        self.entries = [CatalogEntry(**{**e, "rotation": tuple(e["rotation"])})
                        for e in index["entries"]]
        self.failed: dict[str, str] = index["failed"]
        self.skipped = int(index["skipped"])
        self.by_kind: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            self.by_kind.setdefault(e.kind, []).append(i)

    def _convert(self, catalogs: list[Path]) -> dict:
        entries, failed, skipped = [], {}, 0
        for cat in catalogs:
            listed = read_catalog(cat)
            with zipfile.ZipFile(cat) as zf:
                for e in listed:
                    if e.category in SKIP_CATEGORIES or e.door_or_window:
                        skipped += 1
                        continue
                    out = self.cache_dir / f"{e.key}.npz"
                    try:
                        if not out.exists():
                            load_model(zf, e).save(out)
                    except (DatasetError, KeyError, ValueError, IndexError, OSError) as err:
                        failed[e.key] = f"{type(err).__name__}: {err}"
                        continue
                    entries.append({**asdict(e), "rotation": list(e.rotation)})
        return {"version": _INDEX_VERSION, "entries": entries, "failed": failed,
                "skipped": skipped}

    def __len__(self) -> int:
        return len(self.entries)

    def model(self, i: int) -> MeshModel:
        """Return the placed mesh of entry ``i`` (loaded once per process)."""
        key = self.entries[i].key
        m = self._models.get(key)
        if m is None:
            m = MeshModel.load(self.cache_dir / f"{key}.npz")
            self._models[key] = m
        return m

    def surface_height(self, i: int) -> float:
        """Height things put on entry ``i`` rest at (metres)."""
        e = self.entries[i]
        return e.drop_on_top if e.drop_on_top > 0 else e.height


# ---------------------------------------------------------------------------- surfaces
SURFACE_SIZE = 256
DEFAULT_IMAGE_DIRS = (Path("/usr/share/backgrounds/gnome"),)
# Photographic material images found in the catalogues (and wallpaper folders), by file name.
_FLOOR_WORDS = ("wood", "parquet", "plank", "oak", "pine", "teak", "teca", "alder", "walnut",
                "tile", "marble", "granite", "stone", "carpet", "rug", "concrete", "butcherblock")
_WALL_WORDS = ("wallpaper", "fabric", "brick", "stone", "marble", "tile", "concrete", "plaster",
               "cloth", "linen", "pattern", "beige", "leather", "wood")


@dataclass
class SurfaceTextures:
    """Photographic images for floors and walls: ``images`` T x S x S x 3 sRGB."""

    images: npt.NDArray[np.uint8]
    names: list[str]
    floor: list[int]  # indices suited to floors
    wall: list[int]


def _surface_use(name: str) -> tuple[bool, bool]:
    low = PurePosixPath(name).name.lower()
    if any(w in low for w in ("bump", "normal", "alpha", "snow", "steak", "clothes", "sand")):
        return False, False  # height maps, tree bark with snow, food, laundry
    return any(w in low for w in _FLOOR_WORDS), any(w in low for w in _WALL_WORDS)


def load_surfaces(
    furniture_dir: str | Path = DEFAULT_FURNITURE_DIR,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    image_dirs: tuple[Path, ...] = DEFAULT_IMAGE_DIRS,
) -> SurfaceTextures:
    """Collect floor and wall images once into ``cache_dir/surfaces.npz`` and load them."""
    import cv2

    cache = Path(cache_dir) / "surfaces.npz"
    if cache.exists():
        with np.load(cache) as z:
            names = [str(n) for n in z["names"]]
            return SurfaceTextures(z["images"], names, list(z["floor"]), list(z["wall"]))
    images, names, floor, wall = [], [], [], []
    seen: set[str] = set()

    def add(name: str, data: bytes) -> None:
        is_floor, is_wall = _surface_use(name)
        base = PurePosixPath(name).name.lower()
        if not (is_floor or is_wall) or base in seen:
            return
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 128:
            return  # too small to tile a floor without visible blur
        seen.add(base)
        img = cv2.resize(img, (SURFACE_SIZE, SURFACE_SIZE), interpolation=cv2.INTER_AREA)
        if is_floor:
            floor.append(len(images))
        if is_wall:
            wall.append(len(images))
        images.append(np.ascontiguousarray(img[..., ::-1]))
        names.append(name)

    for cat in sorted(Path(furniture_dir).glob("*.sh3f")):
        with zipfile.ZipFile(cat) as zf:
            for info in zf.infolist():
                # Images right under the catalogue folder are its icons, not textures.
                deep = len(PurePosixPath(info.filename).parts) > 2
                if deep and info.filename.lower().endswith((".jpg", ".jpeg", ".png")):
                    add(f"{cat.stem}/{info.filename}", zf.read(info))
    for folder in image_dirs:
        for p in sorted(Path(folder).glob("*")):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
                add(str(p), p.read_bytes())
    if not images:
        raise DatasetError(f"no floor or wall images found in {furniture_dir} or {image_dirs}")
    out = SurfaceTextures(np.stack(images), names, floor, wall)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"surfaces.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, images=out.images, names=np.asarray(names), floor=np.asarray(floor),
                        wall=np.asarray(wall))
    tmp.replace(cache)
    return out
