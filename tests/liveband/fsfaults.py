"""Real file-system faults for tests: a folder nobody may write into and a full disk.

Root ignores permission bits, so as root both are small tmpfs mounts (read-only, or
filled to the last byte); a test is skipped where neither can be made."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _mount_tmpfs(path: Path, options: str) -> None:
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for this test: {proc.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


@contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """``path`` (created, empty) as a folder this process cannot create files in."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    _mount_tmpfs(path, "ro,size=64k")
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def full_disk(path: Path) -> Iterator[Path]:
    """``path`` as a folder on a file system with no free byte left (root only)."""
    if os.geteuid() != 0:
        pytest.skip("a full file system needs a tmpfs mount (root)")
    path.mkdir(parents=True, exist_ok=True)
    _mount_tmpfs(path, "size=64k")
    try:
        filler = path / ".filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield path
    finally:
        _umount(path)
