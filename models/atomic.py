"""Output files written whole or not at all: a new temporary file beside the target (the same
folder, so the rename is atomic), renamed into place when it is complete and removed on any
failure or interrupt, so a reader sees the old file or the new one, never half of one.

It lives in models/, the lowest room, because every room writes its outputs this way and
each may import models/ (tests/test_layering.py); it imports nothing of the project.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_beside(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """A new empty file ``.NAME.RANDOM{suffix}`` in ``path``'s folder (hidden, and recognisable
    by its suffix to whoever cleans up). O_EXCL: a name nobody else holds; mode 0o666 so the
    umask applies as for a plain open. OSError when the folder cannot be written."""
    path = Path(path)
    # NAME cut to 200 bytes (whole characters) so the whole name stays under the usual
    # 255-byte limit: the limit counts bytes, and a character may take four
    name = path.name
    while len(os.fsencode(name)) > 200:
        name = name[:-1]
    tmp = path.with_name(f".{name}.{secrets.token_hex(8)}{suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """``with atomic_path(out) as tmp: write(tmp)``: ``tmp`` (made at once, so an unwritable
    folder is told before the work) is renamed onto ``out`` when the block ends; on an
    exception (KeyboardInterrupt included) it is removed and ``out`` is left as it was."""
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; a failed write's is removed


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = True, suffix: str = ".tmp") -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it;
    ``fsync``: on disk before the rename, so a crash leaves the old file or the new one.
    OSError when it cannot be written (nothing is left behind)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, suffix) as tmp, open(tmp, "wb") as f:
        f.write(raw)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return Path(path)
