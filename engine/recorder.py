"""Session recording that survives a crash: a WAV of the mix and a MIDI file of the melody
and the band's parts, written incrementally into one folder per session.

- Audio: the mixer's tap writes each finished block into an ``AudioRing`` (lock-free,
  never blocks the callback); a writer thread drains it every ``poll_s`` into
  ``mix.wav`` and, at least every ``flush_s`` (default 1 s), patches the WAV header to
  the current length and fsyncs. A crash loses at most that second; a header that lags
  the data (a crash between append and patch) is repaired by ``repair_wav`` (both
  engine.wav).
- MIDI: applied events (sample time, kind, channel, data) arrive through ``add_event``
  (a deque: append is atomic, any thread). Every ``midi_every_s`` the writer rewrites
  ``session.mid`` from the whole event log into a temporary file and renames it over
  the old one, so the file on disk is always complete (engine.midi_export.MidiTakeWriter).
  A note whose note-off comes at its own note-on's sample was taken back (the pitch
  tracker's early note, replaced or withdrawn: engine.pitch.segmenter): both are left
  out of the take. So that a note-on is not already in the file when its take-back
  comes, the writer holds back events from a note-on younger than ``TAKE_BACK_S``.
- ``session.json`` holds the metadata (sample rate, tempo, meter, key, input, style,
  start time, duration so far), rewritten the same way.

Past takes can be listed, exported, renamed and deleted (``list_sessions``,
``export_session``, ``rename_session``, ``delete_session``); a name is one plain folder
name inside the sessions folder, never a path.

Thread: ``start``/``stop``/``set_tempo`` from the owner (UI/main); ``add_event`` from any
thread; ``ring.write`` from the audio thread; everything else on the writer thread.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from engine.events import NOTE_OFF, NOTE_ON
from engine.midi_export import MidiTakeWriter, TempoMark
from engine.parts import MELODY as PLAYER
from engine.ring import AudioRing
from engine.wav import WavWriter, repair_wav

WAV_NAME, MIDI_NAME, META_NAME = "mix.wav", "session.mid", "session.json"
# the pitch tracker takes an early note back within ~0.1 s of announcing it (8 hops to
# confirm, 3 to hear the voice stop); a note-on this young is not written to the file yet
TAKE_BACK_S = 0.5


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def new_session_folder(root: str | os.PathLike) -> Path:
    """root/YYYYmmdd-HHMMSS (with -2, -3... if that second is taken)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = root / base
    n = 2
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            folder = root / f"{base}-{n}"
            n += 1


# -- the recorder -----------------------------------------------------------------
class Recorder:
    """One recorded session in ``folder``. Feed audio through ``ring`` (give it to
    ``Mixer.set_tap``) and events through ``add_event``."""

    def __init__(
        self,
        folder: str | os.PathLike,
        sample_rate: int,
        *,
        meta: dict | None = None,
        track_names: dict[int, str] | None = None,
        ring_seconds: float = 8.0,
        poll_s: float = 0.2,
        flush_s: float = 1.0,
        midi_every_s: float = 2.0,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sample_rate = int(sample_rate)
        self.ring = AudioRing(int(ring_seconds * sample_rate))
        self.meta = dict(meta or {})
        self.track_names = dict(track_names or {})
        self.poll_s, self.flush_s, self.midi_every_s = poll_s, flush_s, midi_every_s
        self._inbox: collections.deque = collections.deque()
        self._events: list[tuple[int, int, int, int, int]] = []
        self._tempi: list[TempoMark] = []
        self._meter = self.meta.get("meter", "4/4")
        self._midi = MidiTakeWriter(self.sample_rate, self._meter, self.track_names)
        self._encoded = 0  # events of _events the MIDI writer has encoded
        # (channel, pitch) -> [index in _events, arrival (monotonic)] of a sounding note-on
        self._open: dict[tuple[int, int], list] = {}
        self._wav: WavWriter | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._midi_dirty = False
        self.error: str | None = None  # the writer's last failure, for the UI
        self.start_sample: int | None = None

    @property
    def wav_path(self) -> Path:
        return self.folder / WAV_NAME

    @property
    def midi_path(self) -> Path:
        return self.folder / MIDI_NAME

    def add_event(self, sample: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> None:
        """Log one event at its audio-clock sample. Thread: any."""
        self._inbox.append((int(sample), int(kind), int(channel), int(data1), int(data2)))

    def set_tempo(self, sample: int, bpm: float) -> None:
        """Tempo from audio-clock ``sample`` on (for the MIDI file's tempo map). Thread: any."""
        self._inbox.append(("tempo", int(sample), float(bpm)))

    def set_meta(self, key: str, value: str | int | float | bool | None) -> None:
        """A metadata field for session.json (e.g. the key heard by the end of the take),
        applied by the writer thread, which alone touches ``meta`` once started. Thread: any."""
        self._inbox.append(("meta", str(key), value))

    def start(self) -> None:
        self._wav = WavWriter(self.wav_path, self.sample_rate)
        self.meta.setdefault("started", datetime.now().isoformat(timespec="seconds"))
        self.meta["sample_rate"] = self.sample_rate
        self._write_meta(final=False)
        self._thread = threading.Thread(target=self._run, name="liveband-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drain, write the final files. Safe to call twice."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None

    # -- writer thread ---------------------------------------------------------
    def _run(self) -> None:
        chunk = np.zeros((self.sample_rate // 2, 2), dtype=np.float32)
        last_flush = last_midi = time.monotonic()
        while True:
            stopping = self._stop.wait(self.poll_s)
            try:
                self._drain_audio(chunk)
                self._drain_events()
                now = time.monotonic()
                if stopping or now - last_flush >= self.flush_s:
                    self._wav.flush()
                    self._write_meta(final=stopping)
                    last_flush = now
                if self._midi_dirty and (stopping or now - last_midi >= self.midi_every_s):
                    self._write_midi(final=stopping)
                    last_midi = now
            except OSError as exc:  # disk full, folder removed: say so, keep the audio path alive
                self.error = f"recording to {self.folder} failed: {exc}"
            if stopping:
                break
        try:
            self._wav.close()
        except OSError as exc:
            self.error = f"recording to {self.folder} failed: {exc}"

    def _drain_audio(self, chunk: np.ndarray) -> None:
        while True:
            n = self.ring.read_into(chunk)
            if n == 0:
                break
            if self.start_sample is None:
                self.start_sample = self.ring.first_time
            self._wav.write(chunk[:n])

    def _drain_events(self) -> None:
        while self._inbox:
            item = self._inbox.popleft()
            if item[0] == "tempo":
                self._tempi.append(TempoMark(item[1], item[2]))
                self._tempi.sort(key=lambda m: m.sample)
            elif item[0] == "meta":
                self.meta[item[1]] = item[2]
                continue
            elif not self._taken_back(item):
                self._events.append(item)
            self._midi_dirty = True

    def _taken_back(self, ev: tuple[int, int, int, int, int]) -> bool:
        """Track the player's sounding notes; True (and the note-on removed) when ``ev``
        is a note-off at its note-on's own sample: a taken-back note, which no one heard.
        Only the player's part has take-backs (the pitch tracker's): in the band's keys
        one voice may start a pitch at the very sample another voice of the same channel
        ends it, which is two real notes."""
        sample, kind, ch, pitch, vel = ev
        if ch != PLAYER.channel or kind not in (NOTE_ON, NOTE_OFF):
            return False
        key = (ch, pitch)
        if kind == NOTE_ON and vel > 0:
            self._open[key] = [len(self._events), time.monotonic()]
            return False
        opened = self._open.pop(key, None)
        if opened is None or self._events[opened[0]][0] != sample:
            return False
        i = opened[0]
        del self._events[i]
        for o in self._open.values():
            if o[0] > i:
                o[0] -= 1
        if i < self._encoded:
            # already in the file (a take-back later than TAKE_BACK_S): encode it anew
            self._midi = MidiTakeWriter(self.sample_rate, self._meter, self.track_names)
            self._encoded = 0
        return True

    def _origin(self) -> int:
        if self.start_sample is not None:
            return self.start_sample
        if self._events:
            return min(e[0] for e in self._events)
        return 0

    def _write_midi(self, final: bool = False) -> None:
        n = len(self._events)
        if not final:
            young = time.monotonic() - TAKE_BACK_S
            n = min([n] + [i for i, at in self._open.values() if at > young])
        self._midi.write(self.midi_path, self._events[:n], self._origin(), self._tempi)
        self._encoded = n
        self._midi_dirty = n < len(self._events)

    def _write_meta(self, final: bool) -> None:
        frames = self._wav.frames if self._wav else 0
        self.meta.update(
            seconds=round(frames / self.sample_rate, 3),
            complete=final,
            events=len(self._events),
            dropped_audio_frames=self.ring.dropped_frames,
            start_sample=self.start_sample,
        )
        if self._tempi:
            self.meta["tempo"] = self._tempi[0].bpm
        _write_json(self.folder / META_NAME, self.meta)


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
    """session.json checked field by field; ValueError naming what is wrong."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"holds {type(meta).__name__ if meta is not None else 'null'}, not an object")
    types = {
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
    complete, tempo, style, files, problem. ``problem`` is None, or one line saying why
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
            tempo=meta.get("tempo"),
            style=meta.get("style", ""),
            meter=meta.get("meter", ""),
            key=meta.get("key", ""),
            input=meta.get("input", ""),
        )
        rows.append(row)
    return rows


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
                    repair_wav(tmp)
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
