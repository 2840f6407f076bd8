"""Model files: the user cache folder and file checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recon3d_ros.inference.model_files import file_sha256, user_cache_dir


def test_file_hash_tracks_content(tmp_path):
    a = tmp_path / "a.onnx"
    a.write_bytes(b"x" * 3_000_000)
    first = file_sha256(a)
    a.write_bytes(b"x" * 2_999_999 + b"y")
    assert file_sha256(a) != first and len(first) == 64
    assert file_sha256(a, chunk=4096) == hashlib.sha256(a.read_bytes()).hexdigest()


def test_user_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir("engines") == tmp_path / "recon3d" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_dir("models") == Path.home() / ".cache" / "recon3d" / "models"
