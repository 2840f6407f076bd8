"""Malloc thresholds for MB messages: when they apply, and that glibc really keeps the buffers.

The behaviour tests run this file as a script in a fresh interpreter (malloc settings are per
process, and ``GLIBC_TUNABLES`` is read only at start-up), allocate and free a 640x480 xyzrgb
cloud's 4.9 MB as ``bytearray`` + ``bytes`` copies (two fresh buffers, as a message's data and
its copy) 20 times, and count minor page faults (``getrusage``). The expected figures come from
the page size, not from the code: a buffer that is mapped afresh faults in every one of its
``4.9 MB / 4096 = 1200`` pages each time; a reused heap buffer faults in none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import platform
import resource
import subprocess
import sys

import pytest

from recon3d_ros.ros import malloc_tuning
from recon3d_ros.ros.malloc_tuning import (
    apply_tunables,
    keep_large_buffers,
    tunables_for,
    TUNABLES,
    TUNABLES_ENV,
    user_tunes_malloc,
)

CLOUD_BYTES = 640 * 480 * 16
PAGES = CLOUD_BYTES // resource.getpagesize()
CYCLES = 20
glibc_only = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
    reason="glibc malloc only")


# ------------------------------------------------------------------------------ the rule
@glibc_only
def test_a_plain_environment_gets_the_thresholds() -> None:
    assert tunables_for({}) == TUNABLES
    assert TUNABLES == ("glibc.malloc.mmap_threshold=33554432:"
                        "glibc.malloc.trim_threshold=134217728")


@glibc_only
def test_other_tunables_of_the_user_are_kept() -> None:
    env = {TUNABLES_ENV: "glibc.pthread.rseq=0"}
    assert tunables_for(env) == f"glibc.pthread.rseq=0:{TUNABLES}"


@pytest.mark.parametrize("env", [
    {TUNABLES_ENV: "glibc.malloc.arena_max=2"},
    {TUNABLES_ENV: "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=131072"},
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"MALLOC_TRIM_THRESHOLD_": "0"},
])
def test_malloc_settings_of_the_users_own_win(env: dict[str, str]) -> None:
    assert user_tunes_malloc(env)
    assert tunables_for(env) is None
    assert keep_large_buffers(env) is False
    copy = dict(env)
    assert apply_tunables(copy) is None and copy == env


def test_not_requested_sets_nothing() -> None:
    env: dict[str, str] = {}
    assert apply_tunables(env, requested=False) is None and env == {}


def test_off_glibc_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc_tuning.platform, "libc_ver", lambda: ("musl", ""))
    assert tunables_for({}) is None
    assert keep_large_buffers({}) is False


# ------------------------------------------------------------------------------ behaviour
def _faults_per_cycle(how: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), how],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != TUNABLES_ENV and not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


@glibc_only
def test_stock_glibc_maps_every_cloud_buffer_afresh() -> None:
    # The premise of the module: without the thresholds each buffer is faulted in again.
    stock = _faults_per_cycle("stock", _plain_env())
    assert stock["faults"] >= 1.5 * PAGES, stock  # two buffers per cycle, most pages each


@glibc_only
def test_keep_large_buffers_reuses_them() -> None:
    tuned = _faults_per_cycle("mallopt", _plain_env())
    assert tuned["applied"] is True
    assert tuned["faults"] < 0.05 * PAGES, tuned


@glibc_only
def test_the_tunables_string_is_one_glibc_understands() -> None:
    # glibc ignores a misspelt tunable silently; only the effect shows that it was read.
    env = _plain_env()
    assert apply_tunables(env) == TUNABLES
    tuned = _faults_per_cycle("stock", env)
    assert tuned["faults"] < 0.05 * PAGES, tuned


def _child(how: str) -> None:
    applied = keep_large_buffers() if how == "mallopt" else None

    def cycle() -> None:
        a = bytearray(CLOUD_BYTES)  # zero-filled: every page touched
        b = bytes(a)
        del a, b

    cycle()  # the first use of the heap faults in any case
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(CYCLES):
        cycle()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print(json.dumps({"applied": applied, "faults": (after - before) / CYCLES}))


if __name__ == "__main__":
    _child(sys.argv[1])
