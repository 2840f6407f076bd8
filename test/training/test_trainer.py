"""A real (tiny) training run: it learns, writes loadable checkpoints and resumes."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.models import load_checkpoint  # noqa: E402
from recon3d_ros.training.trainer import TrainOptions, train  # noqa: E402


def _opts(out, **kw):
    base = {
        "out_dir": str(out),
        "synth_size": (48, 36),
        "crop": (32, 24),
        "input_size": (48, 36),
        "arch_kwargs": {"width": 0.5},
        "epochs": 2,
        "epoch_size": 2,
        "batch": 2,
        "val_count": 2,
        "val_size": (48, 36),
        "device": "cpu",
        "threads": 1,
        "warmup_steps": 1,
        "seed": 3,
        "progress": False,
        "command": "test",
    }
    base.update(kw)
    return TrainOptions(**base)


def test_two_steps_write_checkpoints_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    path = train(_opts(out))
    model, config, meta = load_checkpoint(path)
    assert meta["steps"] == 2 and meta["seed"] == 3 and meta["command"] == "test"
    assert {"duration_s", "machine", "data"} <= set(meta)
    assert config.canonical_focal == 200.0 and config.output_kind == "metric_depth"
    assert (config.input_width, config.input_height) == (48, 36)
    assert (out / "best.pt").exists() and (out / "train_state.pt").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert 0 < log[-1]["val_synth"]["abs_rel"] < 10

    first = {k: v.clone() for k, v in model.state_dict().items()}
    train(_opts(out, epochs=3, resume=True))
    model2, _, meta2 = load_checkpoint(out / "model.pt")
    assert meta2["steps"] == 3  # continued from step 2, not restarted
    changed = any(
        not torch.equal(first[k], v)
        for k, v in model2.state_dict().items()
        if v.is_floating_point()
    )
    assert changed


def test_fine_tuning_records_the_checkpoint_it_started_from(tmp_path):
    first = train(_opts(tmp_path / "a", epochs=1))
    tuned = train(_opts(tmp_path / "b", epochs=1, init_from=str(first), seed=9))
    _, _, meta = load_checkpoint(tuned)
    assert meta["seed"] == 9 and "init_from" not in load_checkpoint(first)[2]
    assert meta["init_from"]["path"] == str(first) and meta["init_from"]["seed"] == 3


def test_resume_without_state_and_empty_data_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="resume"):
        train(_opts(tmp_path / "fresh", resume=True))
    with pytest.raises(ConfigError, match="nothing to train on"):
        train(_opts(tmp_path / "none", synthetic=False))
    with pytest.raises(ConfigError, match="standard, strong"):
        train(_opts(tmp_path / "aug", augment="wild"))


def test_evaluation_during_training_runs_the_nodes_engine_on_the_saved_weights(tmp_path):
    """The per-epoch score on a real folder is what `recon3d eval` gets from model.pt."""
    from recon3d_ros.commands.synth import write_folder
    from recon3d_ros.evaluation.dataset import load_rgbd_folder
    from recon3d_ros.evaluation.evaluate import evaluate_frames
    from recon3d_ros.inference.loader import load_engine
    from recon3d_ros.inference.pipeline import FramePipeline

    folder = tmp_path / "room"
    write_folder(folder, 2, 7, 64, 48, 70.0, None)
    out = tmp_path / "run"
    train(_opts(out, eval_folders=[str(folder)]))
    record = json.loads((out / "log.jsonl").read_text().splitlines()[-1])["eval_room"]
    engine = load_engine(str(out / "model.pt"), device="cpu")
    expected = evaluate_frames(FramePipeline(engine), load_rgbd_folder(folder), baselines=False)
    for mode in ("metric", "median"):
        for key in ("abs_rel", "delta1"):
            assert record[mode][key] == pytest.approx(expected[mode][key], abs=1e-4)
    # Scoring changes nothing: the second epoch trains (batch norm in train mode) as without it.
    plain = load_checkpoint(train(_opts(tmp_path / "plain")))[0].state_dict()
    scored = load_checkpoint(out / "model.pt")[0].state_dict()
    assert all(torch.equal(plain[k], v) for k, v in scored.items())


def test_validation_covers_every_generator_and_chooses_on_their_mean(tmp_path, monkeypatch):
    import numpy as np

    from recon3d_ros.core.camera import PinholeCamera
    from recon3d_ros.synth import SynthFrame
    from recon3d_ros.training import cache

    real = cache.renderer

    def wall(seed, width, height):  # stands in for the mesh generator: a flat wall at 3 m
        cam = PinholeCamera.from_fov(width, height, 60.0)
        grey = np.full((height, width, 3), 100 + seed, np.uint8)
        return SynthFrame(grey, np.full((height, width), 3.0, np.float32), cam)

    monkeypatch.setattr(cache, "renderer", lambda g: wall if g == "mesh" else real(g))
    out = tmp_path / "run"
    train(_opts(out, epochs=1, val_generators=("procedural", "mesh")))
    record = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    by_gen = record["val_by_generator"]
    assert set(by_gen) == {"procedural", "mesh"}
    assert by_gen["procedural"]["abs_rel"] != by_gen["mesh"]["abs_rel"]
    mean = (by_gen["procedural"]["abs_rel"] + by_gen["mesh"]["abs_rel"]) / 2
    assert record["val_synth"]["abs_rel"] == pytest.approx(mean)
    assert record["best_val_abs_rel"] == pytest.approx(mean)  # the choice is on the mean
    assert (out / "val_synth_mesh.npz").exists()
