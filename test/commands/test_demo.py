"""``recon3d demo`` end to end: a real depth node process, real DDS, files a person can open."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recon3d_ros.core.ply import read_ply

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run_demo(
    args: list[str], domain: int, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, "-m", "recon3d_ros.cli", "demo", *args, "--domain-id", str(domain)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO_ROOT),
    )


@pytest.mark.integration
def test_demo_synthetic_sequence_end_to_end(depth_models, ros_domain: int, tmp_path: Path) -> None:
    model = depth_models.red_ramp()  # depth = 1 + red/255 m: every pixel valid, colour dependent
    out = tmp_path / "demo"
    proc = _run_demo(
        [
            "--model",
            str(model),
            "--device",
            "cpu",
            "--frames",
            "3",
            "--width",
            "64",
            "--height",
            "48",
            "--rate",
            "10",
            "--out",
            str(out),
        ],
        ros_domain,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "processed 3/3 frames" in proc.stdout

    names = [f"frame_{i:04d}" for i in range(3)]
    for name in names:
        panel = cv2.imread(str(out / "colormap" / f"{name}.png"))
        # RGB | depth | legend, enlarged by a whole factor for a readable legend.
        assert (
            panel is not None
            and panel.shape[0] % 48 == 0
            and panel.shape[1] > 2 * panel.shape[0] * 64 // 48
        )
        assert (out / "rgb" / f"{name}.png").is_file()
    for name in ("mesh.ply", "preview.png", "node.log", "intrinsics.json"):
        assert (out / name).is_file(), name

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 3 and summary["frames_dropped"] == 0
    assert summary["points_latency_ms"]["p50"] > 0
    # Synthetic frames carry ground truth: the demo scores the received depth against it.
    assert summary["ground_truth"]["frames"] == 3 and summary["ground_truth"]["abs_rel"] > 0

    ply = read_ply(out / "cloud.ply")
    assert len(ply.points) == 64 * 48 == summary["cloud_points"]
    assert np.all(np.isfinite(ply.points))
    # The cloud is the node's PointCloud2 of the frame named in the summary: its colours are that
    # frame's pixels (row-major), and its z is that frame's published depth.
    frame = summary["cloud_frame"]
    rgb = cv2.cvtColor(cv2.imread(str(out / "rgb" / f"{frame}.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(ply.colors, rgb.reshape(-1, 3))
    depth_mm = cv2.imread(str(out / "depth" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
    assert depth_mm.dtype == np.uint16
    np.testing.assert_allclose(ply.points[:, 2], depth_mm.reshape(-1) / 1000.0, atol=6e-4)
    assert 1.0 <= ply.points[:, 2].min() and ply.points[:, 2].max() <= 2.0
    intrinsics = json.loads((out / "intrinsics.json").read_text())
    assert (intrinsics["width"], intrinsics["height"]) == (64, 48)
    mesh = read_ply(out / "mesh.ply")
    assert len(mesh.faces) > 0 and mesh.points.shape[0] <= 64 * 48


@pytest.mark.integration
def test_demo_reports_a_missing_model(ros_domain: int, tmp_path: Path) -> None:
    proc = _run_demo(
        [
            "--model",
            str(tmp_path / "missing.pt"),
            "--frames",
            "1",
            "--width",
            "32",
            "--height",
            "24",
            "--startup-timeout",
            "30",
            "--out",
            str(tmp_path / "demo"),
        ],
        ros_domain,
    )
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr  # the node's own start-up error, from its log
