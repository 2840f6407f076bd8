"""The GPU latency benchmark runs end to end (on the CPU here, with a tiny network)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_latency.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_latency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_network_has_depth_anything_v2_small_shape():
    net = _load().build_network()
    params = sum(p.numel() for p in net.parameters()) / 1e6
    assert 22.0 < params < 27.0  # DA-V2-Small: 24.8 M
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, 70, 98))  # any multiple of 14
    assert out.shape == (1, 1, 70, 98)


def test_cpu_smoke_run_reports_every_stage(capsys):
    code = _load().main(
        [
            "--device",
            "cpu",
            "--tiny",
            "--size",
            "42",
            "--image",
            "96x64",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "cpu" and result["precision"] == "fp32"
    stages = result["median_ms"]
    assert set(stages) == {
        "upload_preprocess_ms",
        "inference_ms",
        "postprocess_download_ms",
        "end_to_end_ms",
    }
    assert all(v > 0 for v in stages.values())
    assert stages["end_to_end_ms"] >= stages["inference_ms"]
