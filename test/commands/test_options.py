"""The model options: one declaration, choices from the registries, in every command."""

from __future__ import annotations

import argparse
import importlib

import pytest

from recon3d_ros.cli import COMMANDS
from recon3d_ros.inference.devices import BACKEND_PRECISIONS, PRECISIONS
from recon3d_ros.inference.engine import BACKENDS
from recon3d_ros.inference.presets import PRESETS

# command -> the shared options it takes
TAKES = {
    "bench": {"--model", "--preset", "--backend", "--device", "--precision"},
    "eval": {"--model", "--preset", "--backend", "--device", "--precision"},
    "demo": {"--model", "--preset", "--backend", "--device"},
    "models": {"--preset", "--backend", "--device", "--image-size"},
    "export": {"model", "--preset", "--precision", "--image-size"},
    "train": {"--device", "--input-size", "--crop"},
    "reconstruct": {"--model", "--preset", "--backend", "--device", "--precision"},
    "bag": {"--model", "--preset", "--backend", "--device", "--precision"},
}


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"recon3d {command}")
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    return parser


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    found = {}
    for action in parser._actions:
        for name in action.option_strings or [action.dest]:
            found[name] = action
    return found


@pytest.mark.parametrize("command", sorted(TAKES))
def test_each_command_declares_the_options_with_registry_choices(command: str) -> None:
    actions = _actions(_parser(command))
    assert TAKES[command] <= set(actions)
    if "--backend" in TAKES[command]:
        assert tuple(actions["--backend"].choices) == ("auto", "torch", "onnxruntime", "tensorrt")
        assert set(actions["--backend"].choices) == {"auto", *BACKENDS}
    if "--preset" in TAKES[command]:
        assert set(actions["--preset"].choices) == set(PRESETS)
        assert actions["--preset"].default == ""
    if "--precision" in TAKES[command]:
        expected = BACKEND_PRECISIONS["tensorrt"] if command == "export" else PRECISIONS
        assert tuple(actions["--precision"].choices) == tuple(expected)


def test_values_are_checked_when_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _parser("bench")
    args = bench.parse_args(["--backend", "onnxruntime", "--device", "cuda:1", "--precision",
                             "bf16", "--preset", "midas_v21_small"])
    assert (args.backend, args.device, args.precision, args.preset) == (
        "onnxruntime", "cuda:1", "bf16", "midas_v21_small"
    )
    defaults = bench.parse_args([])
    assert (defaults.model, defaults.backend, defaults.device, defaults.precision) == (
        "default", "auto", "auto", "fp32"
    )
    for bad in (["--backend", "onnx"], ["--device", "gpu0"], ["--precision", "fp8"],
                ["--preset", "no_such_preset"]):
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(bad)
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser("export").parse_args(["--precision", "bf16"])  # TensorRT builds no bf16


def test_sizes_parse_to_width_and_height(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parser("models").parse_args([]).image_size == (640, 480)
    assert _parser("export").parse_args(["--image-size", "96x64"]).image_size == (96, 64)
    train = _parser("train").parse_args(["--input-size", "320X240"])
    assert train.input_size == (320, 240) and train.crop == (192, 144)
    for bad, says in (
        (["--input-size", "16x16"], "at least 32x32"),
        (["--crop", "wide"], "640x480"),
    ):
        with pytest.raises(SystemExit):
            _parser("train").parse_args(bad)
        err = capsys.readouterr().err
        assert bad[0] in err and says in err
