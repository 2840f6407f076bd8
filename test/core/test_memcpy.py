"""The memcpy floor: argument checks and a usable figure (no speed target: see benchmarks/)."""

from __future__ import annotations

import math

import pytest

from recon3d_ros.core.memcpy import memcpy_ms
from recon3d_ros.errors import ConfigError


def test_memcpy_ms_gives_a_positive_median() -> None:
    ms = memcpy_ms(1 << 20, repeat=3)
    assert math.isfinite(ms) and ms > 0.0


@pytest.mark.parametrize("nbytes, repeat", [(-1, 3), (1024, 0)])
def test_memcpy_ms_rejects_bad_arguments(nbytes: int, repeat: int) -> None:
    with pytest.raises(ConfigError, match="nbytes >= 0 and repeat >= 1"):
        memcpy_ms(nbytes, repeat=repeat)
