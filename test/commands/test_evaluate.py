"""``recon3d eval``: one JSON object with the three modes, frames and baselines; PNG panels."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from recon3d_ros.cli import main  # noqa: E402
from recon3d_ros.commands.synth import write_folder  # noqa: E402
from recon3d_ros.core.model_config import ModelConfig  # noqa: E402
from recon3d_ros.models import build_model, save_checkpoint  # noqa: E402


@pytest.fixture
def model_and_data(tmp_path):
    model = build_model("unet_small", width=0.5)
    cfg = ModelConfig(
        name="t",
        input_width=48,
        input_height=36,
        resize_mode="letterbox",
        canonical_focal=40.0,
        max_depth=80.0,
    )
    ckpt = save_checkpoint(
        tmp_path / "m.pt", model, "unet_small", {"width": 0.5}, cfg, {"seed": 0}
    )
    data = tmp_path / "set"
    write_folder(data, 2, 7, 40, 30, 70.0, "room")
    return ckpt, data


def test_eval_json_structure(model_and_data, capsys):
    ckpt, data = model_and_data
    assert main(["eval", "--data", str(data), "--model", str(ckpt), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for mode in ("metric", "median", "scale_shift"):
        assert 0 <= res[mode]["delta1"] <= 1 and res[mode]["abs_rel"] >= 0
        assert {
            "abs_rel",
            "sq_rel",
            "rmse",
            "rmse_log",
            "mae",
            "mse",
            "delta1",
            "delta2",
            "delta3",
        } <= set(res[mode])
    assert [f["name"] for f in res["frames"]] == ["0", "1"]
    assert set(res["baselines"]) == {"constant", "ground_plane"}
    assert "metric" in res["baselines"]["ground_plane"]


def test_eval_table_and_panels(model_and_data, tmp_path, capsys):
    ckpt, data = model_and_data
    out = tmp_path / "figs"
    assert main(["eval", "--data", str(data), "--model", str(ckpt), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "baseline constant / metric" in text and "model / median" in text
    panel = cv2.imread(str(out / "set" / "0.png"))
    assert panel is not None and panel.shape[1] == 4 * 40
    assert (out / "summary.png").exists()


def test_eval_missing_folder_is_a_clean_error(model_and_data, tmp_path, capsys):
    ckpt, _ = model_and_data
    assert main(["eval", "--data", str(tmp_path / "none"), "--model", str(ckpt)]) == 1
    assert "does not exist" in capsys.readouterr().err
