"""``recon3d cloud``: depth (+ colour) files to PLY points or mesh, checked on hand-made input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from recon3d_ros.cli import main
from recon3d_ros.core.ply import read_ply

FX, FY, CX, CY = 10.0, 12.0, 2.0, 1.5


def _write_inputs(folder: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Write a 5x4 16-bit millimetre depth with two holes and a colour image to ``folder``."""
    depth_mm = np.arange(1000, 1000 + 20 * 50, 50, dtype=np.uint16).reshape(4, 5)
    depth_mm[0, 0] = 0
    depth_mm[2, 3] = 0
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    depth_path = folder / "depth.png"
    rgb_path = folder / "rgb.png"
    cv2.imwrite(str(depth_path), depth_mm)
    cv2.imwrite(str(rgb_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return depth_path, rgb_path, depth_mm, rgb


def _expected_points(depth_m: np.ndarray) -> np.ndarray:
    v, u = np.nonzero(np.isfinite(depth_m) & (depth_m > 0))
    z = depth_m[v, u]
    return np.stack([(u - CX) / FX * z, (v - CY) / FY * z, z], axis=1)


def test_points_from_png_with_explicit_intrinsics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth_path, rgb_path, depth_mm, rgb = _write_inputs(tmp_path)
    out = tmp_path / "cloud.ply"
    rc = main(
        [
            "cloud",
            "--rgb",
            str(rgb_path),
            "--depth",
            str(depth_path),
            "--fx",
            str(FX),
            "--fy",
            str(FY),
            "--cx",
            str(CX),
            "--cy",
            str(CY),
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    assert "18 points" in capsys.readouterr().out
    ply = read_ply(out)
    depth_m = depth_mm.astype(np.float64) / 1000.0
    np.testing.assert_allclose(ply.points, _expected_points(depth_m), rtol=1e-6, atol=1e-6)
    valid = depth_mm.reshape(-1) > 0
    np.testing.assert_array_equal(ply.colors, rgb.reshape(-1, 3)[valid])
    assert ply.faces is None or len(ply.faces) == 0


def test_intrinsics_json_scale_and_resolution(tmp_path: Path) -> None:
    """intrinsics.json's depth_scale is used, and a calibration at 2x resolution is rescaled."""
    depth_path, _, depth_mm, _ = _write_inputs(tmp_path)
    # The same camera calibrated at 10x8: fx doubles, centres follow the cv2.resize convention.
    intrinsics = {
        "fx": FX * 2,
        "fy": FY * 2,
        "cx": (CX + 0.5) * 2 - 0.5,
        "cy": (CY + 0.5) * 2 - 0.5,
        "width": 10,
        "height": 8,
        "depth_scale": 5000.0,
    }
    json_path = tmp_path / "intrinsics.json"
    json_path.write_text(json.dumps(intrinsics))
    out = tmp_path / "scaled.ply"
    assert (
        main(["cloud", "--depth", str(depth_path), "--intrinsics", str(json_path), "-o", str(out)])
        == 0
    )
    ply = read_ply(out)
    np.testing.assert_allclose(
        ply.points, _expected_points(depth_mm / 5000.0), rtol=1e-5, atol=1e-6
    )
    assert ply.colors is None
    # --depth-scale overrides the file's.
    assert (
        main(
            [
                "cloud",
                "--depth",
                str(depth_path),
                "--intrinsics",
                str(json_path),
                "--depth-scale",
                "1000",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        read_ply(out).points[:, 2], depth_mm[depth_mm > 0] / 1000.0, rtol=1e-6
    )


def test_npy_metres_and_mesh(tmp_path: Path) -> None:
    """A float .npy is metres; a smooth surface gives two triangles per 2x2 block, a jump none."""
    depth = np.full((4, 5), 2.0, dtype=np.float32)
    depth[:, 4] = 4.0  # a depth step: the last column of quads must not be bridged
    depth[3, 0] = np.nan
    npy = tmp_path / "depth.npy"
    np.save(npy, depth)
    out = tmp_path / "mesh.ply"
    args = [
        "cloud",
        "--depth",
        str(npy),
        "--fx",
        str(FX),
        "--fy",
        str(FY),
        "--cx",
        str(CX),
        "--cy",
        str(CY),
    ]
    assert main(args + ["--mesh", "-o", str(out)]) == 0
    mesh = read_ply(out)
    assert len(mesh.points) == 19
    # 3x4 quads, minus the 3 across the step, minus the quad whose shared corner is NaN
    # (both of its triangles use the bottom-left vertex).
    assert len(mesh.faces) == 2 * 3 * 3 - 2
    assert np.all(np.isfinite(mesh.points))
    assert main(args + ["--min-depth", "3.0", "-o", str(tmp_path / "far.ply")]) == 0
    np.testing.assert_allclose(read_ply(tmp_path / "far.ply").points[:, 2], 4.0)


def test_errors_are_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth_path, _, _, _ = _write_inputs(tmp_path)
    out = str(tmp_path / "x.ply")
    assert main(["cloud", "--depth", str(depth_path), "--fx", "10", "-o", out]) == 1
    assert "--fx --fy --cx --cy" in capsys.readouterr().err
    big_rgb = tmp_path / "big.png"
    cv2.imwrite(str(big_rgb), np.zeros((8, 10, 3), np.uint8))
    assert (
        main(
            [
                "cloud",
                "--depth",
                str(depth_path),
                "--rgb",
                str(big_rgb),
                "--fx",
                "10",
                "--fy",
                "10",
                "--cx",
                "2",
                "--cy",
                "2",
                "-o",
                out,
            ]
        )
        == 1
    )
    assert "registered" in capsys.readouterr().err
    assert (
        main(
            [
                "cloud",
                "--depth",
                str(tmp_path / "missing.png"),
                "--fx",
                "1",
                "--fy",
                "1",
                "--cx",
                "1",
                "--cy",
                "1",
                "-o",
                out,
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert not Path(out).exists()


def test_real_rgbd_frame_matches_measurements() -> None:
    """On a real Kinect-style frame every valid pixel becomes one point at its measured depth."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rgbd" / "redwood"
    if not (root / "intrinsics.json").is_file():
        pytest.skip(f"RGB-D evaluation data not found at {root}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "redwood.ply"
        assert (
            main(
                [
                    "cloud",
                    "--rgb",
                    str(root / "color" / "00000.jpg"),
                    "--depth",
                    str(root / "depth" / "00000.png"),
                    "--intrinsics",
                    str(root / "intrinsics.json"),
                    "--stride",
                    "4",
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        ply = read_ply(out)
    raw = cv2.imread(str(root / "depth" / "00000.png"), cv2.IMREAD_UNCHANGED)[::4, ::4]
    assert len(ply.points) == int((raw > 0).sum())
    np.testing.assert_allclose(
        np.sort(ply.points[:, 2]), np.sort(raw[raw > 0] / 1000.0), rtol=1e-6
    )
