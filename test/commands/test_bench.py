"""``recon3d bench``: runs the real per-frame path on a tiny model and reports every stage.

No timing thresholds here (speed targets belong to benchmarks); the test checks that each
stage was measured and that the comparison paths compute the same thing as the real one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import subprocess
import sys

import numpy as np

from recon3d_ros.commands.bench import naive_cloud_bytes, STAGES, synthetic_pattern
from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.pointcloud import depth_to_cloud

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run_cli(
    args: list[str], domain: int, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, "-m", "recon3d_ros.cli", *args, "--domain-id", str(domain)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO_ROOT),
    )


def test_bench_json_reports_every_stage(depth_models, ros_domain: int) -> None:
    model = depth_models.red_ramp()
    proc = _run_cli(
        [
            "bench",
            "--json",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--model",
            str(model),
            "--device",
            "cpu",
            "--width",
            "80",
            "--height",
            "60",
        ],
        ros_domain,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in STAGES + ("total_ms", "fps", "depth_postprocess_ms", "depth_msg_ms", "cloud_ms"):
        assert (
            isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0
        ), key
    assert result["total_ms"] == sum(result[k] for k in STAGES)
    assert (result["width"], result["height"]) == (80, 60)
    assert result["backend"] == "torch" and result["device"] == "cpu"
    assert result["model"] == str(model)
    assert result["cloud_points"] == 80 * 60
    assert result["subscriber_matched"] is True
    comparisons = result["comparisons"]
    assert comparisons["data_bytes"] == 80 * 60 * 16
    for key in (
        "cloud_naive_ms",
        "data_assign_numpy_ms",
        "data_assign_bytes_ms",
        "data_assign_array_ms",
    ):
        assert comparisons[key] > 0, key


def test_bench_table_is_readable(depth_models, ros_domain: int) -> None:
    proc = _run_cli(
        [
            "bench",
            "--iterations",
            "1",
            "--warmup",
            "0",
            "--model",
            str(depth_models.constant()),
            "--device",
            "cpu",
            "--width",
            "32",
            "--height",
            "24",
            "--encoding",
            "bgr8",
        ],
        ros_domain,
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("decode", "inference", "publish", "total", "numpy array", "array.array"):
        assert label in proc.stdout


def test_bad_model_is_one_clear_error(tmp_path: Path, ros_domain: int) -> None:
    proc = _run_cli(["bench", "--json", "--model", str(tmp_path / "nope.pt")], ros_domain)
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr
    assert proc.stdout == ""


def test_naive_cloud_matches_core_layout() -> None:
    """The comparison path must build the same bytes as depth_to_cloud on valid depth."""
    camera = PinholeCamera(16, 12, 20.0, 21.0, 7.5, 5.5)
    rgb = synthetic_pattern(16, 12)
    depth = np.linspace(0.5, 4.0, 16 * 12, dtype=np.float32).reshape(12, 16)
    naive = np.frombuffer(
        naive_cloud_bytes(depth, camera.fx, camera.fy, camera.cx, camera.cy, rgb), np.float32
    )
    core = np.frombuffer(depth_to_cloud(depth, camera, rgb).data, np.float32)
    np.testing.assert_allclose(
        naive.reshape(-1, 4)[:, :3], core.reshape(-1, 4)[:, :3], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_array_equal(naive.view(np.uint32)[3::4], core.view(np.uint32)[3::4])


def test_pattern_is_deterministic_and_textured() -> None:
    a, b = synthetic_pattern(40, 30), synthetic_pattern(40, 30)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (30, 40, 3) and a.dtype == np.uint8
    assert a.std() > 20  # not a flat image: gives the network something to see
