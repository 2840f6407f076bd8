"""Tests for recon3d_ros.core.rectify: distort a synthetic dot grid, rectify, compare."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.rectify import clear_rectifier_cache, rectifier_for
from recon3d_ros.errors import CameraModelError

W, H = 320, 240
K = (260.0, 255.0, 161.3, 118.6)  # fx, fy, cx, cy

# A grid of 3D points in front of the camera, spread over most of the view.
_gx, _gy = np.meshgrid(np.linspace(-0.45, 0.45, 6), np.linspace(-0.32, 0.32, 5))
POINTS = np.stack([_gx.ravel(), _gy.ravel(), np.full(_gx.size, 1.0)], 1)

CASES = {
    "plumb_bob": (-0.25, 0.08, 0.001, -0.0015, -0.01),
    "rational_polynomial": (-0.2, 0.05, 0.0005, 0.001, 0.0, 0.02, -0.01, 0.004),
    "equidistant": (0.05, -0.02, 0.01, -0.003),
}


def _camera(model: str) -> PinholeCamera:
    fx, fy, cx, cy = K
    return PinholeCamera(W, H, fx, fy, cx, cy, model, CASES[model])


def _distorted_pixels(camera: PinholeCamera) -> np.ndarray:
    zero = np.zeros(3)
    d = np.array(camera.d, np.float64)
    if camera.distortion_model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(POINTS[None], zero, zero, camera.k, d)
    else:
        uv, _ = cv2.projectPoints(POINTS, zero, zero, camera.k, d)
    return uv.reshape(-1, 2)


def _render(uvs: np.ndarray, sigma: float = 1.6) -> np.ndarray:
    u = np.arange(W, dtype=np.float64)
    v = np.arange(H, dtype=np.float64)[:, None]
    img = np.zeros((H, W))
    for cu, cv in uvs:
        img += np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * sigma**2))
    return np.clip(img * 250, 0, 255).astype(np.uint8)


def _centroid_near(img: np.ndarray, uv: np.ndarray, radius: int = 6) -> np.ndarray:
    u0, v0 = int(round(uv[0])), int(round(uv[1]))
    win = img[v0 - radius:v0 + radius + 1, u0 - radius:u0 + radius + 1].astype(np.float64)
    vv, uu = np.mgrid[v0 - radius:v0 + radius + 1, u0 - radius:u0 + radius + 1]
    return np.array([(win * uu).sum() / win.sum(), (win * vv).sum() / win.sum()])


@pytest.mark.parametrize("model", list(CASES))
def test_rectified_dots_land_on_pinhole_projections(model: str) -> None:
    camera = _camera(model)
    distorted_uv = _distorted_pixels(camera)
    assert np.abs(distorted_uv - camera.project(POINTS)).max() > 2.0  # distortion is visible
    image = _render(distorted_uv)
    rectifier = rectifier_for(camera)
    assert rectifier is not None
    out_cam = rectifier.camera
    assert not out_cam.is_distorted and out_cam.fx == camera.fx and out_cam.cx == camera.cx
    rectified = rectifier.rectify(image)
    assert rectified.shape == image.shape and rectified.dtype == np.uint8
    expected = out_cam.project(POINTS)
    for uv in expected:
        np.testing.assert_allclose(_centroid_near(rectified, uv), uv, atol=0.5)


def test_colour_and_output_camera() -> None:
    camera = _camera("plumb_bob")
    uv = _distorted_pixels(camera)
    colour = np.dstack([_render(uv)] * 3)
    out_cam = PinholeCamera(W // 2, H // 2, K[0] / 2, K[1] / 2, 80.0, 59.0)
    rectifier = rectifier_for(camera, out_cam)
    assert rectifier is not None and rectifier.camera == out_cam
    rectified = rectifier.rectify(colour)
    assert rectified.shape == (H // 2, W // 2, 3)
    for p in out_cam.project(POINTS)[[7, 14, 22]]:
        np.testing.assert_allclose(_centroid_near(rectified[..., 1], p, 4), p, atol=0.5)


def test_no_distortion_gives_none_and_cache_reuses_maps() -> None:
    clear_rectifier_cache()
    assert rectifier_for(PinholeCamera(W, H, *K)) is None
    assert rectifier_for(PinholeCamera(W, H, *K, "plumb_bob", (0.0,) * 5)) is None
    first = rectifier_for(_camera("plumb_bob"))
    again = rectifier_for(_camera("plumb_bob").with_frame_id("other_frame"))
    assert first is again
    other = rectifier_for(_camera("rational_polynomial"))
    assert other is not first


def test_unknown_model_and_wrong_size_raise() -> None:
    with pytest.raises(CameraModelError, match="distortion_model"):
        rectifier_for(PinholeCamera(W, H, *K, "kannala_brandt_9", (0.1, 0.0)))
    rectifier = rectifier_for(_camera("plumb_bob"))
    assert rectifier is not None
    with pytest.raises(CameraModelError, match="calibration"):
        rectifier.rectify(np.zeros((H + 2, W), np.uint8))


def _texture() -> np.ndarray:
    """Smooth random colour texture: every remap error shows as a grey-level difference."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC), (0, 0), 2)


# A stereo pair's left camera: R rotates it into the rectified frame and P is the new camera.
ROTATION, _ = cv2.Rodrigues(np.array([0.03, -0.05, 0.02]))
P_CAM = PinholeCamera(W, H, 240.0, 240.0, 150.2, 121.9)


@pytest.mark.parametrize("model", list(CASES))
def test_rectification_applies_r_like_opencv(model: str) -> None:
    # image_proc / image_geometry: maps = initUndistortRectifyMap(K, D, R, P).
    fx, fy, cx, cy = K
    camera = PinholeCamera(W, H, fx, fy, cx, cy, model, CASES[model], r=ROTATION.reshape(-1))
    d = np.array(CASES[model], np.float64)
    if model == "equidistant":
        mx, my = cv2.fisheye.initUndistortRectifyMap(
            camera.k, d.reshape(4, 1), ROTATION, P_CAM.k, (W, H), cv2.CV_32FC1
        )
    else:
        mx, my = cv2.initUndistortRectifyMap(camera.k, d, ROTATION, P_CAM.k, (W, H), cv2.CV_32FC1)
    image = _texture()
    expected = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    rectifier = rectifier_for(camera, P_CAM)
    assert rectifier is not None and rectifier.camera == P_CAM
    got = rectifier.rectify(image)
    diff = np.abs(got.astype(np.float64) - expected)
    # Fixed-point maps (1/32 px) against float ones: a fraction of a grey level on average.
    assert diff.mean() < 0.3, diff.mean()
    ignoring_r = rectifier_for(camera.__class__(**{**camera.__dict__, "r": ()}), P_CAM)
    assert np.abs(ignoring_r.rectify(image).astype(np.float64) - expected).mean() > 10.0


def test_cache_key_includes_r() -> None:
    clear_rectifier_cache()
    plain = rectifier_for(_camera("plumb_bob"))
    rotated = rectifier_for(
        PinholeCamera(W, H, *K, "plumb_bob", CASES["plumb_bob"], r=ROTATION.reshape(-1))
    )
    assert rotated is not plain
    assert np.abs(rotated.maps.map1.astype(int) - plain.maps.map1).max() > 5
