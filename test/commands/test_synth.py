"""``recon3d synth``: an RGB-D folder that the reader loads back with the exact depth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon3d_ros.cli import main
from recon3d_ros.evaluation.dataset import load_rgbd_folder
from recon3d_ros.synth import render_frame
from recon3d_ros.training.cache import SynthCache


def test_folder_round_trip(tmp_path):
    out = tmp_path / "s"
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--count",
                "2",
                "--seed",
                "9",
                "--width",
                "32",
                "--height",
                "24",
                "--hfov",
                "80",
                "--kind",
                "room",
            ]
        )
        == 0
    )
    info = json.loads((out / "intrinsics.json").read_text())
    assert info["frames"] == ["0", "1"] and info["cx"] == pytest.approx(15.5)
    frames = load_rgbd_folder(out)
    f = render_frame(10, 32, 24, hfov_deg=80, kind="room", jitter_principal=False)
    np.testing.assert_array_equal(frames[1].rgb, f.rgb)
    np.testing.assert_allclose(frames[1].depth_m, f.depth, atol=5e-4)  # millimetre storage
    assert frames[1].camera.fx == pytest.approx(f.camera.fx)


def test_cache_output_and_bad_count(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--cache",
                str(tmp_path / "c"),
                "--count",
                "2",
                "--width",
                "16",
                "--height",
                "16",
            ]
        )
        == 0
    )
    assert len(SynthCache(tmp_path / "c")) == 2
    assert main(["synth", "--out", str(tmp_path / "x"), "--count", "0"]) == 1
    assert "--count" in capsys.readouterr().err
