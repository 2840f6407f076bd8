"""The command-line options shared by the commands that run a depth network, declared once.

``--backend``, ``--precision`` and ``--preset`` take their choices from the registries that the
loader checks against (:data:`~recon3d_ros.inference.engine.BACKENDS`,
:data:`~recon3d_ros.inference.devices.PRECISIONS`,
:data:`~recon3d_ros.inference.presets.PRESETS`), so a new backend or preset shows up in every
command, and a typo is refused before a model is loaded.
"""

from __future__ import annotations

import argparse
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
