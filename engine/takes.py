"""Past takes in the sessions folder (one folder per take, written by engine.recorder):
listed, exported, renamed and deleted (``list_sessions``, ``export_session``,
``rename_session``, ``delete_session``). A name is one plain folder name inside the
sessions folder, never a path; nothing is overwritten, and an export is all or nothing.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np

from engine.recorder import META_NAME, MIDI_NAME, WAV_NAME
from engine.small_file import read_small_text
from engine.wav import repair_wav


# -- browsing past sessions ------------------------------------------------------
class SessionError(ValueError):
    """A session that cannot be exported (or a sessions folder that cannot be read);
    the message is one line naming the file."""


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, links followed, stays inside ``root`` (already resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a link loop
        return False


def _read_meta(path: Path) -> dict:
    """session.json checked field by field; ValueError naming what is wrong (a link, a
    FIFO or device, a file too large to be one are not read: listing must not hang)."""
    try:
        meta = json.loads(read_small_text(path, follow_links=False))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be session metadata") from None
    if not isinstance(meta, dict):
        raise ValueError(f"holds {type(meta).__name__ if meta is not None else 'null'}, not an object")
    types: dict[str, type | tuple[type, ...]] = {
        "started": str,
        "style": str,
        "complete": bool,
        "seconds": (int, float),
        "tempo": (int, float),
        "meter": str,
        "key": str,
        "input": str,
    }
    for key, kind in types.items():
        v = meta.get(key)
        if v is None:
            continue
        bad = not isinstance(v, kind) or (kind is not bool and isinstance(v, bool))
        if not bad and kind == (int, float):
            bad = not np.isfinite(v) or v < 0
        if bad:
            raise ValueError(f'"{key}": {json.dumps(v)[:40]} is not a valid value')
    return meta


def list_sessions(root: str | os.PathLike) -> list[dict]:
    """Every session folder under ``root``, newest first: name, path, started, seconds,
    complete, lost_seconds (audio the take lost, kept in time as silence), tempo, style,
    files, problem. ``problem`` is None, or one line saying why
    the folder's metadata could not be used (a malformed session.json, a folder linked
    outside ``root``); such a session is listed with empty metadata, never hiding the
    others. SessionError when ``root`` itself cannot be read."""
    root = Path(root)
    rows: list[dict] = []
    if not root.is_dir():
        return rows
    real_root = root.resolve()
    try:
        entries = sorted(root.iterdir(), reverse=True)
    except OSError as exc:
        raise SessionError(f"cannot read the sessions folder {root}: {exc.strerror or exc}") from None
    for folder in entries:
        row = {
            "name": folder.name,
            "path": str(folder),
            "started": "",
            "seconds": 0.0,
            "complete": False,
            "lost_seconds": 0.0,
            "tempo": None,
            "style": "",
            "meter": "",
            "key": "",
            "input": "",
            "files": [],
            "problem": None,
        }
        try:
            if not folder.is_dir():
                continue
            if not _inside(folder, real_root):
                row["problem"] = f"{folder} links outside the sessions folder; not read"
                rows.append(row)
                continue
            row["files"] = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".tmp"))
            if not row["files"]:
                continue
            meta = _read_meta(folder / META_NAME)
        except OSError as exc:
            row["problem"] = f"cannot read {folder}: {exc.strerror or exc}"
            rows.append(row)
            continue
        except ValueError as exc:
            row["problem"] = f"{folder / META_NAME}: {exc}"
            rows.append(row)
            continue
        row.update(
            started=meta.get("started", ""),
            seconds=float(meta.get("seconds", 0.0)),
            complete=bool(meta.get("complete", False)),
            lost_seconds=_lost_seconds(meta),
            tempo=meta.get("tempo"),
            style=meta.get("style", ""),
            meter=meta.get("meter", ""),
            key=meta.get("key", ""),
            input=meta.get("input", ""),
        )
        rows.append(row)
    return rows


def _lost_seconds(meta: dict) -> float:
    """The take's lost audio from its metadata (0 when it does not say, or says nonsense)."""
    frames, rate = meta.get("dropped_audio_frames", 0), meta.get("sample_rate", 0)
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (frames, rate))
    if not ok or not 0 < rate < 1e7 or not 0 < frames < 1e13:
        return 0.0
    return round(float(frames) / float(rate), 1)


def _place(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` unless ``target`` exists (a hard link fails on an existing
    name, so a file that appeared meanwhile is not overwritten either)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK):
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        # no hard links here (FAT, some network shares): check, then rename
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def export_session(root: str | os.PathLike, name: str, dest: str | os.PathLike) -> list[str]:
    """Copy a session's WAV, MIDI and metadata into ``dest`` (created) as NAME-mix.wav ...,
    repairing a WAV header left behind by a crash. Returns the written paths.

    All or nothing: FileNotFoundError naming the session when it does not exist;
    SessionError (one line) for a file or folder linked outside ``root``, an existing
    target (never overwritten) or a failed write, with nothing left in ``dest``. Each file
    is copied to a temporary file in ``dest`` and renamed into place."""
    import shutil
    import tempfile

    root = Path(root)
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise FileNotFoundError(f"no recorded session named {shown!r} in {root}")
    src = root / name
    try:
        if not src.is_dir():
            raise FileNotFoundError(f"no recorded session named {shown!r} in {root}")
        real_root = root.resolve()
        if not _inside(src, real_root):
            raise SessionError(f"refusing to export {src}: it links outside the sessions folder {root}")
        sources = []
        for fname in (WAV_NAME, MIDI_NAME, META_NAME):
            p = src / fname
            if not os.path.lexists(p):
                continue
            if not _inside(p, real_root):
                raise SessionError(f"refusing to export {p}: it links outside the sessions folder {root}")
            if p.is_file():
                sources.append((p, Path(dest) / f"{name}-{fname}"))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not exc.filename:
            raise
        raise SessionError(f"cannot read session {shown!r} in {root}: {exc.strerror or exc}") from None
    if not sources:
        raise FileNotFoundError(f"session {name!r} holds no recording")
    dest = Path(dest)
    written: list[Path] = []
    target = dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for p, target in sources:
            if os.path.lexists(target):
                raise FileExistsError(target)
        for p, target in sources:
            fd, tmp_name = tempfile.mkstemp(prefix=".liveband-export-", suffix=".tmp", dir=dest)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, open(p, "rb") as f:
                    shutil.copyfileobj(f, out)
                if p.name == WAV_NAME:
                    repair_wav(tmp, shown=p)  # the take's file, not the copy, is the one to look at
                _place(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(target)
    except BaseException as exc:
        for w in written:  # all or nothing: no half export left behind
            w.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise SessionError(f"{target} already exists; not overwritten (export somewhere else)") from None
        if isinstance(exc, OSError):
            where = exc.filename if exc.filename and not str(exc.filename).endswith(".tmp") else target
            raise SessionError(f"cannot export to {where}: {exc.strerror or exc}") from None
        if isinstance(exc, ValueError):  # repair_wav: not a LiveBand WAV
            raise SessionError(str(exc)) from None
        raise
    return [str(w) for w in written]


# -- renaming and deleting takes -----------------------------------------------------
# the files a take holds (and the writers' temporaries); a folder with anything else
# in it is not LiveBand's to delete
_TAKE_FILES = (WAV_NAME, MIDI_NAME, META_NAME)
NAME_MAX = 100


def check_session_name(name: str, root: str | os.PathLike) -> str:
    """``name`` if it is one plain folder name (no path, not hidden, printable, at most
    100 characters); SessionError in one line otherwise."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    if (
        not name
        or name != name.strip()
        or name in (".", "..")
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or len(name) > NAME_MAX
        or not name.isprintable()
    ):
        raise SessionError(
            f"{shown!r} is not a session name: use letters, digits, spaces, - or _ "
            f"(one folder in {root}, at most {NAME_MAX} characters)"
        )
    return name


def _take_folder(root: Path, name: str) -> Path:
    """The existing take folder ``root/name``, inside ``root`` with links followed."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise FileNotFoundError(f"no recorded session named {shown!r} in {root}")
    folder = root / name
    if folder.is_symlink() or (folder.exists() and not _inside(folder, root.resolve())):
        raise SessionError(f"refusing to touch {folder}: it links outside the sessions folder {root}")
    if not folder.is_dir():
        raise FileNotFoundError(f"no recorded session named {shown!r} in {root}")
    return folder


def rename_session(root: str | os.PathLike, old: str, new: str) -> Path:
    """Rename take ``old`` to ``new`` in ``root``; returns the new folder. FileNotFoundError
    when ``old`` does not exist, SessionError for a name that is not one plain folder
    name, or a ``new`` that exists (never overwritten)."""
    root = Path(root)
    folder = _take_folder(root, old)
    check_session_name(new, root)
    target = root / new
    if os.path.lexists(target):
        raise SessionError(f"a session named {new!r} already exists in {root}; choose another name")
    try:
        # renameat2(RENAME_NOREPLACE) is not in os; a hard link cannot name a folder: the
        # check above plus rename (which would replace only an empty folder)
        os.rename(folder, target)
    except OSError as exc:
        raise SessionError(f"cannot rename {folder} to {new!r}: {exc.strerror or exc}") from None
    return target


def delete_session(root: str | os.PathLike, name: str) -> None:
    """Delete take ``name`` (its folder and files). FileNotFoundError when it does not
    exist; SessionError for a name that escapes ``root``, a folder that holds files
    LiveBand did not write (left as it is), or a failed removal."""
    root = Path(root)
    folder = _take_folder(root, name)
    try:
        entries = list(folder.iterdir())
        strange = [
            p.name
            for p in entries
            if p.is_symlink() or not p.is_file() or not (p.name in _TAKE_FILES or p.name.endswith(".tmp"))
        ]
        if strange:
            raise SessionError(
                f"{folder} holds files LiveBand did not write ({', '.join(sorted(strange)[:3])}); not deleted"
            )
        for p in entries:
            p.unlink()
        folder.rmdir()
    except OSError as exc:
        raise SessionError(f"cannot delete {folder}: {exc.strerror or exc}") from None
