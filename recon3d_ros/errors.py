"""Exceptions raised by recon3d_ros.

Every error derives from :class:`Recon3dError` so callers (the node, the CLI)
can catch the package's own failures without swallowing programming errors.
Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class Recon3dError(Exception):
    """Base class of every error this package raises on purpose."""


class CameraModelError(Recon3dError, ValueError):
    """Camera intrinsics are missing, degenerate or inconsistent with an image."""


class EncodingError(Recon3dError, ValueError):
    """An image buffer cannot be interpreted with its declared encoding/size/step."""


class ConfigError(Recon3dError, ValueError):
    """A model config, preset or parameter value is invalid."""


class ModelLoadError(Recon3dError):
    """A model file is missing, unreadable or not what its backend expected."""


class BackendUnavailableError(Recon3dError, ImportError):
    """An inference backend's runtime library is not installed here."""


class InferenceError(Recon3dError, RuntimeError):
    """Running the network failed for one frame."""


class DatasetError(Recon3dError, ValueError):
    """An RGB-D data folder is missing files or has an unreadable layout."""


class ReconstructionError(Recon3dError, ValueError):
    """A map, pose or frame given to 3D reconstruction is invalid, or a saved map is unreadable."""


class FrameRejected(Recon3dError):
    """One input frame cannot be used; a node logs ``cause`` for ``topic`` and drops it."""

    def __init__(self, topic: str, cause: str, detail: str) -> None:
        super().__init__(f"{topic}: {cause}: {detail}")
        self.topic, self.cause, self.detail = topic, cause, detail
