"""Session recording that survives a crash: a WAV of the mix and a MIDI file of the melody
and the band's parts, written incrementally into one folder per session.

- Audio: the mixer's tap writes each finished block into an ``AudioRing`` (lock-free,
  never blocks the callback); a writer thread drains it every ``poll_s`` into
  ``mix.wav`` and, at least every ``flush_s`` (default 1 s), patches the WAV header to
  the current length and fsyncs. A crash loses at most that second; a header that lags
  the data (a crash between append and patch) is repaired by ``repair_wav`` (both
  engine.wav). The WAV stays in time with the MIDI file whatever the disk does: a block
  that cannot be written (a full disk) is kept and written again once there is room
  (the ring holds ``ring_seconds`` meanwhile), and frames the ring had to refuse become
  as much silence at their place, counted in session.json's ``dropped_audio_frames``.
  ``error`` says what fails while it fails; ``pop_reports`` what was lost. A stop while
  writing fails does not give up the take: ``stop`` returns with ``finished`` False and
  the writer goes on trying until there is room; ``abandon`` (the app closing) writes
  what is still unwritten to a WAV on another file system (``spill_dirs``) and says where.
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

Past takes are listed, exported, renamed and deleted by engine.takes.

Thread: ``start``/``stop``/``set_tempo`` from the owner (UI/main); ``add_event`` from any
thread; ``ring.write`` from the audio thread; everything else on the writer thread.
"""

from __future__ import annotations

import collections
import io
import json
import os
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from engine.events import NOTE_OFF, NOTE_ON
from engine.midi_export import MidiTakeWriter, TempoMark
from engine.parts import MELODY as PLAYER
from engine.ring import AudioRing
from engine.wav import HEADER_BYTES, WavWriter
from models.atomic import write_atomic

WAV_NAME, MIDI_NAME, META_NAME = "mix.wav", "session.mid", "session.json"
# the pitch tracker takes an early note back within ~0.1 s of announcing it (8 hops to
# confirm, 3 to hear the voice stop); a note-on this young is not written to the file yet
TAKE_BACK_S = 0.5


def spill_dirs() -> list[Path]:
    """Where a take's unwritten audio goes when its own disk stays full: the user's
    runtime folder (a RAM file system on most desktops), then the temporary folder."""
    dirs = [Path(d) for d in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir()) if d]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d not in dirs[:i]]


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


class _TakeWav(WavWriter):
    """The take's WAV, whose appends land whole or not at all: what a failed write left
    (a partial block on disk, bytes Python still buffers) is cut off again, so the same
    frames can be appended once there is room and everything before them stays as it was."""

    def __init__(self, path: str | os.PathLike, sample_rate: int) -> None:
        super().__init__(path, sample_rate)
        self._finished = False

    def write(self, frames: np.ndarray) -> None:
        kept = self.frames
        try:
            self._reopen()
            super().write(frames)
            self._f.flush()  # to the OS now, so that a failure is this block's, not a later one's
        except OSError:
            self.frames = kept
            try:
                self._f.close()  # discards the buffer, even when its flush fails again
            except OSError:
                pass
            try:
                self._reopen()
            except OSError:
                pass  # the folder is gone: the next write tries again and says why
            raise

    def _reopen(self) -> None:
        """After a failed write: the file again, cut to the frames written."""
        if not self._f.closed:
            return
        end = HEADER_BYTES + self.frames * self.channels * self.bits // 8
        f: io.BufferedWriter = io.BufferedWriter(io.FileIO(self.path, "r+"))
        f.truncate(end)
        f.seek(end)
        self._f = f

    def flush(self) -> None:
        self._reopen()
        super().flush()

    def close(self) -> None:
        if not self._finished:
            self._reopen()
            super().close()
            self._finished = True


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
        self._tried_final = threading.Event()  # the writer has made its final pass once
        self._abandon = threading.Event()
        self._spill_to: list[Path] = []
        self.spilled: Path | None = None  # where abandon put the unwritten audio
        self._midi_dirty = False
        # the writer's audio: a chunk read from the ring whose first _held frames are not
        # written yet, frames read from the ring so far, the ring's refused frames already
        # given a gap, and the gaps still to write as silence: [ring position, frames]
        self._chunk = np.zeros((self.sample_rate // 2, 2), dtype=np.float32)
        self._silence = np.zeros_like(self._chunk)
        self._held = 0
        self._read = 0
        self._gapped = 0
        self._gaps: collections.deque[list[int]] = collections.deque()
        self._lost = 0  # frames of silence written since the last note
        self._failing: dict[str, str] = {}  # writing step -> its failure, until it works again
        self._why_lost = ""
        self._reports: collections.deque[str] = collections.deque()
        self.error: str | None = None  # what fails now (None once writing works again), for the UI
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

    def pop_reports(self) -> list[str]:
        """What happened to the take since the last call (audio lost, in the past tense),
        for the UI. Thread: any."""
        reports = []
        while True:
            try:
                reports.append(self._reports.popleft())
            except IndexError:
                return reports

    def start(self) -> None:
        self._wav = wav = _TakeWav(self.wav_path, self.sample_rate)
        self.meta.setdefault("started", datetime.now().isoformat(timespec="seconds"))
        self.meta["sample_rate"] = self.sample_rate
        self._write_meta(final=False)
        self._thread = threading.Thread(target=self._run, args=(wav,), name="liveband-recorder", daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = 30.0) -> bool:
        """Drain, write the final files -> ``finished``. While writing fails (a full
        disk) this returns after the first final pass, and the writer goes on trying
        until it works (``error`` says why meanwhile) or ``abandon``. Safe to call twice."""
        t = self._thread
        if t is None:
            return True
        self._stop.set()
        deadline = time.monotonic() + wait_s
        while t.is_alive() and not self._tried_final.is_set() and time.monotonic() < deadline:
            t.join(timeout=0.05)
        t.join(timeout=0.05 if self._failing else max(0.0, deadline - time.monotonic()))
        return self.finished

    @property
    def finished(self) -> bool:
        """Started, stopped and every file written (or abandoned). Thread: any."""
        return self._thread is not None and self._stop.is_set() and not self._thread.is_alive()

    def abandon(self, spill_to: list[Path] | None = None, wait_s: float = 10.0) -> Path | None:
        """Stop waiting for room: the audio not yet written goes to a WAV in the first of
        ``spill_to`` (default ``spill_dirs()``) that takes it -> its path (also
        ``spilled``), or None when there was nothing left to write or nowhere took it
        (``pop_reports`` says which). Thread: the owner, after ``stop``."""
        self._spill_to = list(spill_dirs() if spill_to is None else spill_to)
        self._abandon.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=wait_s)
        return self.spilled

    # -- writer thread ---------------------------------------------------------
    def _run(self, wav: WavWriter) -> None:
        last_flush = last_midi = time.monotonic()
        while True:
            stopping = self._stop.wait(self.poll_s)
            self._attempt("audio", self._drain_audio, wav)
            self._drain_events()
            now = time.monotonic()
            if (stopping or now - last_flush >= self.flush_s) and self._attempt("files", self._flush, wav, stopping):
                last_flush = now
            if self._midi_dirty and (stopping or now - last_midi >= self.midi_every_s):
                if self._attempt("midi", self._write_midi, stopping):
                    last_midi = now
            if stopping:
                self._tried_final.set()
                if not self._failing or self._abandon.is_set():
                    break
                # a stop while writing fails: the take is finished once there is room
                self._abandon.wait(self.poll_s)
        self._attempt("files", wav.close)
        if self._abandon.is_set() and self._unwritten():
            self._spill()

    def _unwritten(self) -> bool:
        return bool(self._held or self._gaps or self.ring.available() or self.ring.dropped_frames > self._gapped)

    def _spill(self) -> None:
        """The audio still unwritten, in order and with its silences, into a WAV of its
        own on another file system (written as .part, then renamed)."""
        written = self._wav.frames if self._wav else 0
        at = f"{written / self.sample_rate:.1f} s"
        for folder in self._spill_to:
            if not folder.is_dir():
                continue
            path = folder / f"liveband-{self.folder.name}-from-{int(written)}.wav"
            part = path.with_name(path.name + ".part")
            try:
                tail = WavWriter(part, self.sample_rate)
                self._drain_audio(tail)
                tail.close()
                part.replace(path)
            except OSError:
                part.unlink(missing_ok=True)
                continue
            self.spilled = path
            self._reports.append(
                f"the disk stayed full: the take's audio from {at} on ({tail.frames / self.sample_rate:.1f} s) "
                f"is in {path}, not in its {WAV_NAME}"
            )
            return
        self._reports.append(f"the disk stayed full: the take's audio from {at} on was lost (nowhere to write it)")

    def _attempt(self, step: str, write: Callable[..., None], *args: object) -> bool:
        """One writing step; its OSError (disk full, folder removed) is ``error`` until
        the same step works again, and never reaches the audio path."""
        try:
            write(*args)
        except OSError as exc:
            self._failing[step] = f"recording to {self.folder} failed: {exc}"
            if step == "audio":
                self._why_lost = f" while writing failed ({exc})"
        else:
            self._failing.pop(step, None)
        self.error = next(iter(self._failing.values()), None)
        return step not in self._failing

    def _flush(self, wav: WavWriter, final: bool) -> None:
        wav.flush()
        self._write_meta(final=final)

    def _drain_audio(self, wav: WavWriter) -> None:
        """Ring to WAV, in order: the frames held from a failed write, the silence owed
        for refused frames at their ring position, then new frames."""
        ring, chunk = self.ring, self._chunk
        while True:
            if self._held:
                wav.write(chunk[: self._held])
                self._held = 0
            while self._gaps and self._gaps[0][0] == self._read:
                gap = self._gaps[0]
                n = min(gap[1], len(self._silence))
                wav.write(self._silence[:n])
                gap[1] -= n
                self._lost += n
                if not gap[1]:
                    self._gaps.popleft()
            if self._lost and not self._gaps:
                self._note_lost()
            dropped = ring.dropped_frames
            if dropped > self._gapped:
                # the ring refuses whole blocks, and (blocks being of one size) none fits
                # after a refusal until it is read from: the refused frames belong where
                # its writing stands now (exact after a stall; a block or so off when it
                # overflows while this thread is reading)
                self._gaps.append([self._read + ring.available(), dropped - self._gapped])
                self._gapped = dropped
                continue
            if self.start_sample is None and ring.first_time >= 0:
                self.start_sample = ring.first_time
            room = len(chunk) if not self._gaps else min(len(chunk), self._gaps[0][0] - self._read)
            n = ring.read_into(chunk[:room])
            if n == 0:
                self._why_lost = ""  # all written: a later loss has its own reason
                break
            self._read += n
            self._held = n

    def _note_lost(self) -> None:
        seconds = self._lost / self.sample_rate
        why = self._why_lost or " (the recorder fell behind)"
        self._reports.append(
            f"the take lost {seconds:.1f} s of audio{why}; silence keeps the rest in time with its MIDI"
        )
        self._lost = 0
        self._why_lost = ""

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
        # no fsync, as the MIDI file's: rewritten again within a second while recording
        write_atomic(self.folder / META_NAME, json.dumps(self.meta, indent=2), fsync=False)
