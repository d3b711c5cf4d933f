"""Recorded takes: one per play/stop (or from the moment recording is turned on while
playing) into the sessions folder, and the folder's takes listed, exported, renamed and
deleted. A take gets the mixer's audio through the tap and the applied events from the
dispatcher (liveband.session_outputs). Thread: UI (and the control thread acting for it)."""

from __future__ import annotations

import threading
from typing import Callable

from engine import parts as P
from engine.events import NOTE_OFF, NOTE_ON, PROGRAM
from engine.gm import instrument_name
from engine.mixer import Mixer
from engine.recorder import Recorder, new_session_folder
from engine.takes import delete_session, export_session, list_sessions, rename_session
from liveband.paths import sessions_dir
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_types import SessionError


def track_names(programs: dict[str, int]) -> dict[int, str]:
    """A take's MIDI track names by channel: the part and the instrument it plays
    (``programs``: part -> GM program), as the render's MIDI names them
    ("Bass (Fingered Bass)"; the melody plain "Melody"; drums their kit)."""
    names = {}
    for p in P.ALL_PARTS:
        prog = programs.get(p.name, p.program)
        drums = p.channel == P.DRUMS.channel
        names[p.channel] = (
            "Melody" if p is P.MELODY else f"{p.name.capitalize()} ({instrument_name(prog if not drums else 0, drums)})"
        )
    return names


class TakeRecorder(Recorder):
    """A take's recorder that knows which notes sound in it, so that a stop ends them in
    its MIDI: the band's all-off (engine.mixer ``all_notes_off``) silences the synth, not
    the file, and a key still held when the take stops has no note-off yet."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._notes_lock = threading.Lock()
        # (channel, pitch) -> the samples of its note-ons not ended yet, oldest first
        self._sounding: dict[tuple[int, int], list[int]] = {}

    def add_event(self, sample: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> None:
        """As the recorder's, counting the notes that sound. Thread: any."""
        with self._notes_lock:
            if kind == NOTE_ON and data2 > 0:
                self._sounding.setdefault((int(channel), int(data1)), []).append(int(sample))
            elif kind in (NOTE_ON, NOTE_OFF):
                ons = self._sounding.get((int(channel), int(data1)))
                if ons:
                    ons.pop(0)
            super().add_event(sample, kind, channel, data1, data2)

    def end_notes(self, stop: int, end: int) -> None:
        """A note-off for every note sounding: at ``stop`` (the band's all-off), or for
        one that began at or after it (a key struck as stop was pressed, which goes on
        sounding) at ``end``, the take's last sample. Thread: the owner, once nothing
        else adds events."""
        with self._notes_lock:
            sounding, self._sounding = self._sounding, {}
            for (ch, pitch), ons in sorted(sounding.items()):
                for on in ons:
                    off = stop if on < stop else max(end, on + 1)
                    super().add_event(off, NOTE_OFF, ch, pitch, 0)


class Takes:
    def __init__(
        self, mixer: Mixer, audio: SessionAudio, notices: Notices, sample_rate: int, settle: Callable[[int], object]
    ) -> None:
        """``settle(blocks)`` returns once the dispatcher has handed on what the audio
        applies in the next ``blocks`` blocks (liveband.session_outputs)."""
        self._mixer = mixer
        self._audio = audio
        self._notices = notices
        self._sample_rate = sample_rate
        self._settle = settle
        self.enabled = True
        self.recorder: TakeRecorder | None = None
        # stopped takes whose writing still fails (a full disk): they finish once there is
        # room, and are abandoned (the rest of their audio put elsewhere) at close
        self._finishing: list[Recorder] = []
        self._finishing_lock = threading.Lock()

    def start(
        self, meta: dict, tempo: float, tempo_sample: int | None, programs: dict[str, int], playing: dict[str, int]
    ) -> None:
        """A new take (``meta`` kept with it; ``programs``: each part's GM program, set at
        its start so the MIDI file plays with the right sounds; ``playing``: the programs
        the band plays now, the style's among them, for the track names)."""
        if not self._audio.active:  # nothing renders without a stream: the take would be empty
            self._notices.problem(
                "recording",
                "not recording: no audio output is playing (choose an output in the Setup tab, then press Play again)",
            )
            return
        try:
            rec = TakeRecorder(
                new_session_folder(sessions_dir()), self._sample_rate, meta=meta, track_names=track_names(playing)
            )
            rec.set_tempo(self._mixer.clock if tempo_sample is None else tempo_sample, tempo)
            rec.start()
        except OSError as exc:
            self._notices.problem("recording", f"cannot record into {sessions_dir()}: {exc}")
            return
        self._notices.problem("recording", None)
        self.recorder = rec
        t0 = self._mixer.clock
        for part in P.ALL_PARTS:
            if part.channel != P.DRUMS.channel:
                rec.add_event(t0, PROGRAM, part.channel, programs.get(part.name, part.program), 0)
        self._mixer.set_tap(rec.ring)

    def stop(self, key: str = "") -> None:
        """Finalise the take in progress (``key``: the key heard by its end); every note
        still sounding in it ends where it stopped."""
        rec = self.recorder
        if rec is None:
            self._mixer.set_tap(None)
            return
        stop = self._mixer.clock  # the band's all-off sounds from the next block
        self._settle(2)  # a block rendered after the band's all-off, and its events, reach it
        self.recorder = None
        self._mixer.set_tap(None)
        end = self._mixer.clock
        self._settle(1)  # the block and the dispatcher pass under way finish with it
        rec.end_notes(stop, end)
        if key:
            rec.set_meta("key", key)
        if rec.stop():
            self._report(rec)
            self._notices.confirm(f"take saved: {rec.folder.name} (Sessions tab)")
            return
        # still failing: told under the take's own topic until it is saved (the current
        # take's "recording" problem would outlive it, no take checking it any more)
        self._notices.problem("recording", None)
        with self._finishing_lock:
            self._finishing.append(rec)
        self._check_finishing()

    def check(self) -> None:
        """A failing take's error among the notices; a stopped take that could not be
        written is saved when there is room. Thread: housekeeper."""
        rec = self.recorder
        if rec is not None:
            self._report(rec)
        self._check_finishing()

    def _check_finishing(self) -> None:
        with self._finishing_lock:
            finishing = list(self._finishing)
        for rec in finishing:
            topic = f"saving {rec.folder.name}"
            if rec.finished:
                with self._finishing_lock:
                    self._finishing.remove(rec)
                self._notices.problem(topic, None)
                self._notices.confirm(f"take saved: {rec.folder.name} (Sessions tab)")
            elif rec.error is not None:
                self._notices.problem(
                    topic, f"take {rec.folder.name} is not saved yet ({rec.error}): free some space and it will be"
                )
            for report in rec.pop_reports():
                self._notices.happened(report)

    def close(self) -> list[str]:
        """The app closes: a stopped take still waiting for room puts the rest of its
        audio on another file system (engine.recorder.spill_dirs) -> what to tell the
        player (where it went), who may see no notice any more. Thread: the owner, after
        ``stop``."""
        with self._finishing_lock:
            finishing, self._finishing = self._finishing, []
        told = []
        for rec in finishing:
            rec.abandon()
            self._notices.problem(f"saving {rec.folder.name}", None)
            told += rec.pop_reports()
        return told

    def _report(self, rec: Recorder) -> None:
        """The take's failure while it lasts (gone once writing works again), and what it
        cost (audio lost) as a happening."""
        self._notices.problem("recording", rec.error)
        for report in rec.pop_reports():
            self._notices.happened(report)

    # -- the sessions folder ---------------------------------------------------------------
    @staticmethod
    def list_all() -> list[dict]:
        return list_sessions(sessions_dir())

    @staticmethod
    def export(name: str, dest: str) -> list[str]:
        return export_session(sessions_dir(), name, dest)

    def rename(self, old: str, new: str) -> str:
        self._refuse_current(old)
        return rename_session(sessions_dir(), old, new).name

    def delete(self, name: str) -> None:
        self._refuse_current(name)
        delete_session(sessions_dir(), name)

    def _refuse_current(self, name: str) -> None:
        rec = self.recorder
        if rec is not None and rec.folder.name == name:
            raise SessionError(f"{name} is being recorded; stop first")
