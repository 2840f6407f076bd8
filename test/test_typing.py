"""Static typing: mypy, strict, over the ROS-free layers (core ... reconstruction).

The packages and the strictness are set in setup.cfg ``[mypy]``, so a plain ``mypy`` in the
repository gives the same result as this test. Its cache lives in ``.mypy_cache`` (ignored by
git): a second run takes about a second instead of half a minute.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (make setup installs it)")

REPO = Path(__file__).resolve().parents[1]
MYPY_TIMEOUT_S = 600


def test_core_inference_and_models_type_check_strictly() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True, timeout=MYPY_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
