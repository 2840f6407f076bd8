"""The command-line options shared by the commands that run a depth network, declared once.

``--backend``, ``--precision`` and ``--preset`` take their choices from the registries that the
loader checks against (:data:`~recon3d_ros.inference.engine.BACKENDS`,
:data:`~recon3d_ros.inference.devices.PRECISIONS`,
:data:`~recon3d_ros.inference.presets.PRESETS`), so a new backend or preset shows up in every
command, and a typo is refused before a model is loaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol, Sequence

from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.devices import PRECISIONS, resolve_device
from recon3d_ros.inference.engine import BACKENDS
from recon3d_ros.inference.presets import PRESETS

__all__ = [
    "BACKEND_CHOICES",
    "add_backend_option",
    "add_device_option",
    "add_model_option",
    "add_model_options",
    "add_node_param_options",
    "node_values",
    "add_precision_option",
    "add_preset_option",
    "add_size_option",
    "device_type",
    "size_type",
]

#: ``auto`` picks the backend from the model file's suffix.
BACKEND_CHOICES = ("auto", *BACKENDS)


class ArgumentAdder(Protocol):
    """An ``ArgumentParser`` or one of its argument groups."""

    def add_argument(self, *name_or_flags: str, **kwargs: Any) -> argparse.Action: ...


def device_type(text: str) -> str:
    """Check a ``--device`` value's form (auto, cpu, cuda, cuda:N) without probing for a GPU."""
    try:
        resolve_device(text, cuda_is_available=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def size_type(minimum: int = 1) -> Any:
    """Make an argparse ``type``: ``WIDTHxHEIGHT`` to ``(width, height)``, each >= minimum."""

    def parse(text: str) -> tuple[int, int]:
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected WIDTHxHEIGHT such as 640x480, got {text!r}"
            ) from None
        if width < minimum or height < minimum:
            raise argparse.ArgumentTypeError(
                f"size must be at least {minimum}x{minimum}, got {text!r}"
            )
        return width, height

    parse.__name__ = "WIDTHxHEIGHT"  # what argparse names in "invalid WIDTHxHEIGHT value"
    return parse


def add_model_option(
    parser: ArgumentAdder, *, positional: bool = False, help_text: str = ""
) -> None:
    """Add ``--model`` (or a positional ``model``): a preset name or a model file."""
    text = help_text or "preset name (recon3d models) or model file (default: %(default)s)"
    if positional:
        parser.add_argument("model", nargs="?", default="default", help=text)
    else:
        parser.add_argument("--model", default="default", help=text)


def add_preset_option(
    parser: ArgumentAdder,
    help_text: str = "preset whose pre/post-processing describes the --model file "
    "(recon3d models)",
) -> None:
    """Add ``--preset``: one of :data:`PRESETS` (default ``""``: none)."""
    parser.add_argument(
        "--preset", default="", choices=tuple(PRESETS), metavar="PRESET", help=help_text
    )


def add_backend_option(parser: ArgumentAdder) -> None:
    """Add ``--backend``: ``auto`` or one of :data:`BACKENDS`."""
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        help="inference backend; auto picks it from the model file (default: %(default)s)",
    )


def add_device_option(
    parser: ArgumentAdder, default: str = "auto", help_text: str = ""
) -> None:
    """Add ``--device``: auto, cpu, cuda or cuda:N."""
    parser.add_argument(
        "--device",
        default=default,
        type=device_type,
        help=help_text or "auto, cpu, cuda or cuda:N (default: %(default)s)",
    )


def add_precision_option(
    parser: ArgumentAdder,
    default: str = "fp32",
    choices: Sequence[str] = PRECISIONS,
    help_text: str = "compute precision, as far as the backend supports it",
) -> None:
    """Add ``--precision``: one of ``choices`` (default: all of :data:`PRECISIONS`)."""
    parser.add_argument(
        "--precision",
        default=default,
        choices=tuple(choices),
        help=f"{help_text} (default: %(default)s)",
    )


def add_size_option(
    parser: ArgumentAdder, flag: str, default: str, help_text: str, minimum: int = 1
) -> None:
    """Add a ``WIDTHxHEIGHT`` option such as ``--image-size 640x480``, parsed to ``(w, h)``."""
    parser.add_argument(
        flag,
        type=size_type(minimum),
        default=default,
        metavar="WxH",
        help=f"{help_text} (default: %(default)s)",
    )


def add_model_options(parser: ArgumentAdder, precision: bool = True) -> None:
    """Add ``--model --preset --backend --device [--precision]``: what loads an engine."""
    add_model_option(parser)
    add_preset_option(parser)
    add_backend_option(parser)
    add_device_option(parser)
    if precision:
        add_precision_option(parser)


#: The model options' defaults: only values that differ from these count as given.
_MODEL_DEFAULTS = {
    "model": "default", "preset": "", "backend": "auto", "device": "auto", "precision": "fp32"
}


def add_node_param_options(parser: ArgumentAdder, what: str = "") -> None:
    """Add ``--params-file`` and ``-p NAME:=VALUE``: depth node parameters, as ``ros2 run``.

    Commands that run the node's frame path offline (bench, bag, reconstruct) take the node's
    own parameters this way, so they run what a node with the same parameters runs.
    """
    suffix = f" {what}" if what else ""
    parser.add_argument(
        "--params-file", type=Path, default=None,
        help=f"the depth node's parameter YAML{suffix} (e.g. config/recon3d.yaml)",
    )
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
        help=f"a depth node parameter{suffix}, as with ros2 run (repeatable; wins over the "
        "params file). Unset parameters take the node's defaults",
    )


def _params_file_values(path: Path) -> dict[str, Any]:
    """``ros__parameters`` of the depth node's section of a ROS 2 params YAML."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"params file {path} must map node names to 'ros__parameters'")
    sections = {
        str(name): body["ros__parameters"] for name, body in data.items()
        if isinstance(body, dict) and isinstance(body.get("ros__parameters"), dict)
    }
    for name in sorted(sections, key=lambda n: (not n.endswith("depth_node"), n)):
        if name.endswith("depth_node") or name == "/**":
            return dict(sections[name])
    raise ConfigError(
        f"params file {path} has no '/**/depth_node:' (or '/**:') section with "
        "'ros__parameters:'; see config/recon3d.yaml"
    )


def node_values(args: argparse.Namespace) -> dict[str, Any]:
    """Return the node parameter values a run stands for (file < model options < ``-p``).

    Model options count only where they differ from their defaults, so ``-p model:=...`` or a
    params file's model is not overridden by an option the user never gave.
    """
    import yaml

    values: dict[str, Any] = {}
    if getattr(args, "params_file", None) is not None:
        values.update(_params_file_values(args.params_file))
    for name, default in _MODEL_DEFAULTS.items():
        value = getattr(args, name, default)
        if value != default:
            values[name] = str(value)
    for item in args.param:
        name, sep, text = item.partition(":=")
        if not sep or not name.strip():
            raise ConfigError(f"-p takes NAME:=VALUE (as ros2 run does), got {item!r}")
        values[name.strip()] = yaml.safe_load(text)  # ROS reads -p values as YAML too
    return values
