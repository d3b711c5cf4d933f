"""The one cache of files LiveBand derives and keeps between runs (ONNX exports).

Everything lives under ``$LIVEBAND_CACHE`` (default ``~/.cache/liveband``), one folder per
kind: ``onnx`` for the accompaniment model's step graph, ``pitch`` for the pitch trackers,
``corpus`` for the encoded training corpus (models.data.corpus, which checks its own file).
The cache is the user's to write, so nothing read from the ONNX exports is trusted:

- a file is written under a temporary name in its own folder and renamed into place,
  with a ``.sha256`` sidecar of its bytes; a failed export removes its temporary file;
- a cached file whose bytes do not match its sidecar (truncated, edited, bit-rotted, left
  by an older LiveBand) or that the opener refuses is exported again, with one log line;
- temporary files left by a killed process are swept at the next export.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from models.atomic import atomic_path

log = logging.getLogger(__name__)

T = TypeVar("T")
STALE_TMP_S = 600.0  # an export takes seconds; an older temporary file is a crash's leftover


def cache_root() -> Path:
    base = os.environ.get("LIVEBAND_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "liveband"


def cache_dir(kind: str) -> Path:
    return cache_root() / kind


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path) -> bool:
    """Whether ``path`` exists and its bytes match its sidecar."""
    try:
        return _sidecar(path).read_text().strip() == _digest(path)
    except OSError:
        return False


def _sweep_stale(folder: Path) -> None:
    now = time.time()
    for p in folder.glob("*.tmp"):
        try:
            if now - p.stat().st_mtime > STALE_TMP_S:
                p.unlink()
        except OSError:
            pass


def write_cached(path: Path, export: Callable[[Path], None]) -> Path:
    """``export(tmp)`` writes the file; on success it is renamed to ``path`` with its
    sidecar. On any failure (including KeyboardInterrupt) no temporary file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(path.parent)
    # the sidecar is renamed first; a reader between the two renames sees a mismatch and exports again
    with atomic_path(path) as tmp, atomic_path(_sidecar(path)) as side:
        export(tmp)
        side.write_text(_digest(tmp) + "\n")
    return path


def open_cached(path: Path, export: Callable[[Path], None], open_: Callable[[Path], T]) -> T:
    """``open_(path)`` on a verified cached file, else on a fresh export.

    A cached file that fails its checksum or that ``open_`` refuses is exported again. A
    fresh export that ``open_`` refuses raises RuntimeError (one line naming the file).
    """
    if verified(path):
        try:
            return open_(path)
        except Exception as exc:  # onnxruntime's errors are plain Exceptions
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            log.warning("cached %s cannot be opened (%s); exporting it again", path, reason)
    elif path.exists():
        log.warning("cached %s does not match its checksum; exporting it again", path)
    write_cached(path, export)
    try:
        return open_(path)
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"{path}: a fresh export cannot be opened ({reason})") from None
