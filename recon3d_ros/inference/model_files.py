"""Where this package keeps files for the user, and whether a model file is intact.

``$XDG_CACHE_HOME/recon3d/`` (``~/.cache/recon3d/``) holds downloaded preset files
(``models/``) and built TensorRT engines (``engines/``); a file's sha256 is what sidecars,
exports and the engine cache record of it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["user_cache_dir", "file_sha256"]


def user_cache_dir(name: str) -> Path:
    """Return ``$XDG_CACHE_HOME/recon3d/<name>`` (``~/.cache/recon3d/<name>``); not created."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "recon3d" / name


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes (``sha256sum``), read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
