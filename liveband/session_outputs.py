"""Where applied events go after the audio callback: the take's recorder and the MIDI
output (each band part on its channel, released at the pace it was heard), with MIDI
clock and start/stop when asked.

One thread, the *dispatcher*, does it every 2 ms: it pops the mixer's event log, hands
the events on, and keeps the audio stream's DAC line fresh. ``settle`` lets another
thread wait, on a condition, until the dispatcher has handed on what the audio applied
up to a few blocks from now (a take closing after the band's all-off). Thread: the
dispatcher; ``open``/``send_program``/``band_*``/``settle``: any."""

from __future__ import annotations

import collections
import threading
from typing import Callable

import numpy as np

from engine import parts as P
from engine.clock import Clock
from engine.events import ALL_OFF, EVENT_DTYPE, PROGRAM, EventQueue
from engine.midi_io import MidiOutput
from engine.mixer import Mixer
from engine.recorder import Recorder
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_types import VIRTUAL_OUT_NAME

PERIOD_S = 0.002
ERROR_PAUSE_S = 0.1  # after an error: not a busy loop of the same error


class Outputs:
    def __init__(
        self,
        mixer: Mixer,
        audio: SessionAudio,
        notices: Notices,
        recorder: Callable[[], Recorder | None],
        band_clock: Callable[[], Clock | None],
    ) -> None:
        """``recorder()``: the take recording now; ``band_clock()``: the playing band's
        clock (None when stopped)."""
        self._mixer = mixer
        self._audio = audio
        self._notices = notices
        self._recorder = recorder
        self._band_clock = band_clock
        self.log = EventQueue(1 << 15)  # producer: audio (applied events)
        mixer.set_event_log(self.log)
        self.midi_out: MidiOutput | None = None
        self._send_lock = threading.Lock()  # a port is closed only between sends
        self.midi_clock = False
        self._clock_tick = 0
        self._clock_started = False
        self._pending_ctl: collections.deque = collections.deque()  # (kind, ch, d1, d2) for MIDI out
        self._pending_raw: collections.deque = collections.deque()  # 'start'/'stop'
        self._passed = threading.Condition()
        self._passes = 0  # dispatcher passes completed
        self._passed_blocks = 0  # mixer.blocks read at the start of the last completed pass
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="liveband-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- MIDI out (Thread: UI) -----------------------------------------------------------
    def open(self, name: str | None, virtual: bool, programs: dict[int, int]) -> None:
        """Send the band to a MIDI port (virtual by default, "LiveBand band"), first the
        ``programs`` (channel -> GM program) so the receiver plays the right sounds;
        None and not virtual: none."""
        with self._send_lock:
            old, self.midi_out = self.midi_out, None
        if old is not None:
            old.close()
        if name is None and not virtual:
            return
        self.midi_out = MidiOutput(VIRTUAL_OUT_NAME if name is None else name, virtual=virtual)
        for ch, prog in programs.items():  # after the port: a pass without one drops what waits
            self._pending_ctl.append((PROGRAM, ch, prog, 0))

    def send_program(self, channel: int, program: int) -> None:
        self._pending_ctl.append((PROGRAM, channel, program, 0))

    def band_started(self) -> None:
        self._clock_tick = 0
        self._clock_started = False

    def band_stopped(self) -> None:
        """MIDI stop (with clock on) and all notes off on the band's channels."""
        if self.midi_out is None:
            return
        if self.midi_clock:
            self._pending_raw.append("stop")
        for part in P.BAND_PARTS:
            self._pending_ctl.append((ALL_OFF, part.channel, 0, 0))

    def settle(self, blocks: int = 2, timeout: float = 0.5) -> bool:
        """Wait until a dispatcher pass that began after this call has handed on what the
        audio applied in the next ``blocks`` blocks (only the pass without a stream
        playing). False when ``timeout`` ran out (a stalled stream) or no dispatcher runs."""
        if not self._thread.is_alive():
            return False
        live = self._audio.active
        want_blocks = self._mixer.blocks + blocks
        with self._passed:
            want = self._passes + 2  # the pass under way may have begun before this call
            return self._passed.wait_for(
                lambda: (
                    self._stop.is_set()
                    or (
                        self._passes >= want
                        and (not live or not self._audio.active or self._passed_blocks >= want_blocks)
                    )
                ),
                timeout,
            )

    def close(self) -> None:
        self._stop.set()
        with self._passed:
            self._passed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        out, self.midi_out = self.midi_out, None
        if out is not None:
            out.close()

    # -- the dispatcher ------------------------------------------------------------------
    def _loop(self) -> None:
        buf = np.zeros(2048, EVENT_DTYPE)
        band_channels = {p.channel for p in P.BAND_PARTS}
        held: collections.deque = collections.deque()
        while not self._stop.wait(PERIOD_S):
            blocks = self._mixer.blocks  # before the pop: every event logged by then is in it
            try:
                self._pass(buf, band_channels, held)
            except Exception as exc:  # keep dispatching; say what happened
                self._notices.happened(f"MIDI/recording dispatch error: {exc}")
                self._stop.wait(ERROR_PAUSE_S)
            with self._passed:
                self._passes += 1
                self._passed_blocks = blocks
                self._passed.notify_all()

    def _pass(self, buf: np.ndarray, band_channels: set[int], held: collections.deque) -> None:
        # the DAC line, kept fresh here so a player's stamp never computes it
        self._audio.out.refresh_line()
        n = self.log.pop_until(1 << 62, buf)
        rec = self._recorder()
        out = self.midi_out
        for i in range(n):
            t, kind, ch, d1, d2 = (
                int(buf[i]["time"]),
                int(buf[i]["kind"]),
                int(buf[i]["channel"]),
                int(buf[i]["data1"]),
                int(buf[i]["data2"]),
            )
            if rec is not None:
                rec.add_event(t, kind, ch, d1, d2)
            if out is not None and ch in band_channels:
                held.append((t, kind, ch, d1, d2))
        if out is None:
            held.clear()
            self._pending_ctl.clear()
            self._pending_raw.clear()
            return
        with self._send_lock:
            if self.midi_out is not out:  # closed meanwhile
                return
            while self._pending_raw:
                out.send_raw(self._pending_raw.popleft())
            while self._pending_ctl:
                out.send_event(*self._pending_ctl.popleft())
            now_sample = self._audio.now()
            while held and held[0][0] <= now_sample:
                out.send_event(*held.popleft()[1:])
            clock = self._band_clock()
            if self.midi_clock and clock is not None:
                self._send_midi_clock(out, clock, now_sample)

    def _send_midi_clock(self, out: MidiOutput, clock: Clock, now_sample: int) -> None:
        if now_sample < clock.step_time(0):
            return
        if not self._clock_started:
            out.send_raw("start")
            self._clock_started = True
        while True:
            t = clock.beat_to_sample(self._clock_tick / 24.0)
            if t > now_sample:
                break
            out.send_raw("clock")
            self._clock_tick += 1
