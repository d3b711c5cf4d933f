"""Playing in time with other gear: MIDI clock in, Ableton Link, and the lock that steers
the band's clock onto theirs.

A *source* says where the other gear's beat is, in quarter notes on the monotonic clock:
``tempo`` (BPM or None while unknown), ``time_at(position)`` (when the source reaches a
quarter-note position) and ``position_at(t)``.

- ``MidiClockIn``: fed the MIDI input's real-time messages (clock 0xF8 at 24 per quarter,
  start, stop, continue, song position). A least-squares line through the arrival times
  of the last 2 beats of ticks gives the tempo and where each beat falls (one tick's
  arrival jitters by a JACK period or a GIL wait; the line through 48 of them does not).
  A tick is never early, but a stall holds several back and then delivers them at once:
  those are left out, judged against the line so far (not against a line they have
  already bent), so a burst of late ticks does not move the beat. A tick lost on the way
  (JACK drops a period's MIDI when its server misses a cycle) is counted in once the ticks
  after it stay a whole period late at the usual spacing. Song position 0 is the
  first tick after a start. A tempo jump restarts the line after three ticks each
  further off it on the same side, so the band follows within a beat, not two.
- ``LinkSync``: joins an Ableton Link session through ``aalink`` (its own asyncio loop
  on a helper thread); tempo changes go both ways; Link's timeline is linear between
  tempo changes, so one (time, beat, tempo) reading answers any position. With Link's
  start/stop sync on, a peer's play/stop reaches ``on_transport`` and ``set_playing``
  tells every peer when LiveBand starts (the time its first beat sounds) or stops.
- ``BeatLock``: the band's ``Clock`` keeps its exact-integer tempo map; at every beat the
  generator is about to commit, the lock sets that beat's tempo so that the next beat
  lands on the sample where the source will be (a phase-locked loop with the beat as
  its step): errors over ``big_error_s`` (4 ms: a start, a jump, audio time lost) at
  once, smaller ones 40 % per beat, so the lines' wobble is not played. A beat's
  tempo stays within ``max_change`` of the source's, so a jump is caught up over a few
  beats, never by a lurch. A band more than half a bar off (an audio dropout or a
  frozen process holds everything scheduled back by its length) is re-locked: it
  joins the source's bars that many whole bars later (or earlier), so only the rest,
  under half a bar, is caught up, instead of rushing 25 % for many bars.

Threads: ``MidiClockIn.feed`` runs on the MIDI callback thread; ``BeatLock.on_step`` on
the generator worker (its ``step_observer``), which is then the only writer of the
clock's tempo; the readers on any thread (the fit is one tuple replaced at once).
"""

from __future__ import annotations

import collections
import datetime
import math
import threading
import time
from typing import Callable

import numpy as np

from engine.clock import MAX_BPM, MIN_BPM, Clock

TICKS_PER_QUARTER = 24
SYNC_MODES = ("internal", "midi clock", "link")


class MidiClockIn:
    """Tempo, beat position and transport of an external MIDI clock.

    ``on_transport(kind)`` gets "start", "stop" and "continue" on the MIDI thread: it
    must only hand them on (the session queues them for its control thread)."""

    LATE_S = 0.003
    SLIP_TICKS = 4  # ticks a whole period late in a row that mean one was lost

    def __init__(
        self,
        on_transport: Callable[[str], None] | None = None,
        window: int = 48,
        min_ticks: int = 6,
        dropout_s: float = 0.5,
        stale_s: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_transport = on_transport
        self.stale_s = stale_s
        self._now = now
        # how late the clock arrives (a DAW's "MIDI clock sync delay"): the transport's
        # constant part, e.g. ~3 ms through a JACK server at 256 frames (docs/sync.md)
        self.delay_s = 0.0
        self.min_ticks = min_ticks
        self.dropout_s = dropout_s
        self._pts: collections.deque[tuple[int, float]] = collections.deque(maxlen=window)
        self._g = 0  # index of the next tick
        self._g0 = 0  # tick index of song position 0
        self._spp = 0  # song position (ticks) for a continue
        self._misses = 0
        self._last_r = 0.0
        self._last: float | None = None
        # (mean tick index, mean time, seconds per tick, tick index of position 0) or None
        self._fit: tuple[float, float, float, int] | None = None
        self._fit_here = False  # the fit is of the ticks now in the window (not before a restart)
        self.running = False
        self.ticks = 0
        self.jumps = 0  # tempo jumps seen (the line restarted)
        self.lost = 0  # ticks found lost and counted in
        self._slip_n = 0  # ticks in a row a whole number of periods late
        self._slip_k = 0

    def feed(self, kind: str, arrived: float, value: int = 0) -> None:
        """One real-time message: "clock", "start", "stop", "continue", "songpos" (value:
        MIDI beats, i.e. 16ths). Thread: MIDI callback."""
        if kind == "clock":
            self._tick(arrived - self.delay_s)
        elif kind == "start":
            self._g0 = self._g
            self.running = True
            self._fit = self._with_g0(self._fit)
            self._say("start")
        elif kind == "continue":
            self._g0 = self._g - self._spp
            self.running = True
            self._fit = self._with_g0(self._fit)
            self._say("continue")
        elif kind == "stop":
            self._spp = self._g - self._g0
            self.running = False
            self._say("stop")
        elif kind == "songpos":
            self._spp = int(value) * 6
            if not self.running:
                self._g0 = self._g - self._spp
                self._fit = self._with_g0(self._fit)

    def _with_g0(self, fit):
        return None if fit is None else (fit[0], fit[1], fit[2], self._g0)

    def _say(self, kind: str) -> None:
        if self.on_transport is not None:
            self.on_transport(kind)

    def _tick(self, t: float) -> None:
        if self._last is not None and t - self._last > self.dropout_s:
            self._pts.clear()  # the clock paused: its old line says nothing now
            self._fit_here = False
        prev, self._last = self._last, t
        fit = self._fit
        if fit is not None and len(self._pts) >= self.min_ticks:
            # a tempo jump puts each tick further off the line than the one before, on the
            # same side; a stall (the GIL, the server) delivers late ticks that then catch up
            per = fit[2]
            r = t - (fit[1] + (self._g - fit[0]) * per)
            if self._lost_tick(r, per, None if prev is None else t - prev):
                r -= self._slip_k * per  # counted in: this tick is on the line again
            # a tick of a possible lost-tick run is no evidence of a tempo jump (yet)
            grows = (
                self._slip_n == 0
                and abs(r) > 0.25 * per
                and (self._misses == 0 or (r * self._last_r > 0 and abs(r) > abs(self._last_r)))
            )
            self._misses = self._misses + 1 if grows else 0
            self._last_r = r
            if self._misses >= 3:  # keep only the ticks after the jump
                for _ in range(len(self._pts) - 2):
                    self._pts.popleft()
                self._misses = 0
                self._fit_here = False
                self.jumps += 1
        self._pts.append((self._g, t))
        self._g += 1
        self.ticks += 1
        if len(self._pts) >= self.min_ticks:  # fewer: one late tick would skew the slope
            self._fit = self._line()

    def _lost_tick(self, r: float, per: float, dt: float | None) -> bool:
        """True when ticks were lost and have just been counted in. A JACK server that
        misses a cycle drops that period's MIDI: every tick after a lost one arrives a whole
        tick period (or k periods) after where the line expects it, at the usual spacing,
        and counting on would leave the band a tick behind the sender for good (20.8 ms at
        120 BPM). A stall differs: its ticks come late in a burst, then on the line again.
        After ``SLIP_TICKS`` such ticks in a row (all but the first at the usual spacing),
        the window's indices move on by k."""
        k = round(r / per)
        on_k = 1 <= k <= 2 and abs(r - k * per) < 0.3 * per
        steady = dt is not None and abs(dt - per) < 0.3 * per
        if on_k and (self._slip_n == 0 or (k == self._slip_k and steady)):
            self._slip_k = k
            self._slip_n += 1
        else:
            self._slip_n = 0
            return False
        if self._slip_n < self.SLIP_TICKS:
            return False
        n = self._slip_n - 1  # the earlier ticks of the run, already in the window
        pts = list(self._pts)
        self._pts = collections.deque(
            pts[: len(pts) - n] + [(g + k, x) for g, x in pts[len(pts) - n :]], maxlen=self._pts.maxlen
        )
        self._g += k
        self.lost += k
        self._slip_n = 0
        self._misses = 0
        return True

    @staticmethod
    def _lsq(
        g: np.ndarray, t: np.ndarray, ref: tuple[float, float, float] | None = None, late_s: float = 0.0
    ) -> tuple[float, float, float] | None:
        """(mean tick, mean time, seconds per tick) of the line through the ticks; with a
        reference line, without the ticks it finds late: more than ``late_s`` beyond the
        usual spread above the median (the spread below the median, where no outlier can
        be since a tick is never early, mirrored above)."""
        if ref is not None:
            r = t - (ref[1] + (g - ref[0]) * ref[2])
            m = float(np.median(r))
            keep = r <= m + (m - float(r.min())) + late_s
            g, t = g[keep], t[keep]
        if g.size < 2:
            return None
        gm, tm = float(g.mean()), float(t.mean())
        dg = g - gm
        sgg = float(dg @ dg)
        sgt = float(dg @ (t - tm))
        if sgg <= 0 or sgt <= 0:
            return None
        return gm, tm, sgt / sgg

    def _line(self) -> tuple[float, float, float, int] | None:
        pts = np.array(self._pts, dtype=float)
        g, t = pts[:, 0], pts[:, 1]
        # judge lateness against the line so far, which a burst that just arrived has not
        # bent; after a restart, against a plain fit; then once more against the result
        ref = self._fit[:3] if self._fit is not None and self._fit_here else self._lsq(g, t)
        if ref is None:
            return self._fit
        line = self._lsq(g, t, ref, self.LATE_S)
        line = (self._lsq(g, t, line, self.LATE_S) or line) if line is not None else ref
        gm, tm, per = line
        # a tempo beyond the band's range is noise (a burst of ticks), not a tempo
        lo, hi = 60.0 / (MAX_BPM * 1.5 * TICKS_PER_QUARTER), 60.0 / (MIN_BPM / 1.5 * TICKS_PER_QUARTER)
        if not lo <= per <= hi:
            return self._fit
        self._fit_here = True
        return (gm, tm, per, self._g0)

    # -- the source protocol (Thread: any) ----------------------------------------
    @property
    def tempo(self) -> float | None:
        """None while unknown, and once the ticks stopped (``stale_s``): a device switched
        off without a stop leaves the band at its last tempo, and Play on its own."""
        fit, last = self._fit, self._last
        if fit is None or last is None or self._now() - last > self.stale_s:
            return None
        return 60.0 / (fit[2] * TICKS_PER_QUARTER)

    def time_at(self, position: float) -> float | None:
        fit = self._fit
        if fit is None:
            return None
        gm, tm, per, g0 = fit
        return tm + (g0 + position * TICKS_PER_QUARTER - gm) * per

    def position_at(self, t: float) -> float | None:
        fit = self._fit
        if fit is None:
            return None
        gm, tm, per, g0 = fit
        return (gm + (t - tm) / per - g0) / TICKS_PER_QUARTER

    def wait_tempo(self, timeout: float) -> float | None:
        """Wait until the clock's tempo is known (a start often comes before the ticks)."""
        end = time.monotonic() + timeout
        while self.tempo is None and time.monotonic() < end:
            time.sleep(0.005)
        return self.tempo


class LinkSync:
    """One peer in an Ableton Link session (``aalink``), on its own asyncio loop thread.

    ``quantum``: quarter notes per bar; band bars start where Link's phase is 0.
    ``on_transport(kind)`` gets "start" and "stop" when the session's transport changes
    (start/stop sync), on the Link loop thread: it must only hand them on. Link also
    reports LiveBand's own changes back; a report that no longer matches the session's
    state (a start already undone by a stop) is dropped here."""

    def __init__(self, bpm: float, quantum: float = 4.0, on_transport: Callable[[str], None] | None = None) -> None:
        try:
            import aalink
        except ImportError:
            raise RuntimeError("Ableton Link needs the 'aalink' package: pip install aalink") from None
        import asyncio

        self.on_transport = on_transport
        # a timed start of ours: (monotonic time, Link time), until a stop
        self._start_at: tuple[float, datetime.timedelta] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="liveband-link", daemon=True)
        self._thread.start()

        async def make():
            link = aalink.Link(float(bpm))  # aalink binds its callbacks to the running loop
            link.quantum = float(quantum)
            link.start_stop_sync_enabled = True
            link.set_start_stop_callback(self._start_stop)
            link.enabled = True
            return link

        try:
            self.link = asyncio.run_coroutine_threadsafe(make(), self._loop).result(5.0)
        except Exception:
            self._stop_loop()
            raise

    def _start_stop(self, playing: bool) -> None:
        """Link's start/stop callback. Thread: the Link loop."""
        link = getattr(self, "link", None)
        if link is None or self.on_transport is None or bool(link.playing) != bool(playing):
            return  # not set up yet, or stale: the transport has changed again since
        self.on_transport("start" if playing else "stop")

    @property
    def num_peers(self) -> int:
        return int(self.link.num_peers)

    @property
    def playing(self) -> bool:
        """The Link session's transport (start/stop sync). Thread: any."""
        return bool(self.link.playing)

    def set_playing(self, on: bool, at: float | None = None) -> None:
        """Start or stop every peer's transport; ``at``: the monotonic time a start takes
        effect (where the band's first beat sounds), default now. Thread: any."""
        t1 = time.monotonic()
        link_now = self.link.time  # Link's clock (MONOTONIC_RAW), as a timedelta
        t2 = time.monotonic()
        now = 0.5 * (t1 + t2)
        start = self._start_at
        if not on and start is not None and start[0] > now:
            # a stop before our timed start took effect: Link keeps whichever change is
            # dated later, so date the stop just after the start
            at, when = start[0] + 0.001, start[1] + datetime.timedelta(milliseconds=1)
        elif at is not None and at > now:
            when = link_now + datetime.timedelta(seconds=at - now)
        else:
            at = None
        self._start_at = (at, when) if on and at is not None else None
        if at is None:
            self.link.playing = bool(on)
            return
        # the beat Link already has at that time: the timeline does not move
        self.link.set_is_playing_and_request_beat_at_time(bool(on), when, float(self.position_at(at)))

    @property
    def tempo(self) -> float | None:
        return float(self.link.tempo)

    def set_tempo(self, bpm: float) -> None:
        """Propose a tempo to every peer."""
        self.link.tempo = float(bpm)

    def set_quantum(self, quantum: float) -> None:
        self.link.quantum = float(quantum)

    def _reading(self) -> tuple[float, float, float]:
        # Link's clock is CLOCK_MONOTONIC_RAW (off time.monotonic by NTP slew): read the
        # beat between two monotonic reads and take their middle as its time
        t1 = time.monotonic()
        beat = float(self.link.beat)
        t2 = time.monotonic()
        return 0.5 * (t1 + t2), beat, float(self.link.tempo)

    def time_at(self, position: float) -> float | None:
        t, beat, bpm = self._reading()
        return t + (position - beat) * 60.0 / bpm

    def position_at(self, t: float) -> float:
        t0, beat, bpm = self._reading()
        return beat + (t - t0) * bpm / 60.0

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2.0)

    def close(self) -> None:
        try:
            self.link.enabled = False
        finally:
            self._stop_loop()


class BeatLock:
    """Steers ``clock`` so that band step ``k`` sounds when ``source`` is at quarter
    position ``k / 4 + offset``. ``to_sample(t)``: the audio-clock sample heard at
    monotonic time ``t``. Install ``on_step`` as the generator's ``step_observer``.

    ``errors_ms``: for each beat steered, how far the band's beat (already fixed) was
    from where the source now puts it (positive: the band is late), after any re-lock
    (``relocks`` counts them; ``offset`` moves by whole bars)."""

    def __init__(
        self,
        source,
        clock: Clock,
        to_sample: Callable[[float], int],
        offset: float = 0.0,
        max_change: float = 0.25,
        big_error_s: float = 0.004,
    ) -> None:
        self.source = source
        self.clock = clock
        self.to_sample = to_sample
        self.offset = float(offset)
        self.max_change = max_change
        self.big_error_s = big_error_s
        self.enabled = True  # False: the band keeps its last tempo (sync switched off)
        self.errors_ms: collections.deque[float] = collections.deque(maxlen=4096)
        self.relocks = 0  # times the band moved onto other bars of the source
        self._offsets = [(-(1 << 62), self.offset)]  # (first band step, offset) of each

    def offset_at(self, step: int) -> float:
        """The source position of band step 0 in force for band ``step`` (a re-lock moves
        it from the step it steered on). Thread: any."""
        return next(o for s, o in reversed(self._offsets) if s <= step)

    def on_step(self, k: int, dt_ms: float = 0.0) -> None:
        """After the generator committed step ``k``. Thread: generator worker."""
        b = k + 1
        if self.enabled and b % self.clock.beat_steps == 0:
            self.steer(b)

    def steer(self, b: int) -> None:
        """Set the tempo of the beat starting at step ``b`` (not committed yet)."""
        clock, src = self.clock, self.source
        bs = clock.beat_steps
        bpm_src = src.tempo
        t_next = src.time_at((b + bs) / 4.0 + self.offset)
        t_now = src.time_at(b / 4.0 + self.offset)
        if bpm_src is None or t_next is None or t_now is None:
            return
        rate = clock.sample_rate
        s_b = clock.step_time(b)
        s_now = self.to_sample(t_now)
        err = s_b - s_now
        # over half a bar off: not jitter or a tempo change but lost time (a dropout, a
        # frozen process). Keep the bar phase and move the band's bars onto the source's
        # nearest ones; catching seconds up at max_change would rush for many bars.
        bar = clock.bar_steps / 4.0
        shift = round(err / (rate * 60.0 / bpm_src) / bar) * bar
        if shift:
            self.offset += shift
            self.relocks += 1
            self._offsets = self._offsets + [(b, self.offset)]  # one store: readers see all
            t_next = src.time_at((b + bs) / 4.0 + self.offset)
            t_now = src.time_at(b / 4.0 + self.offset)
            if t_next is None or t_now is None:
                return
            s_now = self.to_sample(t_now)
            err = s_b - s_now
        self.errors_ms.append(err * 1000.0 / rate)
        # small errors are the wobble of the source's line and of the DAC line (under a
        # millisecond): take 40 % of one out per beat so it is not played; a larger one (a
        # start, a tempo jump, audio time lost in a server stall: a JACK period is 5.3 ms)
        # all at once, or a 10 ms loss stays audible for four beats
        gain = 1.0 if abs(err) > self.big_error_s * rate else 0.4
        length = self.to_sample(t_next) - s_now - gain * err
        nominal = rate * 60.0 * bs / (4.0 * bpm_src)
        length = min(nominal * (1 + self.max_change), max(nominal * (1 - self.max_change), length))
        bpm = rate * 60.0 * bs / (4.0 * length)
        if math.isfinite(bpm):
            clock.set_tempo(min(MAX_BPM, max(MIN_BPM, bpm)), b)


def start_point(source, bar_quarters: float, beat_steps: int, earliest: float) -> tuple[float, int] | None:
    """Where a band that cannot sound before monotonic time ``earliest`` joins the source:
    (offset, first_step) with ``offset`` the source position of band step 0 (a bar line
    of the source) and ``first_step`` the first band beat at or after ``earliest``.
    None while the source's tempo is unknown."""
    p = source.position_at(earliest)
    if p is None or source.tempo is None:
        return None
    offset = math.floor(p / bar_quarters) * bar_quarters
    k = math.ceil(round((p - offset) * 4.0, 6) / beat_steps) * beat_steps
    return offset, int(k)
