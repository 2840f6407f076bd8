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
fill (only when some depth is invalid), two multiplies (and the colour packing) into small
per-thread planes, and one interleaving write (``cv2.merge``) straight into the message's
buffer: :attr:`CloudBuffer.data` is the ``array.array('B')`` that ``PointCloud2.data`` keeps
as it is, filled once, never copied afterwards, and reused for a later frame once nobody holds
it any more (``benchmarks/bench_pointcloud.py`` prints the cost as a ratio to a memcpy of the
same bytes).
"""

from __future__ import annotations

import array
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
    """Everything a ``sensor_msgs/PointCloud2`` needs besides the header.

    ``data`` is an ``array.array('B')`` of ``row_step * height`` bytes: the type rclpy's
    generated ``PointCloud2.data`` stores without a copy (``ros.conversions.cloud_to_msg``
    hands this very object to the message). It supports the buffer protocol, so
    ``memoryview``/``np.frombuffer``/``struct`` read it like ``bytes``.
    """

    data: array.array[int]
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
    back (no copy) when it is already float32 and its invalid values, if any, are all NaN (a
    NaN depth gives a NaN point as it is).

    The rule accepts an interval of numbers, so the extremes decide: when the smallest and the
    largest value are valid, all are (``min``/``max`` propagate NaN, so a NaN fails this), and
    when the smallest and largest non-NaN values (``fmin``/``fmax``) are valid, only the NaNs
    are invalid. Two reductions over the frame instead of a mask, its test and a NaN-filled
    copy; the mask and the copy remain for depth outside the range (or <= 0, or infinite).
    """
    z = depth if depth.dtype == np.float32 else depth.astype(np.float32)
    if z.size == 0:
        return z, True

    def valid_extremes(low: np.floating, high: np.floating) -> bool:
        return bool(valid_depth_mask(np.array([low, high], z.dtype), min_depth, max_depth).all())

    if valid_extremes(z.min(), z.max()):
        return z, True
    if valid_extremes(np.fmin.reduce(z, axis=None), np.fmax.reduce(z, axis=None)):
        return z, False
    valid = valid_depth_mask(z, min_depth, max_depth)
    return np.where(valid, z, np.float32(np.nan)), False


_SCRATCH = threading.local()
# Pixels per block of the fill: the planes of one block (x, y and the packed colour, 128 KB
# each) stay in the CPU cache between the multiply and the interleaving write. Measured at
# 640x480 on the project's VM: 0.66 ms for x y z in blocks against 0.95 ms with whole-frame
# planes, and 1.6 ms for per-channel numpy writes into the interleaved buffer (strided stores).
_BLOCK_PIXELS = 1 << 15


def _scratch(name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """Return a per-thread work array, reused across frames of the same size.

    A fresh array of this size is a fresh allocation whose page faults cost as much as the
    arithmetic; the planes never leave :func:`_fill`, so reuse is safe.
    """
    cached = getattr(_SCRATCH, "buffers", None)
    if cached is None:
        cached = _SCRATCH.buffers = {}
    key = (name, shape, np.dtype(dtype).str)
    buf = cached.get(key)
    if buf is None:
        if len(cached) >= 12:  # a few streams of a few sizes; sizes rarely change
            cached.clear()
        buf = cached[key] = np.empty(shape, dtype=dtype)
    return buf


def _pack_block(
    colour: npt.NDArray[np.uint8], rows: int, cols: int
) -> npt.NDArray[np.float32]:
    """``rows x cols`` float32 holding PCL's packed ``0x00RRGGBB`` of an RGB block."""
    if not _LITTLE:
        return pack_rgb(colour)
    cv2 = _cv2()
    src = colour if colour.flags.c_contiguous else np.ascontiguousarray(colour)
    bgra = _scratch("bgra", (rows, cols, 4), np.uint8)
    # B, G, R, A bytes are the native uint32 0xAARRGGBB of a little-endian host; the mask
    # clears alpha to PCL's 0x00RRGGBB.
    out = cv2.cvtColor(src, cv2.COLOR_RGB2BGRA, dst=bgra)
    if out is not bgra:  # cv2 allocated instead of writing in place (shape/type mismatch)
        np.copyto(bgra, out)
    words = bgra.view(np.uint32)[..., 0]
    np.bitwise_and(words, np.uint32(0x00FFFFFF), out=words)
    return words.view(np.float32)


def _fill(
    out: npt.NDArray[np.float32],
    z: npt.NDArray[np.float32],
    rx: npt.NDArray[np.float32],
    ry: npt.NDArray[np.float32],
    colour: npt.NDArray[np.uint8] | None = None,
) -> None:
    """Write the ``x y z [rgb]`` of every pixel into ``out`` (``H x W x 3`` or ``x 4``) once.

    Per block of rows, x = rx * z and y = ry * z go to small planes and ``cv2.merge``
    interleaves them with z (and the packed colour) into ``out``: each byte of ``out`` is
    written in one pass, in order. ``z`` must be C-contiguous.
    """
    cv2 = _cv2()
    rows, cols = z.shape
    block = max(1, min(rows, _BLOCK_PIXELS // max(cols, 1)))
    x = _scratch("x", (block, cols), np.float32)
    y = _scratch("y", (block, cols), np.float32)
    for top in range(0, rows, block):
        end = min(top + block, rows)
        n = end - top
        zb = z[top:end]
        np.multiply(rx[top:end], zb, out=x[:n])
        np.multiply(ry[top:end], zb, out=y[:n])
        planes = [x[:n], y[:n], zb]
        if colour is not None:
            planes.append(_pack_block(colour[top:end], n, cols))
        target = out[top:end]
        merged = cv2.merge(planes, dst=target)
        if merged is not target:  # cv2 allocated instead of writing in place
            np.copyto(target, merged.reshape(target.shape))


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
    _fill(out, np.ascontiguousarray(z), rx, ry)
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


_BUFFERS = threading.local()
_POOL_SIZE = 3  # per thread: the buffer being published, the previous one, one of another size


def _free_refcount() -> int | None:
    """``sys.getrefcount(pool[i])`` of a buffer only the pool holds; None: never reuse.

    Measured on a probe with the very expression :func:`_message_buffer` uses, so the figure
    is this interpreter's. Interpreters without reference counts that mean "nobody else holds
    it" (no ``sys.getrefcount``, or CPython without the GIL) never reuse a buffer.
    """
    gil = getattr(sys, "_is_gil_enabled", None)
    if not hasattr(sys, "getrefcount") or (gil is not None and not gil()):
        return None
    probe = [array.array("B")]
    return sys.getrefcount(probe[0])


_FREE_REFCOUNT = _free_refcount()


def _message_buffer(nbytes: int) -> array.array[int]:
    """Return an ``array.array('B')`` of ``nbytes`` that nothing outside this module holds.

    A fresh multi-megabyte buffer per frame costs a memset (array.array has no uninitialised
    constructor) and the cache misses of memory malloc has just been handed back: measured
    0.5-0.9 ms of a 2 ms 640x480 xyzrgb cloud. So each thread keeps its last few buffers and
    hands one out again once the pool's is the only reference to it: a CloudBuffer, a message
    (``PointCloud2.data`` is this very array), a memoryview or numpy view of it all hold a
    reference, so a buffer anyone can still read is never overwritten. The caller overwrites
    every byte.
    """
    pool: list[array.array[int]] | None = getattr(_BUFFERS, "pool", None)
    if pool is None:
        pool = _BUFFERS.pool = []
    if _FREE_REFCOUNT is not None:
        for i in range(len(pool)):
            if len(pool[i]) == nbytes and sys.getrefcount(pool[i]) == _FREE_REFCOUNT:
                return pool[i]
    buf = array.array("B", b"\0") * nbytes
    pool.append(buf)
    if len(pool) > _POOL_SIZE:
        del pool[0]  # only forgotten here: whoever still holds it keeps it
    return buf


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
    z = np.ascontiguousarray(z)  # a strided view when stride > 1
    rx, ry = ray_grid_for(camera).decimated(stride)
    rows, cols = z.shape
    step = POINT_STEP_XYZ if rgb is None else POINT_STEP_XYZRGB
    fields = xyz_fields() if rgb is None else xyzrgb_fields()
    data = _message_buffer(rows * cols * step)
    if rows and cols:
        out = np.frombuffer(data, dtype=np.float32).reshape(rows, cols, step // 4)
        _fill(out, z, rx, ry, None if rgb is None else rgb[::stride, ::stride])
        del out  # release the buffer export: the message may own the array from now on
    return CloudBuffer(
        data=data,
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
