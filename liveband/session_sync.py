"""Whose tempo the band plays to (engine.sync): its own, the MIDI input's clock (whose
start/stop start and stop the band) or Ableton Link; and the band clock that joins a
sync source on a bar line.

The MIDI input's clock is always listened to (``clock_in.feed`` is the input's realtime
handler) and followed only in "midi clock" mode. Its start/stop arrive on rtmidi's thread
and are handed to the control thread, which calls the session's play/stop as the UI would.
With Link, the other apps' play/stop arrive the same way (Link's start/stop sync), and the
band's own play/stop go to them (``band_started``/``band_stopped``).
Thread: UI (under the session lock); ``source``/``synced_clock``: the caller's."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from engine.clock import Clock, beat_steps
from engine.errors import first_line
from engine.sync import SYNC_MODES, BeatLock, MidiClockIn, start_point
from liveband.config import SYNC_DELAY_MS_RANGE, TEMPO_RANGE, EngineConfig
from liveband.midilearn import ControlThread
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_types import SessionError
from models.tokens import bar_steps

if TYPE_CHECKING:
    from engine.sync import LinkSync

START_LEAD_S = 0.25  # the first (count-in) step starts this far after play()
NO_CLOCK_INPUT = "MIDI clock sync: no MIDI input open; choose the device that sends the clock in the settings"


def bar_quarters(meter: str) -> float:
    return bar_steps(meter) / 4.0


class TempoSync:
    def __init__(
        self,
        lock: threading.RLock,
        notices: Notices,
        control: ControlThread,
        audio: SessionAudio,
        transport: Callable[[str], None],
    ) -> None:
        """``transport(kind)``: "start"/"stop"/"continue" of a followed MIDI clock, or
        "link start"/"link stop" of the Link session, run on the control thread."""
        self._lock = lock
        self._notices = notices
        self._control = control
        self._audio = audio
        self._transport = transport
        self.mode = "internal"
        self.clock_in = MidiClockIn(on_transport=self._clock_transport)
        self.link: LinkSync | None = None
        self.beat_lock: BeatLock | None = None  # the playing band's, when it follows a source
        self._first_beat_at: float | None = None  # when the synced band's first beat sounds

    def set_mode(self, mode: str, tempo: float, meter: str, midi_input_open: bool) -> None:
        """SessionError when Link cannot start; ValueError for an unknown mode."""
        if mode not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {mode!r}")
        with self._lock:
            if mode == "link" and self.link is None:
                from engine.sync import LinkSync

                try:
                    self.link = LinkSync(tempo, bar_quarters(meter), on_transport=self._link_transport)
                except Exception as exc:
                    raise SessionError(f"Ableton Link unavailable: {first_line(exc)}") from None
            elif mode != "link" and self.link is not None:
                link, self.link = self.link, None
                link.close()
            if self.beat_lock is not None:
                self.beat_lock.enabled = False  # the band keeps its tempo until the next play
            self.mode = mode
            self._notices.problem("sync", NO_CLOCK_INPUT if mode == "midi clock" and not midi_input_open else None)

    def input_opened(self) -> None:
        if self.mode == "midi clock":
            self._notices.problem("sync", None)

    def set_delay(self, ms: float) -> None:
        v = float(ms)
        lo, hi = SYNC_DELAY_MS_RANGE
        if not lo <= v <= hi:
            raise ValueError(f"MIDI clock delay must be {lo:g}-{hi:g} ms, got {ms}")
        self.clock_in.delay_s = v / 1000.0

    def set_tempo(self, bpm: float) -> None:
        if self.link is not None:
            self.link.set_tempo(bpm)  # to every peer; the band follows Link

    def source(self):
        """The followed source (MidiClockIn or LinkSync), or None when playing on its own."""
        return {"midi clock": self.clock_in, "link": self.link}.get(self.mode)

    def synced_clock(self, cfg: EngineConfig, sample_rate: int) -> tuple[Clock | None, BeatLock | None]:
        """A band clock whose step 0 sits on a bar line of the sync source and whose first
        beat is the first one the band can make; (None, None) when playing on its own."""
        self._first_beat_at = None
        src = self.source()
        if src is None:
            return None, None
        quarters = bar_quarters(cfg.meter)
        if self.link is not None:
            self.link.set_quantum(quarters)
        joined = start_point(src, quarters, beat_steps(cfg.meter), time.monotonic() + START_LEAD_S)
        if joined is None:
            self._notices.happened(f"no {self.mode} tempo yet: the band plays at its own tempo")
            return None, None
        offset, first = joined
        bpm = min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], float(src.tempo)))
        at = self._audio.sample_at
        self._first_beat_at = src.time_at(first / 4 + offset)
        clock = Clock(sample_rate, bpm, cfg.meter, 0, start_sample=at(self._first_beat_at), first_step=first)
        return clock, BeatLock(src, clock, at, offset)

    def _clock_transport(self, kind: str) -> None:
        """MIDI start/stop/continue. Thread: rtmidi's (only hands it on)."""
        if self.mode == "midi clock":
            self._control.submit(lambda: self._transport(kind))

    def _link_transport(self, kind: str) -> None:
        """A Link peer's play/stop ("start"/"stop"). Thread: the Link loop (hands it on)."""
        if self.mode == "link":
            self._control.submit(lambda: self._transport(f"link {kind}"))

    def link_wants(self, kind: str) -> bool:
        """Whether a "link start"/"link stop" handed on is still the Link session's state
        (Link reports the band's own changes too; one undone since is dropped)."""
        link = self.link
        return self.mode == "link" and link is not None and link.playing == (kind == "link start")

    def band_started(self) -> None:
        """The band plays: start the Link session's transport where its first beat sounds
        (unless a peer's start is what started it)."""
        link = self.link
        if self.mode == "link" and link is not None and not link.playing:
            link.set_playing(True, at=self._first_beat_at)

    def band_stopped(self) -> None:
        # whatever Link says now: a start just sent may not show in its state yet
        link = self.link
        if self.mode == "link" and link is not None:
            link.set_playing(False)

    def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            link.close()
