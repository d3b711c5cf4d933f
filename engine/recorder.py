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

Past takes are listed, exported, renamed and deleted by engine.takes.

Thread: ``start``/``stop``/``set_tempo`` from the owner (UI/main); ``add_event`` from any
thread; ``ring.write`` from the audio thread; everything else on the writer thread.
"""

from __future__ import annotations

import collections
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
from engine.wav import WavWriter
from models.atomic import write_atomic

WAV_NAME, MIDI_NAME, META_NAME = "mix.wav", "session.mid", "session.json"
# the pitch tracker takes an early note back within ~0.1 s of announcing it (8 hops to
# confirm, 3 to hear the voice stop); a note-on this young is not written to the file yet
TAKE_BACK_S = 0.5


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
        self._wav = wav = WavWriter(self.wav_path, self.sample_rate)
        self.meta.setdefault("started", datetime.now().isoformat(timespec="seconds"))
        self.meta["sample_rate"] = self.sample_rate
        self._write_meta(final=False)
        self._thread = threading.Thread(target=self._run, args=(wav,), name="liveband-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drain, write the final files. Safe to call twice."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None

    # -- writer thread ---------------------------------------------------------
    def _run(self, wav: WavWriter) -> None:
        chunk = np.zeros((self.sample_rate // 2, 2), dtype=np.float32)
        last_flush = last_midi = time.monotonic()
        while True:
            stopping = self._stop.wait(self.poll_s)
            try:
                self._drain_audio(chunk, wav)
                self._drain_events()
                now = time.monotonic()
                if stopping or now - last_flush >= self.flush_s:
                    wav.flush()
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
            wav.close()
        except OSError as exc:
            self.error = f"recording to {self.folder} failed: {exc}"

    def _drain_audio(self, chunk: np.ndarray, wav: WavWriter) -> None:
        while True:
            n = self.ring.read_into(chunk)
            if n == 0:
                break
            if self.start_sample is None:
                self.start_sample = self.ring.first_time
            wav.write(chunk[:n])

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
