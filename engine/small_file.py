"""Reading the small text files a user or a folder hands LiveBand (a chord chart, a
take's session.json, a preset): only a regular file, and only up to a cap, so a name
that points at /dev/zero, a FIFO or a huge file is one error line, never a hang or a
process that fills memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# a preset or a chart is a few KB; a file far larger is not one
SMALL_FILE_MAX = 256 * 1024


def read_small_text(path: str | os.PathLike[str], limit: int = SMALL_FILE_MAX, follow_links: bool = True) -> str:
    """The UTF-8 text of ``path``. ValueError (a short reason, without the path) for a
    link when not ``follow_links``, a FIFO, device or folder, a file over ``limit`` bytes
    or one that is not UTF-8; OSError when it cannot be opened or read."""
    path = Path(path)
    if not follow_links and path.is_symlink():
        raise ValueError("a link; not read")
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("not a plain file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)  # never more than the cap, however large the file
    if len(data) > limit:
        raise ValueError(f"over {limit // 1024} KB, too large to be one")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
