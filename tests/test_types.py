"""`mypy` is clean: strict on models/ and the audio path, the rest of the rooms without
strictness (configuration in pyproject.toml, [tool.mypy])."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mypy() -> list[str]:
    exe = Path(sys.executable).with_name("mypy")
    if exe.exists():
        return [str(exe)]
    if shutil.which("mypy"):
        return ["mypy"]
    pytest.fail("mypy is not installed: pip install -e '.[test]' (make test does it)")


def test_mypy_is_clean():
    out = subprocess.run([*mypy()], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
