"""Depth image -> organized ``sensor_msgs/PointCloud2`` buffer (the per-frame hot path).

The layout matches what PCL's ``pcl::PointXYZ`` / ``pcl::PointXYZRGB`` readers and rviz2 expect:

* ``x, y, z``: float32 at offsets 0, 4, 8, in the camera's optical frame (REP 103: x right,
  y down, z forward), metres.
* ``rgb`` (only with colour): a float32 field at offset 12 whose 4 bytes hold the packed
  uint32 ``0x00RRGGBB`` (PCL's convention; reinterpret, don't convert, the float).
* ``point_step`` is 12 without colour (packed ``x y z``, no padding) and 16 with colour.
  The padding of PCL's 16-byte ``PointXYZ`` would only add bytes to zero, copy and send:
  ``benchmarks/bench_pointcloud.py`` measures the padded variant slower. Readers that go by
  the field list (PCL's ``fromROSMsg``, rviz2, ``sensor_msgs_py``) accept either.

The cloud is organized: ``height`` = image rows, ``width`` = image columns (after ``stride``
decimation), so consumers can index it like the image. Invalid depth gives a point whose
x, y and z are all NaN and sets ``is_dense = False``.

Back-projection uses precomputed unit-z rays ``((u - cx) / fx, (v - cy) / fy)`` per pixel
(:class:`RayGrid`), built once per camera and cached, so each frame is a validity pass, a NaN
fill (only when some depth is invalid), two multiplies and a copy into a reused interleaved
buffer, and one ``tobytes``.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.filters import valid_depth_mask
from recon3d_ros.core.lru import LruCache
from recon3d_ros.errors import CameraModelError, EncodingError

__all__ = [
    "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "FLOAT32", "FLOAT64",
    "DATATYPE_TO_DTYPE",
    "CloudField",
    "CloudBuffer",
    "RayGrid",
    "ray_grid_for",
    "clear_ray_cache",
    "xyz_fields",
    "xyzrgb_fields",
    "depth_to_points",
    "depth_to_cloud",
    "cloud_to_points",
    "pack_rgb",
    "unpack_rgb",
]

# sensor_msgs/PointField datatype constants.
INT8 = 1
UINT8 = 2
INT16 = 3
UINT16 = 4
INT32 = 5
UINT32 = 6
FLOAT32 = 7
FLOAT64 = 8

DATATYPE_TO_DTYPE: dict[int, np.dtype] = {
    INT8: np.dtype(np.int8),
    UINT8: np.dtype(np.uint8),
    INT16: np.dtype(np.int16),
    UINT16: np.dtype(np.uint16),
    INT32: np.dtype(np.int32),
    UINT32: np.dtype(np.uint32),
    FLOAT32: np.dtype(np.float32),
    FLOAT64: np.dtype(np.float64),
}

POINT_STEP_XYZ = 12
POINT_STEP_XYZRGB = 16
_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True)
class CloudField:
    """One ``sensor_msgs/PointField``."""

    name: str
    offset: int
    datatype: int
    count: int = 1


def _cv2() -> Any:
    import cv2

    return cv2


def xyz_fields() -> list[CloudField]:
    return [CloudField("x", 0, FLOAT32), CloudField("y", 4, FLOAT32), CloudField("z", 8, FLOAT32)]


def xyzrgb_fields() -> list[CloudField]:
    return xyz_fields() + [CloudField("rgb", 12, FLOAT32)]


@dataclass(frozen=True)
class CloudBuffer:
    """Everything a ``sensor_msgs/PointCloud2`` needs besides the header."""

    data: bytes
    fields: list[CloudField]
    point_step: int
    row_step: int
    width: int
    height: int
    is_dense: bool
    is_bigendian: bool = field(default=sys.byteorder == "big")


class RayGrid:
    """Unit-z viewing rays of every pixel of a camera: ``x = (u - cx)/fx``, ``y = (v - cy)/fy``.

    ``x`` and ``y`` are contiguous ``H x W`` float32 (read-only). :meth:`decimated` gives the rays
    of the pixels kept by a ``stride`` decimation (each kept pixel keeps the ray of its original
    position), cached per stride.
    """

    def __init__(
        self, width: int, height: int, fx: float, fy: float, cx: float, cy: float
    ) -> None:
        self.width = int(width)
        self.height = int(height)
        u = ((np.arange(self.width, dtype=np.float64) - cx) / fx).astype(np.float32)
        v = ((np.arange(self.height, dtype=np.float64) - cy) / fy).astype(np.float32)
        self.x: npt.NDArray[np.float32] = np.ascontiguousarray(
            np.broadcast_to(u, (self.height, self.width))
        )
        self.y: npt.NDArray[np.float32] = np.ascontiguousarray(
            np.broadcast_to(v[:, None], (self.height, self.width))
        )
        self.x.setflags(write=False)
        self.y.setflags(write=False)
        self._decimated: dict[int, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = {
            1: (self.x, self.y)
        }
        self._lock = threading.Lock()

    def decimated(self, stride: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Contiguous ``(x, y)`` rays of ``pixels[::stride, ::stride]``."""
        with self._lock:
            rays = self._decimated.get(stride)
            if rays is None:
                rx = np.ascontiguousarray(self.x[::stride, ::stride])
                ry = np.ascontiguousarray(self.y[::stride, ::stride])
                rx.setflags(write=False)
                ry.setflags(write=False)
                rays = self._decimated[stride] = (rx, ry)
            return rays


_RAY_CACHE: LruCache[tuple[int, int, float, float, float, float], RayGrid] = LruCache(8)


def ray_grid_for(camera: PinholeCamera) -> RayGrid:
    """Return the (cached) :class:`RayGrid` of ``camera``; keyed by size and intrinsics only."""
    key = (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy)
    return _RAY_CACHE.get(key, lambda: RayGrid(*key))


def clear_ray_cache() -> None:
    _RAY_CACHE.clear()


def _check_inputs(
    depth: npt.NDArray[Any], camera: PinholeCamera, rgb: npt.NDArray[Any] | None, stride: int
) -> None:
    if depth.ndim != 2:
        raise EncodingError(f"depth must be an H x W array, got shape {depth.shape}")
    if depth.shape != (camera.height, camera.width):
        raise CameraModelError(
            f"depth image is {depth.shape[1]}x{depth.shape[0]} but the camera is "
            f"{camera.width}x{camera.height}; resize the camera (PinholeCamera.resized) to match"
        )
    if rgb is not None and (rgb.shape != depth.shape + (3,) or rgb.dtype != np.uint8):
        raise EncodingError(
            f"rgb must be H x W x 3 uint8 matching the depth {depth.shape}, got shape "
            f"{rgb.shape} {rgb.dtype}; convert it with encodings.to_rgb8"
        )
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise EncodingError(f"stride must be an integer >= 1, got {stride!r}")


def _valid_z(
    depth: npt.NDArray[np.floating], min_depth: float, max_depth: float
) -> tuple[npt.NDArray[np.float32], bool]:
    """Depth as float32 with NaN wherever it is invalid, and whether every pixel was valid.

    The rule is :func:`~recon3d_ros.core.filters.valid_depth_mask`'s; ``depth`` itself comes
    back (no copy) when it is already float32 and fully valid.
    """
    z = depth if depth.dtype == np.float32 else depth.astype(np.float32)
    valid = valid_depth_mask(z, min_depth, max_depth)
    if valid.all():
        return z, True
    return np.where(valid, z, np.float32(np.nan)), False


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, int, int]) -> npt.NDArray[np.float32]:
    """Return a per-thread float32 work buffer, reused across frames of the same size.

    A fresh multi-megabyte array is a fresh mmap whose page faults cost as much as the
    back-projection itself; the published ``bytes`` are always a new copy, so reuse is safe.
    """
    cached = getattr(_SCRATCH, "buffers", None)
    if cached is None:
        cached = _SCRATCH.buffers = {}
    buf = cached.get(shape)
    if buf is None:
        if len(cached) >= 2:  # e.g. one xyz and one xyzrgb stream; sizes rarely change
            cached.clear()
        buf = cached[shape] = np.empty(shape, dtype=np.float32)
    return buf


def _fill_xyz(
    out: npt.NDArray[np.float32], z: npt.NDArray[np.float32], rx: npt.NDArray[np.float32],
    ry: npt.NDArray[np.float32],
) -> None:
    # One pass per channel: each loop coalesces to 1-D over the frame, unlike a broadcast
    # (H, W, 3) multiply whose length-3 inner loop is several times slower.
    np.multiply(rx, z, out=out[..., 0])
    np.multiply(ry, z, out=out[..., 1])
    np.copyto(out[..., 2], z)


def depth_to_points(
    depth: npt.NDArray[np.floating],
    camera: PinholeCamera,
    stride: int = 1,
    min_depth: float = 0.0,
    max_depth: float = math.inf,
) -> npt.NDArray[np.float32]:
    """Back-project to an organized ``H' x W' x 3`` float32 array (NaN where invalid)."""
    depth = np.asarray(depth)
    _check_inputs(depth, camera, None, stride)
    z, _ = _valid_z(depth[::stride, ::stride], min_depth, max_depth)
    rx, ry = ray_grid_for(camera).decimated(stride)
    out = np.empty(z.shape + (3,), dtype=np.float32)
    _fill_xyz(out, z, rx, ry)
    return out


def pack_rgb(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``... x 3`` uint8 RGB -> float32 whose bits are ``0x00RRGGBB`` (PCL's packed rgb)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    )
    return packed.view(np.float32)


def unpack_rgb(rgb_field: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """Packed float32 (or uint32) rgb values -> ``N x 3`` uint8 RGB."""
    arr = np.ascontiguousarray(rgb_field).reshape(-1)
    if arr.dtype.itemsize != 4:
        raise EncodingError(f"packed rgb must be 4-byte values, got dtype {arr.dtype}")
    packed = arr.view(np.uint32)
    out = np.empty((packed.size, 3), dtype=np.uint8)
    out[:, 0] = (packed >> 16) & 0xFF
    out[:, 1] = (packed >> 8) & 0xFF
    out[:, 2] = packed & 0xFF
    return out


def depth_to_cloud(
    depth: npt.NDArray[np.floating],
    camera: PinholeCamera,
    rgb: npt.NDArray[np.uint8] | None = None,
    stride: int = 1,
    min_depth: float = 0.0,
    max_depth: float = math.inf,
) -> CloudBuffer:
    """Build an organized PointCloud2 buffer from a metric depth image.

    Parameters
    ----------
    depth
        ``H x W`` depth in metres (any float dtype); NaN, ``<= 0``, ``< min_depth``,
        ``> max_depth`` and infinite values become NaN points.
    camera
        intrinsics of ``depth`` (same size).
    rgb
        optional ``H x W x 3`` uint8 RGB registered to ``depth``; adds the ``rgb`` field.
    stride
        keep every ``stride``-th row and column (``depth[::stride, ::stride]``); kept
        pixels are back-projected along their original rays.
    min_depth, max_depth
        valid range in metres (inclusive).

    """
    depth = np.asarray(depth)
    if rgb is not None:
        rgb = np.asarray(rgb)
    _check_inputs(depth, camera, rgb, stride)
    z, dense = _valid_z(depth[::stride, ::stride], min_depth, max_depth)
    rx, ry = ray_grid_for(camera).decimated(stride)
    rows, cols = z.shape
    if rgb is None:
        step = POINT_STEP_XYZ
        buf = _scratch((rows, cols, 3))
        _fill_xyz(buf, z, rx, ry)
        fields = xyz_fields()
    else:
        step = POINT_STEP_XYZRGB
        buf = _scratch((rows, cols, 4))
        _fill_xyz(buf, z, rx, ry)
        colour = np.ascontiguousarray(rgb[::stride, ::stride])
        # cvtColor gives B, G, R, A bytes = native uint32 0xAARRGGBB on little-endian hosts;
        # the mask clears alpha to get PCL's 0x00RRGGBB.
        if _LITTLE:
            bgra = _cv2().cvtColor(colour, _cv2().COLOR_RGB2BGRA)
            packed = buf.view(np.uint32)[..., 3]
            np.bitwise_and(bgra.view(np.uint32)[..., 0], np.uint32(0x00FFFFFF), out=packed)
        else:
            buf[..., 3] = pack_rgb(colour)
        fields = xyzrgb_fields()
    return CloudBuffer(
        data=buf.tobytes(),
        fields=fields,
        point_step=step,
        row_step=step * cols,
        width=cols,
        height=rows,
        is_dense=dense,
        is_bigendian=not _LITTLE,
    )


def _field_attr(f: Any, name: str) -> Any:
    return f[name] if isinstance(f, dict) else getattr(f, name)


def cloud_to_points(
    data: bytes | bytearray | memoryview | Sequence[int] | npt.NDArray[Any],
    fields: Iterable[Any],
    point_step: int,
    width: int,
    height: int,
    is_bigendian: bool = False,
    row_step: int | None = None,
) -> npt.NDArray[Any]:
    """Read a PointCloud2 buffer into a ``height x width`` structured array.

    Parses strictly by the field list (``CloudField``, ``sensor_msgs/PointField`` or dicts with
    name/offset/datatype/count), so it checks a writer's layout rather than assuming it.
    Fields with ``count > 1`` become sub-arrays. ``row_step`` None or 0 (unset) means
    ``point_step * width``; a larger one (row padding) is honoured, a shorter one, a field past
    ``point_step``, an unknown datatype or data shorter than the layout raise
    :class:`EncodingError`.
    """
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    for f in fields:
        datatype = int(_field_attr(f, "datatype"))
        if datatype not in DATATYPE_TO_DTYPE:
            raise EncodingError(
                f"PointField {_field_attr(f, 'name')!r} has unknown datatype {datatype}; "
                "expected 1..8 (sensor_msgs/PointField)"
            )
        dt = DATATYPE_TO_DTYPE[datatype].newbyteorder(">" if is_bigendian else "<")
        count = int(_field_attr(f, "count"))
        names.append(str(_field_attr(f, "name")))
        formats.append(dt if count == 1 else (dt, (count,)))
        offsets.append(int(_field_attr(f, "offset")))
    try:
        dtype = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": int(point_step)}
        )
    except ValueError as exc:  # numpy: a field past point_step, overlapping fields
        raise EncodingError(f"PointCloud2 field layout is inconsistent: {exc}") from exc
    packed_row = int(point_step) * int(width)
    row_step = int(row_step) if row_step else packed_row
    if row_step < packed_row:
        raise EncodingError(
            f"PointCloud2 row_step {row_step} is shorter than width {width} x "
            f"point_step {point_step}"
        )
    if isinstance(data, np.ndarray):
        raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        try:  # bytes, bytearray, memoryview, array.array (a received message's data)
            view = memoryview(data)  # type: ignore[arg-type]
            raw = np.frombuffer(view.cast("B") if view.format != "B" else view, dtype=np.uint8)
        except TypeError:  # a plain sequence of ints
            raw = np.asarray(data, dtype=np.uint8)
    needed = row_step * (int(height) - 1) + int(point_step) * int(width) if height else 0
    if raw.size < needed:
        raise EncodingError(
            f"PointCloud2 data has {raw.size} bytes but {height} rows of row_step {row_step} "
            f"need {needed}"
        )
    return np.ndarray(
        (int(height), int(width)), dtype=dtype, buffer=raw, strides=(row_step, int(point_step))
    )
