"""Tests for recon3d_ros.core.camera: intrinsics bookkeeping checked against real images.

Each geometric operation is checked two ways: by exact formulas and by rendering a small
Gaussian dot at the projection of a 3D point, transforming the *image* with OpenCV, and
comparing the dot's intensity centroid with the transformed camera's projection.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from recon3d_ros.core.camera import (
    PinholeCamera,
    keep_aspect_transform,
    letterbox_transform,
    resize_image,
    round_to_multiple,
    stretch_transform,
)
from recon3d_ros.errors import CameraModelError

CAM = PinholeCamera(width=640, height=480, fx=500.0, fy=520.0, cx=318.3, cy=241.7)
POINTS = np.array([[0.31, -0.22, 2.0], [-0.5, 0.35, 3.1], [0.02, 0.01, 1.5]], np.float64)


def _render_dot(width: int, height: int, uv: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    u = np.arange(width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)[:, None]
    img = np.exp(-((u - uv[0]) ** 2 + (v - uv[1]) ** 2) / (2 * sigma**2))
    return (img * 1000.0).astype(np.float32)


def _centroid(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float64)
    total = img.sum()
    v, u = np.indices(img.shape)
    return np.array([(img * u).sum() / total, (img * v).sum() / total])


def test_project_matches_pinhole_formula() -> None:
    uv = CAM.project(POINTS)
    expected = [[500 * 0.31 / 2 + 318.3, 520 * -0.22 / 2 + 241.7]]
    np.testing.assert_allclose(uv[:1], expected)


@pytest.mark.parametrize("point", list(POINTS))
def test_resize_by_area_moves_the_dot_where_the_resized_camera_projects(point: np.ndarray) -> None:
    img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0])
    small = cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)
    cam = CAM.resized(160, 120)
    np.testing.assert_allclose(_centroid(small), cam.project(point[None])[0], atol=0.01)


def test_resize_exact_formula_and_linear_upscale() -> None:
    cam = CAM.resized(1000, 700)
    sx, sy = 1000 / 640, 700 / 480
    assert cam.fx == pytest.approx(500 * sx) and cam.fy == pytest.approx(520 * sy)
    assert cam.cx == pytest.approx((318.3 + 0.5) * sx - 0.5)
    assert cam.cy == pytest.approx((241.7 + 0.5) * sy - 0.5)
    point = POINTS[1]
    img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0])
    big = cv2.resize(img, (1000, 700), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(_centroid(big), cam.project(point[None])[0], atol=0.05)


def test_crop_moves_principal_point_and_dot() -> None:
    cam = CAM.cropped(150, 60, 400, 250)
    assert (cam.width, cam.height, cam.fx, cam.fy) == (400, 250, 500.0, 520.0)
    assert (cam.cx, cam.cy) == pytest.approx((168.3, 181.7))
    point = POINTS[0]
    img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0])
    crop = img[60:310, 150:550]
    np.testing.assert_allclose(_centroid(crop), cam.project(point[None])[0], atol=1e-6)


def test_letterbox_camera_matches_letterboxed_image() -> None:
    transform = letterbox_transform(640, 480, 320, 320)
    assert (transform.content_width, transform.content_height) == (320, 240)
    assert (transform.left, transform.top) == (0, 40)
    cam = transform.apply_camera(CAM)
    assert (cam.width, cam.height) == (320, 320)
    assert cam.cx == pytest.approx((318.3 + 0.5) / 2 - 0.5)
    assert cam.cy == pytest.approx((241.7 + 0.5) / 2 - 0.5 + 40)
    for point in POINTS:
        img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0])
        boxed = transform.apply_image(img)
        assert boxed.shape == (320, 320)
        assert np.all(boxed[:40] == 0) and np.all(boxed[280:] == 0)
        np.testing.assert_allclose(_centroid(boxed), cam.project(point[None])[0], atol=0.01)


def test_letterbox_invert_restores_source_geometry() -> None:
    transform = letterbox_transform(640, 480, 320, 320)
    point = POINTS[1]
    img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0], sigma=6.0)
    back = transform.invert_image(transform.apply_image(img))
    assert back.shape == (480, 640)
    np.testing.assert_allclose(_centroid(back), CAM.project(point[None])[0], atol=0.05)


def test_stretch_and_keep_aspect_transforms() -> None:
    stretch = stretch_transform(640, 480, 518, 518)
    cam = stretch.apply_camera(CAM)
    assert cam.fx == pytest.approx(500 * 518 / 640) and cam.fy == pytest.approx(520 * 518 / 480)
    keep = keep_aspect_transform(640, 480, 518, multiple_of=14)
    assert keep.dst_height == 518 and keep.dst_width % 14 == 0
    assert keep.dst_width == 14 * round(640 * 518 / 480 / 14)


def test_from_camera_info_roi_matches_cropped_image() -> None:
    k = [500.0, 0.0, 318.3, 0.0, 520.0, 241.7, 0.0, 0.0, 1.0]
    cam = PinholeCamera.from_camera_info(k, 640, 480, roi=(100, 60, 300, 250))
    assert cam == CAM.cropped(100, 60, 300, 250)
    full = PinholeCamera.from_camera_info(k, 640, 480, roi=(0, 0, 0, 0))
    assert full == CAM


def test_from_camera_info_binning_follows_image_geometry() -> None:
    # image_geometry: fx /= b, cx = (cx - roi.x_offset) / b (ROI first, then binning).
    k = [500.0, 0.0, 318.3, 0.0, 520.0, 241.7, 0.0, 0.0, 1.0]
    cam = PinholeCamera.from_camera_info(k, 640, 480, binning_x=2, binning_y=4,
                                         roi=(100, 60, 300, 240))
    assert (cam.width, cam.height) == (150, 60)
    assert (cam.fx, cam.fy) == pytest.approx((250.0, 130.0))
    assert (cam.cx, cam.cy) == pytest.approx(((318.3 - 100) / 2, (241.7 - 60) / 4))
    zero = PinholeCamera.from_camera_info(k, 640, 480, binning_x=0, binning_y=0)
    assert zero == CAM


def test_binning_convention_against_area_binned_image() -> None:
    # Under the pixel-centre convention, 2x2 area binning puts the dot at (u + 0.5) / 2 - 0.5,
    # which is what resized() gives; image_geometry's cx / 2 differs from it by exactly 0.25 px.
    k = CAM.k_row_major()
    binned = PinholeCamera.from_camera_info(k, 640, 480, binning_x=2, binning_y=2)
    exact = CAM.resized(320, 240)
    point = POINTS[0]
    img = _render_dot(CAM.width, CAM.height, CAM.project(point[None])[0])
    small = img.reshape(240, 2, 320, 2).mean(axis=(1, 3))  # what the sensor's binning does
    dot = _centroid(small)
    np.testing.assert_allclose(dot, exact.project(point[None])[0], atol=0.01)
    np.testing.assert_allclose(binned.project(point[None])[0] - dot, [0.25, 0.25], atol=0.01)


def test_from_fov_and_views() -> None:
    cam = PinholeCamera.from_fov(640, 480, 90.0)
    assert cam.fx == pytest.approx(320.0)
    assert cam.hfov_deg == pytest.approx(90.0)
    assert (cam.cx, cam.cy) == (319.5, 239.5)
    assert cam.k_row_major() == pytest.approx([320.0, 0.0, 319.5, 0.0, 320.0, 239.5, 0, 0, 1])
    assert cam.p_row_major() == pytest.approx([320.0, 0, 319.5, 0, 0, 320.0, 239.5, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(cam.k, np.array(cam.k_row_major()).reshape(3, 3))


def test_undistorted_drops_distortion() -> None:
    cam = PinholeCamera(10, 10, 5, 5, 4.5, 4.5, "plumb_bob", (0.1, 0, 0, 0, 0))
    assert cam.is_distorted
    plain = cam.undistorted()
    assert not plain.is_distorted and plain.fx == cam.fx


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fx": 0.0}, {"fy": -1.0}, {"cx": math.nan}, {"width": 0},
    ],
)
def test_invalid_intrinsics_raise(kwargs: dict) -> None:
    args = {"width": 4, "height": 3, "fx": 2.0, "fy": 2.0, "cx": 1.5, "cy": 1.0}
    args.update(kwargs)
    with pytest.raises(CameraModelError):
        PinholeCamera(**args)


def test_from_camera_info_rejects_bad_k() -> None:
    with pytest.raises(CameraModelError, match="9 elements"):
        PinholeCamera.from_camera_info([1.0, 2.0], 4, 3)
    with pytest.raises(CameraModelError, match="uncalibrated"):
        PinholeCamera.from_camera_info([0.0] * 9, 640, 480)


# ------------------------------------------------------------------ what cannot be a camera
def _k(fx=500.0, fy=520.0, cx=318.3, cy=241.7, skew=0.0, k8=1.0, low=(0.0, 0.0, 0.0)):
    return [fx, skew, cx, low[0], fy, cy, low[1], low[2], k8]


@pytest.mark.parametrize(
    "k, roi, reason",
    [
        # The cases of the fuzzed CameraInfos (issue 10, item 5), each with the reason it names.
        (_k(), (5000, 5000, 640, 480), r"ROI 640x480 at offset \(5000, 5000\).*the 640x480"),
        (_k(), (100, 0, 600, 480), r"reaches \(700, 480\), outside"),
        (_k(fx=1e-9), None, r"focal length fx=1e-09 is outside \(0.64, 640000\)"),
        (_k(fx=1e300, fy=1e300), None, "focal length fx=1e\\+300 is outside"),
        (_k(k8=0.0), None, r"K\[8\] is 0, not 1"),
        (_k(k8=5.0), None, r"K\[8\] is 5, not 1"),
        (_k(skew=1e6), None, r"skew K\[1\]=1e\+06 exceeds 0.001 x fx"),
        (_k(cx=1e12), None, r"principal point cx=1e\+12 is outside \[-640, 1280\]"),
        (_k(cy=-500.0), None, r"principal point cy=-500 is outside \[-480, 960\]"),
        (_k(fx=5000.0, fy=100.0), None, r"pixel aspect fx/fy .* = 50 is outside \[0.1, 10\]"),
        (_k(low=(0.0, 318.3, 241.7)), None, "below the diagonal.*transposed"),
    ],
)
def test_from_camera_info_rejects_geometry_no_camera_has(k, roi, reason) -> None:
    with np.errstate(all="raise"):  # and no numpy overflow on the way
        with pytest.raises(CameraModelError, match=reason):
            PinholeCamera.from_camera_info(k, 640, 480, roi=roi)


@pytest.mark.parametrize(
    "k, roi",
    [
        (_k(), (0, 0, 640, 480)),  # ROI = the whole sensor
        (_k(), (600, 440, 40, 40)),  # ROI touching the far corner
        (_k(fx=3.0, fy=3.0), None),  # 179 degrees across 640 px
        (_k(fx=6e5, fy=6e5), None),  # a 0.06 degree telescope
        (_k(cx=-300.0, cy=900.0), None),  # shift lens: axis off the sensor, within one size
        (_k(skew=0.4), None),  # negligible skew (0.08 % of fx)
        (_k(k8=1.0 + 1e-9, low=(1e-12, 0.0, 0.0)), None),  # float noise
    ],
)
def test_from_camera_info_accepts_real_calibrations(k, roi) -> None:
    cam = PinholeCamera.from_camera_info(k, 640, 480, roi=roi)
    assert cam.fx == k[0] and cam.cx == k[2] - (roi[0] if roi else 0)


def test_rotation_is_kept_normalised_and_checked() -> None:
    rot, _ = cv2.Rodrigues(np.array([0.02, -0.03, 0.01]))
    cam = PinholeCamera.from_camera_info(_k(), 640, 480, r=rot.reshape(-1))
    np.testing.assert_array_equal(cam.rotation, rot)
    assert not cam.undistorted().r  # a rectified image has no rotation left
    identity = PinholeCamera.from_camera_info(_k(), 640, 480, r=np.eye(3).reshape(-1))
    unset = PinholeCamera.from_camera_info(_k(), 640, 480, r=[0.0] * 9)
    assert identity == unset == PinholeCamera.from_camera_info(_k(), 640, 480)
    np.testing.assert_array_equal(unset.rotation, np.eye(3))
    with pytest.raises(CameraModelError, match="not a rotation"):
        PinholeCamera.from_camera_info(_k(), 640, 480, r=(2.0 * rot).reshape(-1))
    with pytest.raises(CameraModelError, match="not a rotation"):  # a reflection
        PinholeCamera.from_camera_info(_k(), 640, 480, r=np.diag([1.0, 1.0, -1.0]).reshape(-1))


def test_round_to_multiple_rounds_half_to_even_like_numpy():
    # 21 / 14 = 1.5 -> 2 and 35 / 14 = 2.5 -> 2 (ties to even), 7 / 14 = 0.5 -> 0.
    assert [round_to_multiple(v, 14) for v in (21, 35, 7, 20.9, 518)] == [28, 28, 0, 14, 518]
    assert [int(np.round(v / 14)) * 14 for v in (21, 35, 7, 20.9, 518)] == [28, 28, 0, 14, 518]
    assert round_to_multiple(5.4, 0) == 5  # a multiple below 1 counts as 1


def test_resize_image_uses_area_when_either_side_shrinks():
    img = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert resize_image(img, 40, 30) is img
    for w, h in ((20, 15), (20, 45)):  # both sides shrink; only the width shrinks
        expected = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(resize_image(img, w, h), expected)
    np.testing.assert_array_equal(
        resize_image(img, 80, 60), cv2.resize(img, (80, 60), interpolation=cv2.INTER_LINEAR)
    )
    np.testing.assert_array_equal(
        resize_image(img, 80, 60, cv2.INTER_CUBIC),
        cv2.resize(img, (80, 60), interpolation=cv2.INTER_CUBIC),
    )
