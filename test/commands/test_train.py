"""``recon3d train`` end to end through the CLI: synthetic and folder data, resume, errors."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from recon3d_ros.cli import main  # noqa: E402
from recon3d_ros.commands.synth import write_folder  # noqa: E402
from recon3d_ros.models import load_checkpoint  # noqa: E402

TINY = [
    "--crop",
    "32x32",
    "--input-size",
    "48x48",
    "--width-mult",
    "0.5",
    "--batch",
    "2",
    "--epoch-size",
    "2",
    "--val-count",
    "1",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--quiet",
]


def test_train_from_folder_and_synthetic_then_resume(tmp_path):
    data = tmp_path / "data"
    write_folder(data, 2, 100, 40, 36, 70.0, "room")
    out = tmp_path / "run"
    rc = main(
        ["train", "--data", str(data), "--epochs", "1", "--out", str(out), "--seed", "4", *TINY]
    )
    assert rc == 0
    _, config, meta = load_checkpoint(out / "model.pt")
    assert meta["seed"] == 4 and meta["steps"] == 1
    assert meta["data"]["folders"] == [str(data)] and meta["data"]["synthetic"] is True
    assert (config.input_width, config.input_height) == (48, 48)
    assert meta["data"]["augment"]["name"] == "standard"
    rc = main(
        ["train", "--data", str(data), "--epochs", "2", "--out", str(out), "--resume", *TINY]
    )
    assert rc == 0
    assert load_checkpoint(out / "model.pt")[2]["steps"] == 2


def test_strong_augmentation_is_recorded_in_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--epochs", "1", "--out", str(out), "--augment", "strong", *TINY])
    assert rc == 0
    recorded = load_checkpoint(out / "model.pt")[2]["data"]["augment"]
    assert recorded["name"] == "strong" and recorded["rotate_deg"] > 0


def test_folder_only_training_needs_a_folder(tmp_path, capsys):
    rc = main(["train", "--no-synthetic", "--out", str(tmp_path / "x"), *TINY])
    assert rc == 1
    assert "--data" in capsys.readouterr().err
